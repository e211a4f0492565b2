"""What the monitor shows, read straight from Redis through :mod:`labqueue.keys`.

One function per page, each returning plain dataclasses that the HTML views and the JSON
API both render. Records written by Ruby Resque or php-resque read the same as ours: no id,
no ``queue_time``, positional args, unreadable JSON (shown raw, never run). Whatever else a
key holds (another type, JSON nested too deep, a time no calendar has) is shown as what it
is: a page renders what it can read and names the key it cannot.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, TypeVar

import redis

from .. import timefmt
from ..delayed import read_delayed
from ..errors import JobNotFound, PayloadError, UnreadableData, UnreadableKey
from ..failures import FailedStore, Failure, StoredFailure
from ..keys import Keys
from ..payload import Payload
from ..reading import key_problem, loads, printable, read_one
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
    problem: str | None = None  #: why the list cannot be read (a key of another type)

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
            "problem": self.problem,
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
            p = Payload.from_dict(loads(raw), raw)
        except (UnreadableData, PayloadError) as exc:
            return cls(position, "?", None, None, None, raw, error=str(exc))
        queue, attempts = p.extra.get("queue"), p.extra.get("attempts")
        return cls(
            position,
            p.class_name,
            p.args,
            p.id,
            p.queue_time if p.queue_time is not None and math.isfinite(p.queue_time) else None,
            raw,
            queue if isinstance(queue, str) else None,
            attempts=attempts if isinstance(attempts, int) and attempts > 0 else None,
        )

    @property
    def payload(self) -> Any:
        try:
            return loads(self.raw)
        except UnreadableData:
            return self.raw


def page_bounds(page: int, per_page: int, total: int) -> tuple[int, int] | None:
    """0-based [start, end] of ``page`` (None when past the last page; page 1 always exists)."""
    if page < 1 or (page > 1 and (page - 1) * per_page >= total):
        return None
    start = (page - 1) * per_page
    return start, start + per_page - 1


def queue_known(conn: Any, keys: Keys, name: str) -> bool:
    listed = read_one(conn, {}, "sismember", keys.queues, name)
    return bool(listed) or bool(conn.exists(keys.queue(name)))


def queue_page(conn: Any, keys: Keys, name: str, page: int, per_page: int) -> Page[JobRow] | None:
    """Jobs waiting on ``name``, oldest first; None for an unknown queue or page."""
    if not queue_known(conn, keys, name):
        return None
    problems: dict[str, str] = {}
    total = int(read_one(conn, problems, "llen", keys.queue(name)))
    bounds = page_bounds(page, per_page, total)
    if bounds is None:
        return None
    raws = read_one(conn, problems, "lrange", keys.queue(name), *bounds)
    rows = [JobRow.from_raw(r, bounds[0] + i) for i, r in enumerate(raws)]
    return Page(rows, page, per_page, total, _first(problems))


def _first(problems: dict[str, str]) -> str | None:
    return next(iter(problems.values()), None)


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
    problems: list[str] = field(default_factory=list)  #: its keys that cannot be read
    thread: int | None = None  #: K of a worker thread (``host:pid:queues:tK``)
    threads: int | None = None  #: how many threads of its process are registered


def workers(
    conn: Any, keys: Keys, now: float, stale_after: float, problems: dict[str, str] | None = None
) -> list[WorkerRow]:
    """Every registered worker, sorted by id; stale when its heartbeat is old (none is not
    stale: php-resque workers never beat). Keys that cannot be read are skipped, and said
    (key -> why) in ``problems`` if given."""
    rows = []
    for w in read_workers(conn, keys.namespace, problems):
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
                w.problems,
                w.thread,
                w.threads,
            )
        )
    return rows


# -- failures -----------------------------------------------------------------------------
@dataclass(frozen=True)
class FailureRow:
    """One item of the failed list, named by its digest (Ruby records have no job id);
    ``failure`` is None for an item that is no record (``problem`` says why)."""

    digest: str
    position: int
    failure: Failure | None
    raw: str
    failed_at: float | None = None
    problem: str | None = None

    @classmethod
    def of(cls, item: StoredFailure) -> FailureRow:
        f = item.record
        at = timefmt.parse(f.failed_at) if f else None
        return cls(item.digest, item.position, f, item.text, at, item.problem)

    @property
    def job(self) -> JobRow:
        f = self.failure
        return JobRow.from_raw(f.payload_json() if f else self.raw, self.position)

    def to_dict(self) -> dict[str, Any]:
        f = self.failure
        return {
            "digest": self.digest,
            "position": self.position,
            "unreadable": f is None,
            "failed_at": f.failed_at if f else None,
            "failed_at_ts": self.failed_at,
            "job_id": f.job_id if f else None,
            "class": f.job_class if f else "?",
            "queue": f.queue if f else None,
            "exception": f.exception if f else "unreadable failure record",
            "error": f.error if f else self.problem,
            "backtrace": f.backtrace if f else [],
            "worker": f.worker if f else None,
            "payload": f.payload if f else None,
            "raw": None if f else printable(self.raw, lines=True),
        }


def failed_page(conn: Any, keys: Keys, page: int, per_page: int) -> Page[FailureRow] | None:
    """Failures, newest first; None past the last page."""
    store = FailedStore(conn, keys.namespace)
    try:
        total = len(store)
    except UnreadableKey as exc:
        return Page([], 1, per_page, 0, str(exc)) if page == 1 else None
    bounds = page_bounds(page, per_page, total)
    if bounds is None:
        return None
    start, end = bounds
    # newest first: page 1 is the tail of the list
    lo, hi = max(0, total - 1 - end), total - 1 - start
    items = store.items(lo, hi - lo + 1) if total else []
    return Page([FailureRow.of(i) for i in reversed(items)], page, per_page, total)


# -- delayed ------------------------------------------------------------------------------
@dataclass(frozen=True)
class DelayedRow:
    due: float
    job: JobRow


def delayed(
    conn: Any, keys: Keys, limit: int, problems: dict[str, str] | None = None
) -> tuple[list[DelayedRow], int]:
    """Up to ``limit`` delayed jobs, soonest first (at their exact time), and how many there
    are in all; keys that cannot be read are said in ``problems`` if given."""
    jobs, total = read_delayed(conn, keys.namespace, limit, problems)
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
    status_problem: str | None = None  #: why its status record cannot be read
    problems: dict[str, str] = field(default_factory=dict)  #: keys skipped, and why


def _scan_list(
    conn: Any, key: str, job_id: str, limit: int, problems: dict[str, str]
) -> tuple[list[JobRow], bool]:
    found, start, chunk = [], 0, 1000
    while start < limit:
        raws = read_one(conn, problems, "lrange", key, start, start + chunk - 1)
        found += [JobRow.from_raw(r, start + i) for i, r in enumerate(raws) if job_id in r]
        if len(raws) < chunk:
            return [j for j in found if j.id == job_id], True
        start += chunk
    return [j for j in found if j.id == job_id], False


def _status(conn: Any, keys: Keys, job_id: str) -> tuple[StatusRecord | None, str | None]:
    """The job's status record, or why it cannot be read (None, None: it has none)."""
    try:
        return get_status(conn, job_id, keys), None
    except JobNotFound:
        return None, None
    except UnreadableData as exc:
        return None, f"{keys.status(job_id)}: {exc}"
    except redis.ResponseError as exc:
        return None, key_problem(conn, keys.status(job_id), "string", exc)


def _failed_places(conn: Any, keys: Keys, job_id: str, limit: int, found: JobLookup) -> None:
    try:
        items = FailedStore(conn, keys.namespace).items(0, limit, containing=job_id)
    except UnreadableKey as exc:
        found.problems[exc.key] = str(exc)
        return
    for item in items:
        row = FailureRow.of(item)
        if row.failure is not None and row.failure.job_id == job_id:
            found.places.append(Place("failed", row.failure.queue, row.job, row))


def find_job(conn: Any, keys: Keys, job_id: str, scan_limit: int = SCAN_LIMIT) -> JobLookup | None:
    """A job's status and every place its payload is; None when nothing knows the id."""
    status, status_problem = _status(conn, keys, job_id)
    found = JobLookup(job_id, status, status_problem=status_problem)
    problems = found.problems
    for name in sorted(map(str, read_one(conn, problems, "smembers", keys.queues))):
        rows, complete = _scan_list(conn, keys.queue(name), job_id, scan_limit, problems)
        found.places += [Place("queue", name, r) for r in rows]
        found.scanned_all &= complete
    for w in workers(conn, keys, 0.0, math.inf, problems):
        if w.job is not None and w.job.id == job_id:
            found.places.append(Place("running", w.id, w.job))
    _failed_places(conn, keys, job_id, scan_limit, found)
    for d in delayed(conn, keys, scan_limit, problems)[0]:
        if d.job.id == job_id:
            found.places.append(Place("delayed", d.job.queue or "?", d.job, due=d.due))
    known = found.status is not None or found.status_problem or found.places
    return found if known else None
