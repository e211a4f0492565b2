"""Telling live workers from dead ones, each by its owner's rule, and releasing the dead.

Whose worker an id is, and when it is dead (all ages on Redis' clock, ``TIME``):

- **labqueue's** (a record in ``<ns>:labqueue:workers``, see :mod:`.presence`): dead when its
  record's last beat is older than ``dead_after``, or when it runs on this host in this pid
  namespace (the record says which: issue 15, item 2) and its process is gone. Its job goes
  back to its queue (:meth:`.ReliableFetch.release`). An in-progress hash without a record
  (a labqueue from before records) is dead unless its Resque heartbeat is fresh.
- **Resque's** (no record, a heartbeat field): dead when its heartbeat is more than
  :data:`RESQUE_PRUNE_INTERVAL` whole seconds old, Resque's own rule (``prune_dead_workers``,
  5 x its 60 s heartbeat); Ruby writes whole seconds once a minute, so a younger beat
  means nothing. Resque's failure record for its job: ``Resque::PruneDeadWorkerDirtyExit``.
- **php-resque's** (no record, no heartbeat: php-resque writes none): dead only when it runs
  on this host, its pid is gone, and the pid is worth checking: no labqueue record of this
  hostname names another pid namespace (a php-resque worker's own namespace cannot be
  known; see the README). Resque's failure record for its job: ``Resque::DirtyExit``.

A foreign worker is unregistered as Resque does it, with the failure record for the job it
was running, in one script (:data:`~labqueue.scripts.DROP_FOREIGN`). The in-progress hashes
are read before the registrations, so a worker that registers and takes a job meanwhile is
seen registered. Only one pruner works at a time (a short lock, for efficiency: each release
is atomic). An id or a heartbeat that is not UTF-8, or a heartbeat no parser reads, is
skipped and reported once (issue 15, item 7): it never stops a worker from starting.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psutil
import redis
from redis.client import NEVER_DECODE

from .. import timefmt
from ..failures import Failure
from ..keys import Keys, WorkerId
from ..scripts import DROP_FOREIGN
from .presence import WorkerRecord, pid_namespace, redis_time
from .reliable import ReliableFetch

log = logging.getLogger("labqueue.worker")

#: A labqueue worker whose record has not beaten for this long (seconds) is dead.
DEAD_AFTER = 60.0

#: Resque's ``prune_interval`` (``Resque.heartbeat_interval * 5``): a Ruby worker whose
#: heartbeat is more than this many whole seconds old is dead.
RESQUE_PRUNE_INTERVAL = 300

#: How long the pruning lock lasts if its holder dies (a prune takes milliseconds).
PRUNE_LOCK_MS = 3_000

#: Resque's failure records for a dead worker's job (resque ``lib/resque/errors.rb``).
DIRTY_EXIT = ("Resque::DirtyExit", "Job still being processed")
PRUNED_EXIT = "Resque::PruneDeadWorkerDirtyExit"

_reported: set[str] = set()


def report_once(what: str) -> None:
    """Log a problem with Redis content once per process."""
    if what not in _reported:
        _reported.add(what)
        log.warning("liveness: %s; skipped", what)


def pid_alive(pid: int) -> bool:
    """True if a process with this pid runs here (a zombie counts as dead)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True


def labqueue_dead(
    worker_id: str, record: WorkerRecord, now: float, dead_after: float, hostname: str = ""
) -> bool:
    """labqueue's rule for one of its workers (see the module doc)."""
    if now - record.beat > dead_after:
        return True
    who = WorkerId.parse(worker_id)
    if who.host != (hostname or socket.gethostname()) or record.pidns != pid_namespace():
        return False  # another host or pid namespace: its pid means nothing here
    return who.process is not None and not pid_alive(who.process)


def resque_dead(beat: float, now: float, prune_interval: int = RESQUE_PRUNE_INTERVAL) -> bool:
    """Resque's rule: ``(server_time - Time.parse(beat)).to_i > prune_interval``, where
    ``server_time`` is Redis' clock in whole seconds."""
    return math.trunc(math.floor(now) - beat) > prune_interval


@dataclass
class View:
    """What one prune reads: every id worth judging, and what is known of it."""

    now: float  #: Redis' clock
    host: str
    registered: set[str] = field(default_factory=set)
    beats: dict[str, str] = field(default_factory=dict)
    records: dict[str, WorkerRecord] = field(default_factory=dict)
    holders: set[str] = field(default_factory=set)  #: ids with an in-progress hash

    @property
    def pids_shared(self) -> bool:
        """Whether a pid of this hostname can be checked here: no labqueue record of this
        hostname names another pid namespace."""
        mine = pid_namespace()
        return all(
            rec.pidns == mine
            for wid, rec in self.records.items()
            if WorkerId.parse(wid).host == self.host
        )

    def candidates(self, me: str) -> list[str]:
        return sorted((self.registered | set(self.beats) | set(self.records) | self.holders) - {me})


def verdict(
    wid: str, view: View, dead_after: float, prune_interval: int = RESQUE_PRUNE_INTERVAL
) -> str | None:
    """None if ``wid`` is alive by its owner's rule; else who judged it dead: ``"labqueue"``
    (release it as labqueue's), or the Resque exception its job's failure record names."""
    record = view.records.get(wid)
    if record is not None:
        return "labqueue" if labqueue_dead(wid, record, view.now, dead_after, view.host) else None
    beat = _beat(wid, view.beats.get(wid))
    if wid in view.holders:  # labqueue's, from before records: by its Resque heartbeat
        return None if beat is not None and view.now - beat <= dead_after else "labqueue"
    if beat is not None:
        return PRUNED_EXIT if resque_dead(beat, view.now, prune_interval) else None
    if wid in view.beats or wid not in view.registered:
        return None  # an unreadable heartbeat (reported): left alone
    who = WorkerId.parse(wid)
    if who.host != view.host or who.process is None or not view.pids_shared:
        return None
    return None if pid_alive(who.process) else DIRTY_EXIT[0]


def _beat(wid: str, text: str | None) -> float | None:
    if text is None:
        return None
    beat = timefmt.parse(text)
    if beat is None:
        report_once(f"worker {wid} has a heartbeat no parser reads ({text[:60]!r})")
    return beat


def _texts(values: Any, what: str) -> Iterator[str]:
    for raw in values:
        try:
            yield raw.decode() if isinstance(raw, bytes) else str(raw)
        except UnicodeDecodeError:
            report_once(f"{what} holds a member that is not UTF-8 ({raw[:60]!r})")


def _pairs(mapping: dict[Any, Any], what: str) -> Iterator[tuple[str, str]]:
    for raw_key, raw_value in mapping.items():
        try:
            key = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
            value = raw_value.decode() if isinstance(raw_value, bytes) else str(raw_value)
        except UnicodeDecodeError:
            report_once(f"{what} holds a field or value that is not UTF-8 ({raw_key[:60]!r})")
            continue
        yield key, value


def _holders(connection: redis.Redis, keys: Keys) -> set[str]:
    prefix, cursor, found = keys.inprogress_prefix, 0, set[str]()
    while True:
        cursor, batch = connection.execute_command(
            "SCAN", cursor, "MATCH", prefix + "*", "COUNT", 500, **{NEVER_DECODE: True}
        )
        found.update(name[len(prefix) :] for name in _texts(batch, "an in-progress key name"))
        if int(cursor) == 0:
            return found


def read_view(connection: redis.Redis, keys: Keys, scan: bool = True) -> View:
    """The ids to judge and what Redis knows of them (bytes read raw: see the module doc).
    Read in this order: in-progress hashes, registrations, heartbeats, records (a worker
    writes its record first, so one that starts meanwhile is seen with it)."""
    holders = _holders(connection, keys) if scan else set()
    raw = {NEVER_DECODE: True}  # not in a pipeline: redis-py's pipelines do not take it
    members = connection.execute_command("SMEMBERS", keys.workers, **raw)
    beats = connection.execute_command("HGETALL", keys.heartbeat, **raw)
    records = connection.execute_command("HGETALL", keys.labqueue_workers, **raw)
    view = View(redis_time(connection), socket.gethostname(), holders=holders)
    view.registered = set(_texts(members, keys.workers))
    view.beats = dict(_pairs(beats, keys.heartbeat))
    for wid, text in _pairs(records, keys.labqueue_workers):
        record = WorkerRecord.from_json(text)
        if record is None:
            report_once(f"{keys.labqueue_workers} holds an unreadable record for {wid}")
        else:
            view.records[wid] = record
    return view


def prune_dead_workers(
    connection: redis.Redis,
    keys: Keys,
    me: str = "",
    dead_after: float = DEAD_AFTER,
    scan: bool = True,
    prune_interval: int = RESQUE_PRUNE_INTERVAL,
) -> list[str]:
    """Release every dead worker (requeueing its job, or recording Resque's failure for a
    foreign worker's); returns the ids released.

    ``scan=False`` judges registered workers only (cheap: no SCAN of the keyspace for
    in-progress hashes of workers nobody registered, which only a crash mid-start leaves).
    """
    token = f"{me or 'pruner'}:{time.time()}"
    if not connection.set(keys.prune_lock, token, nx=True, px=PRUNE_LOCK_MS):
        return []
    try:
        view = read_view(connection, keys, scan)
        fetcher = ReliableFetch(connection, keys)
        released = []
        for wid in view.candidates(me):
            judged = verdict(wid, view, dead_after, prune_interval)
            if judged is None:
                continue
            if judged == "labqueue":
                job = fetcher.release(wid, view.now)
                what = " and requeued its job" if job else ""
            elif drop_foreign(connection, keys, wid, judged, view.now):
                what = f" ({judged})"
            else:
                continue
            log.warning("released dead worker %s%s", wid, what)
            released.append(wid)
        return released
    finally:
        if connection.get(keys.prune_lock) == token:
            connection.delete(keys.prune_lock)


def foreign_failure(wid: str, busy: bytes, exception: str, now: float) -> str:
    """The failure record Resque writes for a dead worker's job (``Resque::Failure::Redis``):
    its payload and queue from the busy record, ``backtrace`` empty, ``worker`` the dead id."""
    text = busy.decode("utf-8", "replace")
    try:
        record = json.loads(text)
        payload, queue = record.get("payload"), record.get("queue")
    except (ValueError, AttributeError, RecursionError):
        payload, queue = text, None
    if exception == DIRTY_EXIT[0]:
        error = DIRTY_EXIT[1]
    else:
        cls = payload.get("class") if isinstance(payload, dict) else None
        job = "<Unknown Job>" if cls is None else str(cls)
        error = f"Worker {wid} did not gracefully exit while processing {job}"
    queue_text = "" if queue is None else str(queue)
    return Failure(timefmt.failed_at(now), payload, exception, error, [], wid, queue_text).to_json()


def drop_foreign(connection: redis.Redis, keys: Keys, wid: str, exception: str, now: float) -> bool:
    """Unregister a dead Resque or php-resque worker as Resque does, with a failure record
    for its job if it had one; False if its busy record changed meanwhile (left for later)."""
    busy = connection.execute_command("GET", keys.worker(wid), **{NEVER_DECODE: True})
    failure = foreign_failure(wid, busy, exception, now) if busy else ""
    k = keys
    return bool(
        DROP_FOREIGN.call(
            connection,
            (
                k.workers,
                k.worker(wid),
                k.worker_started(wid),
                k.heartbeat,
                k.stat("processed", wid),
                k.stat("failed", wid),
                k.failed,
            ),
            (wid, busy or b"", failure),
        )
    )
