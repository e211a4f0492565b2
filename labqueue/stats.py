"""The numbers everything else shows: one snapshot, read in two round trips, and the one
reader of registered workers."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

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
