"""The numbers everything else shows: one snapshot, read in one round trip."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from . import timefmt
from .keys import DEFAULT_NAMESPACE, Keys


@dataclass(frozen=True)
class WorkerInfo:
    """One registered worker, as ``resque:workers`` and its keys describe it."""

    id: str
    queues: list[str]
    busy: bool
    queue: str | None = None  #: the queue of the job it runs
    job_class: str | None = None
    run_at: str | None = None
    heartbeat_age: float | None = None  #: seconds since its last beat (None: never beat)


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
    def queued(self) -> int:
        return sum(self.queues.values())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["busy_workers"] = self.busy_workers
        data["queued"] = self.queued
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def _int(value: Any) -> int:
    return int(value) if value else 0


def _worker(wid: str, busy_raw: Any, beat: Any, now: float) -> WorkerInfo:
    parts = wid.split(":", 2)
    queues = parts[2].split(",") if len(parts) == 3 else []
    beat_ts = timefmt.parse(str(beat)) if beat else None
    age = round(now - beat_ts, 1) if beat_ts is not None else None
    if not busy_raw:
        return WorkerInfo(wid, queues, False, heartbeat_age=age)
    try:
        busy = json.loads(busy_raw)
        payload = busy.get("payload")
        cls = payload.get("class") if isinstance(payload, dict) else None
        return WorkerInfo(wid, queues, True, busy.get("queue"), cls, busy.get("run_at"), age)
    except (ValueError, AttributeError):
        return WorkerInfo(wid, queues, True, heartbeat_age=age)


def snapshot(connection: Any, namespace: str = DEFAULT_NAMESPACE) -> Snapshot:
    """Everything ``labqueue stats`` prints: two round trips, however many queues."""
    keys = Keys(namespace)
    with connection.pipeline(transaction=False) as pipe:
        pipe.smembers(keys.queues).smembers(keys.workers).hgetall(keys.heartbeat)
        pipe.get(keys.stat("processed")).get(keys.stat("failed")).llen(keys.failed)
        pipe.zrange(keys.delayed_schedule, 0, -1)
        names, workers, beats, processed, failed, n_failed, stamps = pipe.execute()
    names, workers = sorted(map(str, names)), sorted(map(str, workers))
    with connection.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.llen(keys.queue(name))
        for wid in workers:
            pipe.get(keys.worker(wid))
        for ts in stamps:
            pipe.llen(keys.delayed(int(float(ts))))
        replies = pipe.execute()
    n, m = len(names), len(names) + len(workers)
    depths, busy, delayed = replies[:n], replies[n:m], replies[m:]
    now = time.time()
    return Snapshot(
        time=now,
        queues=dict(zip(names, map(int, depths), strict=True)),
        processed=_int(processed),
        failed=_int(failed),
        failed_store=int(n_failed),
        delayed=sum(map(int, delayed)),
        workers=[_worker(w, b, beats.get(w), now) for w, b in zip(workers, busy, strict=True)],
    )
