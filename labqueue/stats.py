"""The numbers everything else shows: one snapshot, read in two round trips, and the one
reader of registered workers. They read whatever Redis holds: a key of another type counts
as empty and a counter that is no number as 0, each named (key -> why) with the result. The
oldest waiting job's age, per queue and per limiter, is :mod:`labqueue.ages`' (re-exported
here: :func:`oldest_ages`, :func:`waiting_ages`)."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import redis

from . import timefmt
from .ages import CLOCK_SLACK, Ages, ParkedAge, oldest_ages, queue_time_of, waiting_ages
from .errors import UnreadableData
from .keys import DEFAULT_NAMESPACE, Keys, WorkerId
from .limiters import PER_LIMITER, LimiterInfo, limiter_names, limiters, queue_reads
from .reading import Batch, counter, loads, schedule_problem


@dataclass(frozen=True)
class WorkerInfo:
    """One registered worker, as ``resque:workers`` and its keys describe it."""

    id: str
    queues: list[str]
    busy: bool
    queue: str | None = None  #: the queue of the job it runs
    job_class: str | None = None
    run_at: str | None = None  #: when it took the job (Resque's text)
    heartbeat_age: float | None = None  #: seconds since its last beat (None: never beat)
    host: str = ""
    pid: str = ""
    started: float | None = None  #: when it started (epoch s)
    heartbeat: float | None = None  #: its last beat (epoch s)
    processed: int = 0  #: jobs it finished, failed ones included (its own counter)
    failed: int = 0  #: of which failed
    payload: str | None = None  #: the JSON of the job it runs (the busy record, if unreadable)
    problems: list[str] = field(default_factory=list)  #: its keys that cannot be read, and why
    thread: int | None = None  #: K of a worker thread ``host:pid:queues:tK`` (else None)
    threads: int | None = None  #: how many threads of its process are registered

    @property
    def label(self) -> str:
        """``process 1234, thread 3 of 8`` for a worker thread, else ``""``."""
        if self.thread is None:
            return ""
        return f"process {self.pid}, thread {self.thread} of {self.threads or '?'}"


@dataclass(frozen=True)
class Snapshot:
    """Queues and their depths, workers, counters, failed and delayed totals, at ``time``."""

    time: float
    queues: dict[str, int]
    processed: int
    failed: int
    failed_store: int
    delayed: int
    workers: list[WorkerInfo] = field(default_factory=list)
    #: keys that could not be read (of another type, no number): key -> one line on why
    unreadable: dict[str, str] = field(default_factory=dict)
    #: the concurrency limits: each limiter's K, holders and parked jobs (labqueue.limiters)
    limiters: list[LimiterInfo] = field(default_factory=list)

    @property
    def busy_workers(self) -> int:
        return sum(w.busy for w in self.workers)

    @property
    def succeeded(self) -> int:
        """Jobs that finished without failing: ``processed`` counts failed ones too, as
        Resque and php-resque count."""
        return max(self.processed - self.failed, 0)

    @property
    def queued(self) -> int:
        return sum(self.queues.values())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["busy_workers"] = self.busy_workers
        data["succeeded"] = self.succeeded
        data["queued"] = self.queued
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


#: How many replies per worker :func:`_read_worker` queues.
_PER_WORKER = 4


def _worker_keys(keys: Keys, wid: str) -> tuple[str, str, str, str]:
    """The keys of one worker that a reader reads: busy record, start, its two counters."""
    return (
        keys.worker(wid),
        keys.worker_started(wid),
        keys.stat("processed", wid),
        keys.stat("failed", wid),
    )


def _read_worker(batch: Batch, keys: Keys, wid: str) -> None:
    for key in _worker_keys(keys, wid):
        batch.call("get", key)


def _busy(raw: Any) -> tuple[str | None, str | None, str | None, str | None]:
    """(queue, run_at, payload JSON, class) of a busy record ``{queue, run_at, payload}``."""
    try:
        busy = loads(raw)
        payload, queue, run_at = busy.get("payload"), busy.get("queue"), busy.get("run_at")
    except (ValueError, AttributeError):  # not a record: show it as it is
        return None, None, str(raw), None
    text = payload if isinstance(payload, str) else json.dumps(payload)
    cls = payload.get("class") if isinstance(payload, dict) else None
    return (
        queue if isinstance(queue, str) else None,
        run_at if isinstance(run_at, str) else None,
        text,
        cls if isinstance(cls, str) else None,
    )


def _counter(key: str, raw: Any, problems: dict[str, str]) -> int:
    """A counter's value; 0 and a line in ``problems`` when it is no whole number."""
    try:
        return counter(raw)
    except UnreadableData as exc:
        problems[key] = f"{key}: {exc}"
        return 0


def _worker(
    keys: Keys, wid: str, replies: list[Any], beat: Any, now: float, problems: dict[str, str]
) -> WorkerInfo:
    busy_raw, started, processed, failed = replies
    names = _worker_keys(keys, wid)
    done, failures = _counter(names[2], processed, problems), _counter(names[3], failed, problems)
    who = WorkerId.parse(wid)
    beat_ts = timefmt.parse(beat) if isinstance(beat, str) else None
    age = round(now - beat_ts, 1) if beat_ts is not None else None
    queue, run_at, payload, cls = _busy(busy_raw) if busy_raw else (None, None, None, None)
    return WorkerInfo(
        wid,
        list(who.queues),
        bool(busy_raw),
        queue,
        cls,
        run_at,
        age,
        host=who.host,
        pid=who.pid,
        started=timefmt.parse(started) if isinstance(started, str) else None,
        heartbeat=beat_ts,
        processed=done,
        failed=failures,
        payload=payload,
        problems=[problems[k] for k in names if k in problems],
        thread=who.thread,
    )


def read_workers(
    connection: redis.Redis,
    namespace: str = DEFAULT_NAMESPACE,
    problems: dict[str, str] | None = None,
) -> list[WorkerInfo]:
    """Every registered worker, sorted by id, with its job, heartbeat, start and counters:
    the one reader of workers (``labqueue stats``, the monitor, the notebooks); two round
    trips however many workers. A key that cannot be read is skipped, and said (key -> why)
    in ``problems`` when given."""
    keys, problems = Keys(namespace), {} if problems is None else problems
    first = Batch(connection, problems).call("smembers", keys.workers)
    members, beats = first.call("hgetall", keys.heartbeat).run()
    ids = sorted(map(str, members))
    second = Batch(connection, problems)
    for wid in ids:
        _read_worker(second, keys, wid)
    return _workers(keys, ids, second.run(), beats, time.time(), problems)


def _workers(
    keys: Keys,
    ids: list[str],
    replies: list[Any],
    beats: dict[Any, Any],
    now: float,
    problems: dict[str, str],
) -> list[WorkerInfo]:
    n = _PER_WORKER
    found = [
        _worker(keys, wid, replies[n * i : n * i + n], beats.get(wid), now, problems)
        for i, wid in enumerate(ids)
    ]
    return _count_threads(found)


def _count_threads(workers: list[WorkerInfo]) -> list[WorkerInfo]:
    """Each worker thread with how many threads of its process are registered; sorted by
    id, a process's threads by number (``t2`` before ``t10``)."""
    processes = Counter((w.host, w.pid) for w in workers if w.thread is not None)
    counted = [
        w if w.thread is None else replace(w, threads=processes[(w.host, w.pid)]) for w in workers
    ]
    return sorted(counted, key=lambda w: (w.id.removesuffix(f":t{w.thread}"), w.thread or 0))


def snapshot(connection: redis.Redis, namespace: str = DEFAULT_NAMESPACE) -> Snapshot:
    """Everything ``labqueue stats`` prints: two round trips, however many queues. A key
    that cannot be read counts as empty and is named in ``unreadable``."""
    keys, problems = Keys(namespace), dict[str, str]()
    first = Batch(connection, problems)
    first.call("smembers", keys.queues).call("smembers", keys.workers)
    first.call("hgetall", keys.heartbeat)
    first.call("get", keys.stat("processed")).call("get", keys.stat("failed"))
    first.call("llen", keys.failed).call("zrange", keys.delayed_schedule, 0, -1, withscores=True)
    first.call("hgetall", keys.limits)
    names, workers, beats, processed, failed, n_failed, stamps, sizes = first.run()
    names, workers = sorted(map(str, names)), sorted(map(str, workers))
    limited = limiter_names(sizes)
    second = Batch(connection, problems)
    for name in names:
        second.call("llen", keys.queue(name))
    for wid in workers:
        _read_worker(second, keys, wid)
    for member, _score in stamps:
        second.call("llen", keys.delayed_prefix + str(member))
    queue_reads(second, keys, limited)
    replies = second.run()
    n, m = len(names), len(names) + _PER_WORKER * len(workers)
    o = len(replies) - PER_LIMITER * len(limited)
    depths, per_worker, delayed, per_limiter = replies[:n], replies[n:m], replies[m:o], replies[o:]
    odd = schedule_problem(keys.delayed_schedule, stamps)
    if odd:
        problems[keys.delayed_schedule] = odd
    now = time.time()
    return Snapshot(
        time=now,
        queues=dict(zip(names, map(int, depths), strict=True)),
        processed=_counter(keys.stat("processed"), processed, problems),
        failed=_counter(keys.stat("failed"), failed, problems),
        failed_store=int(n_failed),
        delayed=sum(map(int, delayed)),
        workers=_workers(keys, workers, per_worker, beats, now, problems),
        unreadable=problems,
        limiters=limiters(sizes, per_limiter, now),
    )


__all__ = [
    "CLOCK_SLACK",
    "Ages",
    "LimiterInfo",
    "ParkedAge",
    "Snapshot",
    "WorkerInfo",
    "oldest_ages",
    "queue_time_of",
    "read_workers",
    "snapshot",
    "waiting_ages",
]
