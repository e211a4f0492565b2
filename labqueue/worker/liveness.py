"""Telling live workers from dead ones, and releasing the dead ones' jobs.

A worker is dead when it runs on this host and its process is gone, when its heartbeat is
older than ``dead_after`` seconds, or when it holds an in-progress job without being
registered or beating. A worker of this host whose process runs and whose heartbeat is fresh
is alive, whatever else a racing read says. The in-progress hashes are read before the
registrations, so a worker that registers and takes a job meanwhile is seen registered.
Only one pruner works at a time (a short lock, for efficiency: each release is atomic, so
two pruners can never requeue the same job twice).
"""

from __future__ import annotations

import logging
import socket
import time

import psutil
import redis

from .. import timefmt
from ..keys import Keys, WorkerId
from .reliable import ReliableFetch

log = logging.getLogger("labqueue.worker")

#: A heartbeat older than this (seconds) marks a worker on another host as dead.
DEAD_AFTER = 60.0

#: How long the pruning lock lasts if its holder dies (a prune takes milliseconds).
PRUNE_LOCK_MS = 3_000


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
    who = WorkerId.parse(worker_id)
    here = who.host == (hostname or socket.gethostname())
    if here and who.process is not None and not pid_alive(who.process):
        return True
    beat_ts = timefmt.parse(beat) if beat else None
    if beat_ts is not None:
        return now - beat_ts > dead_after
    return worker_id not in registered


def prune_dead_workers(
    connection: redis.Redis,
    keys: Keys,
    me: str = "",
    dead_after: float = DEAD_AFTER,
    scan: bool = True,
) -> list[str]:
    """Release every dead worker (requeueing its job); returns the ids released.

    ``scan=False`` judges registered workers only (cheap: no SCAN of the keyspace for
    in-progress hashes of workers nobody registered, which only a crash mid-start leaves).
    """
    token = f"{me or 'pruner'}:{time.time()}"
    if not connection.set(keys.prune_lock, token, nx=True, px=PRUNE_LOCK_MS):
        return []
    try:
        fetcher = ReliableFetch(connection, keys)
        holders: set[str] = set()
        if scan:
            prefix = keys.inprogress_prefix
            found = connection.scan_iter(match=prefix + "*", count=500)
            holders = {str(k)[len(prefix) :] for k in found}
        with connection.pipeline() as pipe:
            pipe.smembers(keys.workers)
            pipe.hgetall(keys.heartbeat)
            registered_raw, beats_raw = pipe.execute()
        registered = {str(w) for w in registered_raw}
        beats = {str(k): str(v) for k, v in beats_raw.items()}
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
        if connection.get(keys.prune_lock) == token:
            connection.delete(keys.prune_lock)
