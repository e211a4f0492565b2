"""What the monitor shows, read straight from Redis through :mod:`labqueue.keys`.

One function per page, each returning plain dataclasses that the HTML views and the JSON
API both render. Records written by Ruby Resque or php-resque read the same as ours: no id,
no ``queue_time``, positional args, unreadable JSON (shown raw, never run).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, TypeVar

from .. import timefmt
from ..delayed import read_delayed
from ..errors import JobNotFound, PayloadError
from ..failures import Failure, record_digest
from ..keys import Keys
from ..payload import Payload
from ..stats import read_workers
from ..status import StatusRecord, get_status

T = TypeVar("T")

#: How many entries of each queue a job-by-id lookup reads before it gives up.
SCAN_LIMIT = 20_000


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a longer list; ``page`` counts from 1."""

    items: list[T]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def first(self) -> int:
        """1-based number of the first item shown (0 when empty)."""
        return (self.page - 1) * self.per_page + 1 if self.items else 0

    @property
    def last(self) -> int:
        return self.first + len(self.items) - 1 if self.items else 0

    def to_dict(self, item: Any = asdict) -> dict[str, Any]:
        return {
            "page": self.page,
            "per_page": self.per_page,
            "pages": self.pages,
            "total": self.total,
            "items": [item(i) for i in self.items],
        }


@dataclass(frozen=True)
class JobRow:
    """One payload as it waits somewhere (a queue, the delayed schedule, a worker)."""

    position: int
    class_name: str
    args: Any
    id: str | None
    queue_time: float | None
    raw: str
    queue: str | None = None
    error: str | None = None  #: why the payload cannot be read (it would fail if run)
    attempts: int | None = None  #: failed runs so far (a retry carries it)

    @classmethod
    def from_raw(cls, raw: str, position: int = 0) -> JobRow:
        try:
            p = Payload.from_json(raw)
        except PayloadError as exc:
            return cls(position, "?", None, None, None, raw, error=str(exc))
        queue, attempts = p.extra.get("queue"), p.extra.get("attempts")
        return cls(
            position,
            p.class_name,
            p.args,
            p.id,
            p.queue_time,
            raw,
            queue if isinstance(queue, str) else None,
            attempts=attempts if isinstance(attempts, int) and attempts > 0 else None,
        )

    @property
    def payload(self) -> Any:
        try:
            return json.loads(self.raw)
        except ValueError:
            return self.raw


def page_bounds(page: int, per_page: int, total: int) -> tuple[int, int] | None:
    """0-based [start, end] of ``page`` (None when past the last page; page 1 always exists)."""
    if page < 1 or (page > 1 and (page - 1) * per_page >= total):
        return None
    start = (page - 1) * per_page
    return start, start + per_page - 1


def queue_known(conn: Any, keys: Keys, name: str) -> bool:
    return bool(conn.sismember(keys.queues, name)) or bool(conn.exists(keys.queue(name)))


def queue_page(conn: Any, keys: Keys, name: str, page: int, per_page: int) -> Page[JobRow] | None:
    """Jobs waiting on ``name``, oldest first; None for an unknown queue or page."""
    if not queue_known(conn, keys, name):
        return None
    total = int(conn.llen(keys.queue(name)))
    bounds = page_bounds(page, per_page, total)
    if bounds is None:
        return None
    raws = conn.lrange(keys.queue(name), *bounds)
    rows = [JobRow.from_raw(r, bounds[0] + i) for i, r in enumerate(raws)]
    return Page(rows, page, per_page, total)


# -- workers ------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkerRow:
    """One registered worker, with its current job and liveness."""

    id: str
    host: str
    pid: str
    queues: list[str]
    started: float | None
    heartbeat: float | None
    heartbeat_age: float | None
    stale: bool
    processed: int
    failed: int
    job: JobRow | None = None
    job_queue: str | None = None
    run_at: float | None = None


def workers(conn: Any, keys: Keys, now: float, stale_after: float) -> list[WorkerRow]:
    """Every registered worker, sorted by id; stale when its heartbeat is old (none is not
    stale: php-resque workers never beat)."""
    rows = []
    for w in read_workers(conn, keys.namespace):
        age = None if w.heartbeat is None else max(0.0, now - w.heartbeat)
        rows.append(
            WorkerRow(
                w.id,
                w.host,
                w.pid,
                w.queues,
                w.started,
                w.heartbeat,
                age,
                age is not None and age > stale_after,
                w.processed,
                w.failed,
                None if w.payload is None else JobRow.from_raw(w.payload),
                w.queue,
                timefmt.parse(w.run_at) if w.run_at else None,
            )
        )
    return rows


# -- failures -----------------------------------------------------------------------------
@dataclass(frozen=True)
class FailureRow:
    """One failure record, named by its digest (Ruby records have no job id)."""

    digest: str
    position: int
    failure: Failure | None
    raw: str
    failed_at: float | None = None

    @property
    def job(self) -> JobRow:
        f = self.failure
        return JobRow.from_raw(f.payload_json() if f else self.raw, self.position)

    def to_dict(self) -> dict[str, Any]:
        f = self.failure
        return {
            "digest": self.digest,
            "position": self.position,
            "failed_at": f.failed_at if f else None,
            "failed_at_ts": self.failed_at,
            "job_id": f.job_id if f else None,
            "class": f.job_class if f else "?",
            "queue": f.queue if f else None,
            "exception": f.exception if f else "unreadable failure record",
            "error": f.error if f else self.raw[:200],
            "backtrace": f.backtrace if f else [],
            "worker": f.worker if f else None,
            "payload": f.payload if f else None,
        }


def failure_row(raw: str, position: int) -> FailureRow:
    try:
        f = Failure.from_json(raw)
    except (ValueError, TypeError, AttributeError):
        return FailureRow(record_digest(raw), position, None, raw)
    return FailureRow(record_digest(raw), position, f, raw, timefmt.parse(f.failed_at))


def failed_page(conn: Any, keys: Keys, page: int, per_page: int) -> Page[FailureRow] | None:
    """Failures, newest first; None past the last page."""
    total = int(conn.llen(keys.failed))
    bounds = page_bounds(page, per_page, total)
    if bounds is None:
        return None
    start, end = bounds
    # newest first: page 1 is the tail of the list
    lo, hi = max(0, total - 1 - end), total - 1 - start
    raws = conn.lrange(keys.failed, lo, hi) if total else []
    rows = [failure_row(r, lo + i) for i, r in enumerate(raws)]
    return Page(rows[::-1], page, per_page, total)


# -- delayed ------------------------------------------------------------------------------
@dataclass(frozen=True)
class DelayedRow:
    due: float
    job: JobRow


def delayed(conn: Any, keys: Keys, limit: int) -> tuple[list[DelayedRow], int]:
    """Up to ``limit`` delayed jobs, soonest first (at their exact time), and how many there
    are in all."""
    jobs, total = read_delayed(conn, keys.namespace, limit)
    return [DelayedRow(d.due, JobRow.from_raw(d.raw, d.position)) for d in jobs], total


# -- one job by id ------------------------------------------------------------------------
@dataclass
class Place:
    """Where a job was found: ``queue``, ``running``, ``failed`` or ``delayed``."""

    kind: str
    where: str
    job: JobRow
    failure: FailureRow | None = None
    due: float | None = None


@dataclass
class JobLookup:
    id: str
    status: StatusRecord | None
    places: list[Place] = field(default_factory=list)
    scanned_all: bool = True


def _scan_list(conn: Any, key: str, job_id: str, limit: int) -> tuple[list[JobRow], bool]:
    found, start, chunk = [], 0, 1000
    while start < limit:
        raws = conn.lrange(key, start, start + chunk - 1)
        found += [JobRow.from_raw(r, start + i) for i, r in enumerate(raws) if job_id in r]
        if len(raws) < chunk:
            return [j for j in found if j.id == job_id], True
        start += chunk
    return [j for j in found if j.id == job_id], False


def find_job(conn: Any, keys: Keys, job_id: str, scan_limit: int = SCAN_LIMIT) -> JobLookup | None:
    """A job's status and every place its payload is; None when nothing knows the id."""
    try:
        status: StatusRecord | None = get_status(conn, job_id, keys)
    except JobNotFound:
        status = None
    found = JobLookup(job_id, status)
    for name in sorted(map(str, conn.smembers(keys.queues))):
        rows, complete = _scan_list(conn, keys.queue(name), job_id, scan_limit)
        found.places += [Place("queue", name, r) for r in rows]
        found.scanned_all &= complete
    for w in workers(conn, keys, 0.0, math.inf):
        if w.job is not None and w.job.id == job_id:
            found.places.append(Place("running", w.id, w.job))
    for i, raw in enumerate(conn.lrange(keys.failed, 0, scan_limit - 1)):
        if job_id in raw:
            row = failure_row(raw, i)
            if row.failure is not None and row.failure.job_id == job_id:
                found.places.append(Place("failed", row.failure.queue, row.job, row))
    for d in delayed(conn, keys, scan_limit)[0]:
        if d.job.id == job_id:
            found.places.append(Place("delayed", d.job.queue or "?", d.job, due=d.due))
    return found if (status is not None or found.places) else None
