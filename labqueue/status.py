"""Per-job status, as php-resque keeps it: ``job:ID:status`` = ``{status, updated, started}``.

labqueue's own producers create a status for every job and the worker writes every step.
A payload from php-resque (it always carries a ``prefix`` field, ``""`` when none) follows
php-resque's rules instead: its key is ``job:<prefix>_<id>:status``, a status is updated
only if it exists (php-resque creates one only with tracking on), ``started`` keeps what
creation wrote, and ``result`` holds what ``perform`` returned (see :func:`php_status`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import redis

from .errors import JobNotFound, UnreadableData
from .keys import Keys
from .payload import Payload
from .reading import excerpt, loads

#: How long a finished job's status is kept, as php-resque does (one day).
FINISHED_TTL = 24 * 3600


class JobStatus(IntEnum):
    """php-resque's status codes."""

    #: in a queue (or delayed), not yet taken by a worker
    WAITING = 1
    #: taken by a worker, ``perform`` under way
    RUNNING = 2
    #: ``perform`` raised, or the payload could not be run; see the failed store
    FAILED = 3
    #: ``perform`` returned
    COMPLETE = 4

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class StatusRecord:
    """What ``job:ID:status`` holds."""

    status: JobStatus
    updated: float
    started: float | None = None

    def to_json(self) -> str:
        return _status_text(self.status, self.updated, self.started)

    @classmethod
    def from_json(cls, raw: str | bytes) -> StatusRecord:
        """The record in ``raw``; UnreadableData when it is none (not JSON, nested too deep,
        an unknown status, a field missing or of another type)."""
        data = loads(raw)
        try:
            return cls(JobStatus(int(data["status"])), float(data["updated"]), data.get("started"))
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            why = f"{type(exc).__name__}: {exc}"
            raise UnreadableData(f"not a status record ({why}): {excerpt(raw)}") from None


def _status_text(status: int, updated: float, started: float | None) -> str:
    """``{"status":4,"updated":T,"started":T}`` in whole seconds, as php-resque writes it.

    Formatted directly (the same text json.dumps gives for these ints): a worker writes
    one per job, so it skips the record object and the JSON encoder.
    """
    if started is None:
        return f'{{"status":{int(status)},"updated":{int(updated)}}}'
    return f'{{"status":{int(status)},"updated":{int(updated)},"started":{int(started)}}}'


def status_json(status: JobStatus, started: float | None = None) -> str:
    """The status JSON of a job in ``status`` now (``started``: when it began running)."""
    return _status_text(status, time.time(), started)


#: The last second running_json() formatted, and its text: a worker asks once per job.
_running_cache: tuple[int, str] = (-1, "")


def running_json(now: float) -> str:
    """The status JSON of a job a worker takes at ``now`` (running, started then): what the
    worker's fetch writes, formatted once per second."""
    global _running_cache
    second = int(now)
    cached = _running_cache
    if cached[0] != second:
        cached = _running_cache = (second, _status_text(JobStatus.RUNNING, second, second))
    return cached[1]


def get_status(connection: redis.Redis, job_id: str, keys: Keys | None = None) -> StatusRecord:
    """The status of a job; JobNotFound if it has none (unknown, or expired after a day)."""
    keys = keys or Keys()
    raw = connection.get(keys.status(job_id))
    if raw is None:
        raise JobNotFound(
            f"no status for job {job_id}: the id is wrong, or the job finished over a day ago"
        )
    return StatusRecord.from_json(raw)


def get_statuses(
    connection: redis.Redis, job_ids: Sequence[str], keys: Keys | None = None
) -> dict[str, StatusRecord | None]:
    """The statuses of several jobs in one round trip (MGET); None for a job that has none."""
    keys = keys or Keys()
    if not job_ids:
        return {}
    raws = connection.mget([keys.status(job_id) for job_id in job_ids])
    return {
        job_id: None if raw is None else StatusRecord.from_json(raw)
        for job_id, raw in zip(job_ids, raws, strict=True)
    }


#: The payload field php-resque writes on every job (``""`` when it has no prefix).
PREFIX_FIELD = "prefix"


def php_prefix(payload: Payload | None) -> str | None:
    """php-resque's prefix of a payload (``""``: none), or None for a payload that is not
    php-resque's (no ``prefix`` field): labqueue's and Ruby's, whose status rules are ours."""
    if payload is None or PREFIX_FIELD not in payload.extra:
        return None
    prefix = payload.extra[PREFIX_FIELD]
    return prefix if isinstance(prefix, str) else ""


def result_json(value: object) -> str:
    """What ``perform`` returned, as JSON for php-resque's ``result`` (null if not JSON)."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return "null"


def php_status(status: JobStatus, result: object = None, now: float | None = None) -> str:
    """The STEP argument for a php-resque payload's status: ``'?' head \\x01 tail``, where
    the script writes ``head + started + tail`` only if the status exists, with ``started``
    read from it (php-resque's ``Resque_Job_Status::update``)."""
    updated = math.floor(time.time() if now is None else now)
    head = f'{{"status":{int(status)},"updated":{updated},"started":'
    return f'?{head}\x01,"result":{result_json(result)}}}'
