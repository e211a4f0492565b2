"""The numbers everything else shows: one snapshot, read in two round trips, the one
reader of registered workers, and the oldest waiting job's age per queue."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import redis
from redis.client import NEVER_DECODE

from . import timefmt
from .keys import DEFAULT_NAMESPACE, Keys, WorkerId


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


def _int(value: Any) -> int:
    return int(value) if value else 0


#: How many replies per worker :func:`_read_worker` queues.
_PER_WORKER = 4


def _read_worker(pipe: Any, keys: Keys, wid: str) -> None:
    pipe.get(keys.worker(wid)).get(keys.worker_started(wid))
    pipe.get(keys.stat("processed", wid)).get(keys.stat("failed", wid))


def _busy(raw: Any) -> tuple[str | None, str | None, str | None, str | None]:
    """(queue, run_at, payload JSON, class) of a busy record ``{queue, run_at, payload}``."""
    try:
        busy = json.loads(raw)
        payload, queue, run_at = busy.get("payload"), busy.get("queue"), busy.get("run_at")
    except (ValueError, AttributeError):  # not a record: show it as it is
        return None, None, str(raw), None
    text = payload if isinstance(payload, str) else json.dumps(payload)
    cls = payload.get("class") if isinstance(payload, dict) else None
    return (
        queue if isinstance(queue, str) else None,
        None if run_at is None else str(run_at),
        text,
        cls if isinstance(cls, str) else None,
    )


def _worker(wid: str, replies: list[Any], beat: Any, now: float) -> WorkerInfo:
    busy_raw, started, processed, failed = replies
    who = WorkerId.parse(wid)
    beat_ts = timefmt.parse(str(beat)) if beat else None
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
        started=timefmt.parse(str(started)) if started else None,
        heartbeat=beat_ts,
        processed=_int(processed),
        failed=_int(failed),
        payload=payload,
    )


def read_workers(connection: redis.Redis, namespace: str = DEFAULT_NAMESPACE) -> list[WorkerInfo]:
    """Every registered worker, sorted by id, with its job, heartbeat, start and counters:
    the one reader of workers (``labqueue stats``, the monitor, the notebooks); two round
    trips however many workers."""
    keys = Keys(namespace)
    with connection.pipeline(transaction=False) as pipe:
        pipe.smembers(keys.workers)
        pipe.hgetall(keys.heartbeat)
        members, beats = pipe.execute()
    ids = sorted(map(str, members))
    with connection.pipeline(transaction=False) as pipe:
        for wid in ids:
            _read_worker(pipe, keys, wid)
        replies = pipe.execute() if ids else []
    return _workers(ids, replies, beats, time.time())


def _workers(
    ids: list[str], replies: list[Any], beats: dict[Any, Any], now: float
) -> list[WorkerInfo]:
    n = _PER_WORKER
    return [
        _worker(wid, replies[n * i : n * i + n], beats.get(wid), now) for i, wid in enumerate(ids)
    ]


def snapshot(connection: redis.Redis, namespace: str = DEFAULT_NAMESPACE) -> Snapshot:
    """Everything ``labqueue stats`` prints: two round trips, however many queues."""
    keys = Keys(namespace)
    with connection.pipeline(transaction=False) as pipe:
        pipe.smembers(keys.queues)
        pipe.smembers(keys.workers)
        pipe.hgetall(keys.heartbeat)
        pipe.get(keys.stat("processed"))
        pipe.get(keys.stat("failed"))
        pipe.llen(keys.failed)
        pipe.zrange(keys.delayed_schedule, 0, -1)
        names, workers, beats, processed, failed, n_failed, stamps = pipe.execute()
    names, workers = sorted(map(str, names)), sorted(map(str, workers))
    with connection.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.llen(keys.queue(name))
        for wid in workers:
            _read_worker(pipe, keys, wid)
        for ts in stamps:
            pipe.llen(keys.delayed(int(float(ts))))
        replies = pipe.execute()
    n, m = len(names), len(names) + _PER_WORKER * len(workers)
    depths, per_worker, delayed = replies[:n], replies[n:m], replies[m:]
    now = time.time()
    return Snapshot(
        time=now,
        queues=dict(zip(names, map(int, depths), strict=True)),
        processed=_int(processed),
        failed=_int(failed),
        failed_store=int(n_failed),
        delayed=sum(map(int, delayed)),
        workers=_workers(workers, per_worker, beats, now),
    )


# -- queue latency: how long the oldest waiting job has waited ------------------------------


def oldest_ages(
    connection: redis.Redis, queues: Iterable[str], namespace: str = DEFAULT_NAMESPACE
) -> dict[str, float | None]:
    """Seconds the job at the head of each queue has waited (its payload's ``queue_time`` to
    now): the figure to alert on, since a depth means nothing without the rate. One round
    trip for any number of queues (TIME and each queue's ``LINDEX 0`` in one pipeline).

    The clock is Redis's (``TIME``, read in the same round trip), so every reader agrees
    whatever machine it runs on; ``queue_time`` is the producer's clock, so the age is as
    good as the producer's clock agrees with Redis's (an age below zero shows as 0.0).
    An empty queue is 0.0 (nothing waits). None means a job waits but its age is unknown:
    a Ruby Resque payload (no ``queue_time``), one that is not JSON, or a key that is not a
    list.
    """
    keys, names = Keys(namespace), list(queues)
    with connection.pipeline(transaction=False) as pipe:
        pipe.time()
        for name in names:
            pipe.execute_command("LINDEX", keys.queue(name), 0, **{NEVER_DECODE: True})
        replies = pipe.execute(raise_on_error=False)
    clock = replies[0]
    if isinstance(clock, Exception):
        raise clock
    now = int(clock[0]) + int(clock[1]) / 1e6
    return {name: _head_age(head, now) for name, head in zip(names, replies[1:], strict=True)}


def _head_age(head: Any, now: float) -> float | None:
    if head is None:
        return 0.0  # an empty queue (or no such key): nothing waits
    if isinstance(head, Exception):
        return None  # WRONGTYPE: not a queue labqueue can read
    queued = queue_time_of(head)
    return None if queued is None else max(0.0, round(now - queued, 3))


def queue_time_of(raw: str | bytes) -> float | None:
    """A raw payload's ``queue_time`` (epoch s) when it is a finite number, else None."""
    try:
        data = json.loads(raw)
    except ValueError:  # not JSON, not UTF-8 (UnicodeDecodeError is a ValueError)
        return None
    value = data.get("queue_time") if isinstance(data, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None
