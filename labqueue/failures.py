"""The failed store: ``resque:failed``, a list of Resque failure records.

A record: ``{failed_at, payload, exception, error, backtrace, worker, queue}``, exactly as
Resque writes it, so resque-web lists labqueue's failures and labqueue lists Resque's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import redis

from . import timefmt
from .errors import JobNotFound, JobRaised
from .keys import DEFAULT_NAMESPACE, Keys
from .payload import ATTEMPTS_FIELD, CRASHES_FIELD, dumps
from .status import JobStatus, status_json

#: What stands for the payload in :meth:`Failure.halves` (a string no payload is).
_HOLE = "\x00payload\x00"


@dataclass(frozen=True)
class Failure:
    """One failure record."""

    failed_at: str
    payload: Any  # the job's payload object, or the raw text when it was not JSON
    exception: str
    error: str
    backtrace: list[str]
    worker: str
    queue: str
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_exception(
        cls, exc: BaseException, raw: str, worker: str, queue: str, **extra: Any
    ) -> Failure:
        """The record for ``exc``; never raises, whatever ``raw`` holds."""
        if isinstance(exc, JobRaised):  # raised in a child process: report the original
            name, error, lines = exc.exception, exc.error, exc.backtrace
        else:
            frames = traceback.format_tb(exc.__traceback__) if exc.__traceback__ else []
            lines = [ln for frame in frames for ln in frame.rstrip("\n").split("\n")]
            name, error = type(exc).__name__, _message(exc)
        payload = kept_payload(raw)
        return cls(timefmt.failed_at(), payload, name, error, lines, worker, queue, extra)

    def to_json(self) -> str:
        record = {
            "failed_at": self.failed_at,
            "payload": self.payload,
            "exception": self.exception,
            "error": self.error,
            "backtrace": self.backtrace,
            "worker": self.worker,
            "queue": self.queue,
            **self.extra,
        }
        text = dumps(record)
        try:
            text.encode()
        except UnicodeEncodeError:  # lone surrogates from a payload's escapes: keep them escaped
            text = json.dumps(record, separators=(",", ":"))
        return text

    def halves(self) -> tuple[str, str]:
        """This record's JSON cut where its payload goes, for a Lua script that has the
        payload and pastes it (as a JSON string) between the two halves."""
        text = dataclasses.replace(self, payload=_HOLE).to_json()
        before, _, after = text.partition(dumps(_HOLE))
        return before, after

    @classmethod
    def from_json(cls, raw: str | bytes) -> Failure:
        data = json.loads(raw)
        known = ("failed_at", "payload", "exception", "error", "backtrace", "worker", "queue")
        return cls(
            failed_at=str(data.get("failed_at", "")),
            payload=data.get("payload"),
            exception=str(data.get("exception", "")),
            error=str(data.get("error", "")),
            backtrace=list(data.get("backtrace") or []),
            worker=str(data.get("worker", "")),
            queue=str(data.get("queue", "")),
            extra={k: v for k, v in data.items() if k not in known},
        )

    @property
    def job_id(self) -> str | None:
        p = self.payload
        return p.get("id") if isinstance(p, dict) and isinstance(p.get("id"), str) else None

    @property
    def job_class(self) -> str:
        p = self.payload
        return str(p.get("class", "?")) if isinstance(p, dict) else "?"

    def payload_json(self) -> str:
        return self.payload if isinstance(self.payload, str) else dumps(self.payload)


def kept_payload(raw: str) -> Any:
    """What a record keeps of a payload: the object if ``raw`` is a clean JSON object (as
    Resque records it), else the raw text itself, byte for byte."""
    try:
        data = json.loads(raw)
        if isinstance(data, dict):
            json.dumps(data, allow_nan=False)  # NaN, Infinity: not JSON for other readers
            return data
    except (ValueError, RecursionError):
        pass
    return raw


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # an exception whose __str__ itself fails
        return f"<unprintable {type(exc).__name__}>"


def record_digest(raw: str | bytes) -> str:
    """A short fingerprint of one stored failure record: names records without a job id."""
    data = raw if isinstance(raw, bytes) else str(raw).encode()
    return hashlib.sha1(data).hexdigest()[:16]


class FailedStore:
    """List, requeue and remove failure records."""

    def __init__(self, connection: redis.Redis, namespace: str = DEFAULT_NAMESPACE) -> None:
        self.connection = connection
        self.keys = Keys(namespace)

    def __len__(self) -> int:
        return int(self.connection.llen(self.keys.failed))

    def all(self, start: int = 0, count: int = -1) -> list[Failure]:
        """Records from position ``start`` (0 = oldest), ``count`` of them (-1 = all)."""
        end = -1 if count < 0 else start + count - 1
        return [Failure.from_json(r) for r in self.connection.lrange(self.keys.failed, start, end)]

    def requeue(self, job_id: str | None = None) -> int:
        """Put one failed job (by id, position or record digest) or all (None) back."""
        return self._take(job_id, requeue=True)

    def remove(self, job_id: str | None = None) -> int:
        """Delete one failure record (by id, position or record digest) or all (None)."""
        return self._take(job_id, requeue=False)

    def _take(self, job_id: str | None, requeue: bool) -> int:
        """Under WATCH, so a worker adding a failure meanwhile is neither lost nor taken."""
        taken: list[Failure] = []

        def txn(pipe: redis.client.Pipeline) -> None:
            taken.clear()
            raws = pipe.lrange(self.keys.failed, 0, -1)
            chosen = _select(raws, job_id)
            pipe.multi()
            for raw in chosen:
                rec = Failure.from_json(raw)
                pipe.lrem(self.keys.failed, 1, raw)
                if requeue:
                    self._requeue_commands(pipe, rec)
                taken.append(rec)

        self.connection.transaction(txn, self.keys.failed)
        if job_id is not None and not taken:
            raise JobNotFound(
                f"no failed job {job_id!r}: see `labqueue failed list` for ids and positions"
            )
        return len(taken)

    def _requeue_commands(self, pipe: Any, rec: Failure) -> None:
        pipe.sadd(self.keys.queues, rec.queue)
        payload = rec.payload
        if isinstance(payload, dict) and ATTEMPTS_FIELD in payload:  # a fresh set of retries
            payload = {k: v for k, v in payload.items() if k != ATTEMPTS_FIELD}
        if isinstance(payload, dict) and CRASHES_FIELD in payload:  # and of crashes
            payload = {k: v for k, v in payload.items() if k != CRASHES_FIELD}
        pipe.rpush(
            self.keys.queue(rec.queue), payload if isinstance(payload, str) else dumps(payload)
        )
        if rec.job_id:
            pipe.set(self.keys.status(rec.job_id), status_json(JobStatus.WAITING, time.time()))


def _select(raws: list[Any], job_id: str | None) -> list[Any]:
    if job_id is None:
        return list(raws)
    for raw in raws:
        try:
            if Failure.from_json(raw).job_id == job_id or record_digest(raw) == job_id:
                return [raw]
        except ValueError:
            continue
    if job_id.isdigit() and int(job_id) < len(raws):
        return [raws[int(job_id)]]
    return []
