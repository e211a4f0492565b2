"""Telling live workers from dead ones, and releasing the dead ones' jobs.

A worker is dead when it runs on this host and its process is gone, when its heartbeat is
older than ``dead_after`` seconds, or when it holds an in-progress job without being
registered. Only one pruner works at a time (a short lock), and each release is atomic,
so two workers starting together cannot requeue the same job twice.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

import psutil

from . import timefmt
from .keys import Keys
from .reliable import ReliableFetch

log = logging.getLogger("labqueue.worker")

#: A heartbeat older than this (seconds) marks a worker on another host as dead.
DEAD_AFTER = 60.0


def pid_alive(pid: int) -> bool:
    """True if a process with this pid runs here (a zombie counts as dead)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True


def is_dead(
    worker_id: str,
    registered: set[str],
    beat: str | None,
    now: float,
    dead_after: float = DEAD_AFTER,
    hostname: str | None = None,
) -> bool:
    """Judge one worker id ``host:pid:queues`` by what Redis and this host know of it."""
    host, _, rest = worker_id.partition(":")
    pid_text = rest.partition(":")[0]
    here = host == (hostname or socket.gethostname())
    if here and pid_text.isdigit() and not pid_alive(int(pid_text)):
        return True
    beat_ts = timefmt.parse(beat) if beat else None
    if beat_ts is not None and now - beat_ts > dead_after:
        return True
    return worker_id not in registered


def prune_dead_workers(
    connection: Any, keys: Keys, me: str = "", dead_after: float = DEAD_AFTER
) -> list[str]:
    """Release every dead worker (requeueing its job); returns the ids released."""
    if not connection.set(keys.prune_lock, me or "pruner", nx=True, px=10_000):
        return []
    try:
        fetcher = ReliableFetch(connection, keys)
        registered = {str(w) for w in connection.smembers(keys.workers)}
        beats = {str(k): str(v) for k, v in connection.hgetall(keys.heartbeat).items()}
        prefix = keys.inprogress_prefix
        found = connection.scan_iter(match=prefix + "*", count=500)
        holders = {str(k)[len(prefix) :] for k in found}
        now = time.time()
        released = []
        for wid in sorted((registered | holders) - {me}):
            if is_dead(wid, registered, beats.get(wid), now, dead_after):
                job = fetcher.release(wid, now)
                what = " and requeued its job" if job else ""
                log.warning("released dead worker %s%s", wid, what)
                released.append(wid)
        return released
    finally:
        connection.delete(keys.prune_lock)
