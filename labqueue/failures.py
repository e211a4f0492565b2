"""The failed store: ``resque:failed``, a list of Resque failure records.

A record: ``{failed_at, payload, exception, error, backtrace, worker, queue}``, exactly as
Resque writes it, so resque-web lists labqueue's failures and labqueue lists Resque's.
Whatever else the list holds (text that is not JSON or not UTF-8, JSON that is no object or
nests too deep) lists as its raw text, is removed like a record, and is never requeued.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.client import NEVER_DECODE

from . import timefmt
from .errors import (
    ConfigurationError,
    JobNotFound,
    JobRaised,
    NotRequeuable,
    PayloadError,
    UnreadableData,
)
from .keys import DEFAULT_NAMESPACE, Keys
from .payload import ATTEMPTS_FIELD, CRASHES_FIELD, Payload, check_queue_name, dumps
from .reading import excerpt, loads, to_bytes, to_text, unreadable_key
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
        """The record in ``raw``: any JSON object reads, its fields as lenient as Resque's
        readers (a missing field is empty, a field of another type shown as JSON);
        UnreadableData for anything else (not JSON, not an object, nested too deep)."""
        data = loads(raw)
        if not isinstance(data, dict):
            raise UnreadableData(f"not a failure record (JSON, but not an object): {excerpt(raw)}")
        trace = data.get("backtrace")
        queue = data.get("queue")
        return cls(
            failed_at=_text(data.get("failed_at")),
            payload=data.get("payload"),
            exception=_text(data.get("exception")),
            error=_text(data.get("error")),
            backtrace=[_text(x) for x in trace] if isinstance(trace, list) else _lines(trace),
            worker=_text(data.get("worker")),
            queue=queue if isinstance(queue, str) else "",
            extra={k: v for k, v in data.items() if k not in _FIELDS},
        )

    @classmethod
    def unreadable(cls, text: str, why: str) -> Failure:
        """What :meth:`FailedStore.all` lists for an item that is no record: exception
        ``UnreadableRecord``, the reason as its error, the stored text as its payload."""
        return cls("", text, "UnreadableRecord", why, [], "", "")

    def requeue_problem(self) -> str | None:
        """Why this record cannot go back to a queue (None: it can)."""
        try:
            check_queue_name(self.queue)
        except ConfigurationError:
            return f"it names no queue to go back to ({excerpt(self.queue)})"
        payload = self.payload
        if payload is None:
            return "it has no payload"
        if isinstance(payload, str):
            try:
                payload = loads(payload)
            except UnreadableData as exc:
                return f"its payload is {exc}"
        try:
            Payload.from_dict(payload)
        except PayloadError as exc:
            return f"its payload is no job ({exc})"
        return None

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


_FIELDS = ("failed_at", "payload", "exception", "error", "backtrace", "worker", "queue")


def _text(value: Any) -> str:
    """A record's text field as text (a value of another type as its JSON)."""
    return "" if value is None else value if isinstance(value, str) else dumps(value)


def _lines(value: Any) -> list[str]:
    return [] if value is None else [_text(value)]


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # an exception whose __str__ itself fails
        return f"<unprintable {type(exc).__name__}>"


def record_digest(raw: str | bytes) -> str:
    """A short fingerprint of one stored failure record (of its bytes, as stored): names
    records without a job id, and items that are no record at all."""
    return hashlib.sha1(to_bytes(raw)).hexdigest()[:16]


@dataclass(frozen=True)
class StoredFailure:
    """One item of the failed list as stored: its bytes, its place, and the record they
    hold (None when they hold none: ``problem`` says why)."""

    raw: bytes
    position: int
    record: Failure | None
    problem: str | None = None

    @classmethod
    def read(cls, raw: bytes, position: int) -> StoredFailure:
        try:
            return cls(raw, position, Failure.from_json(raw))
        except UnreadableData as exc:
            return cls(raw, position, None, str(exc))

    @property
    def text(self) -> str:
        """The stored text (bytes that are not UTF-8 as lone surrogates)."""
        return to_text(self.raw)

    @property
    def digest(self) -> str:
        return record_digest(self.raw)

    @property
    def requeue_problem(self) -> str | None:
        """Why this item cannot be requeued (None: it can)."""
        if self.record is None:
            return f"it is no failure record: {self.problem}"
        return self.record.requeue_problem()

    def as_failure(self) -> Failure:
        """The record, or :meth:`Failure.unreadable` for an item that is none."""
        return self.record or Failure.unreadable(self.text, self.problem or "unreadable")


#: A position in the failed list, as a user types it.
_POSITION = re.compile(r"[0-9]{1,18}")


class FailedStore:
    """List, requeue and remove failure records, and the items that are none (each by its
    record digest or position): whatever the list holds is read as bytes, whatever the
    client decodes, so an item that is not UTF-8 is still removed exactly."""

    def __init__(self, connection: redis.Redis, namespace: str = DEFAULT_NAMESPACE) -> None:
        self.connection = connection
        self.keys = Keys(namespace)

    def __len__(self) -> int:
        try:
            return int(self.connection.llen(self.keys.failed))
        except redis.ResponseError as exc:
            raise unreadable_key(self.connection, self.keys.failed, "list", exc) from None

    def items(
        self, start: int = 0, count: int = -1, containing: str | None = None
    ) -> list[StoredFailure]:
        """Items from position ``start`` (0 = oldest), ``count`` of them (-1 = all), only
        those whose text holds ``containing`` when given (the rest are not parsed); an
        UnreadableKey when the failed list is not a list."""
        end = -1 if count < 0 else start + count - 1
        raws = self._lrange(self.connection, start, end)
        wanted = None if containing is None else to_bytes(containing)
        return [
            StoredFailure.read(raw, start + i)
            for i, raw in enumerate(raws)
            if wanted is None or wanted in raw
        ]

    def all(self, start: int = 0, count: int = -1) -> list[Failure]:
        """Records from position ``start`` (0 = oldest), ``count`` of them (-1 = all); an item
        that is no record lists as :meth:`Failure.unreadable`."""
        return [item.as_failure() for item in self.items(start, count)]

    def requeue(self, job_id: str | None = None) -> int:
        """Put one failed job (by id, position or record digest) or all (None) back; one that
        cannot go back raises NotRequeuable, and of all only those that can go back."""
        return self._take(job_id, requeue=True)[0]

    def requeue_all(self) -> tuple[int, int]:
        """Put every failed job that can go back on its queue: (requeued, left behind)."""
        return self._take(None, requeue=True)

    def remove(self, job_id: str | None = None) -> int:
        """Delete one failure record (by id, position or record digest) or all (None)."""
        return self._take(job_id, requeue=False)[0]

    def _lrange(self, client: Any, start: int, end: int) -> list[bytes]:
        try:
            return list(client.execute_command("LRANGE", self.keys.failed, start, end, **_BYTES))
        except redis.ResponseError as exc:
            raise unreadable_key(self.connection, self.keys.failed, "list", exc) from None

    def _take(self, job_id: str | None, requeue: bool) -> tuple[int, int]:
        """Under WATCH, so a worker adding a failure meanwhile is neither lost nor taken."""
        taken: list[StoredFailure] = []
        left: list[StoredFailure] = []

        def txn(pipe: redis.client.Pipeline) -> None:
            taken.clear()
            left.clear()
            items = [StoredFailure.read(r, i) for i, r in enumerate(self._lrange(pipe, 0, -1))]
            chosen = _select(items, job_id)
            why = self._why_not(pipe, chosen) if requeue else {}
            if job_id is not None and chosen and chosen[0].digest in why:
                told = why[chosen[0].digest]
                raise NotRequeuable(f"failure {job_id[:80]} cannot be requeued: {told}")
            pipe.multi()
            for item in chosen:
                if item.digest in why:
                    left.append(item)
                    continue
                pipe.lrem(self.keys.failed, 1, item.raw)  # type: ignore[arg-type]
                if requeue and item.record is not None:
                    self._requeue_commands(pipe, item.record)
                taken.append(item)

        self.connection.transaction(txn, self.keys.failed)
        if job_id is not None and not taken:
            raise JobNotFound(
                f"no failed job {job_id[:80]!r}: see `labqueue failed list` for ids and positions"
            )
        return len(taken), len(left)

    def _why_not(self, pipe: Any, items: list[StoredFailure]) -> dict[str, str]:
        """Why each item that cannot be requeued cannot (digest -> why): its own reason, or
        a key it would go to (its queue, the queues set) of another type. Those keys are
        watched, so what is found stays true until the transaction runs: nothing is taken
        from the failed list that a push could not take."""
        why = {i.digest: str(i.requeue_problem) for i in items if i.requeue_problem}
        ready = [(i, i.record) for i in items if i.digest not in why and i.record is not None]
        if not ready:
            return why
        wanted = {self.keys.queues: "set"}
        wanted.update({self.keys.queue(record.queue): "list" for _, record in ready})
        pipe.watch(*map(to_bytes, wanted))
        kinds = {key: to_text(pipe.type(to_bytes(key))) for key in wanted}
        wrong = {
            k: f"{k} is a {kinds[k]}, not a {v}"
            for k, v in wanted.items()
            if kinds[k] not in (v, "none")
        }
        for item, record in ready:
            bad = wrong.get(self.keys.queues) or wrong.get(self.keys.queue(record.queue))
            if bad:
                why[item.digest] = f"it cannot go back ({bad})"
        return why
        wanted = {self.keys.queues: "set"}
        wanted.update({self.keys.queue(i.record.queue): "list" for i in ready if i.record})
        pipe.watch(*map(to_bytes, wanted))
        kinds = {key: to_text(pipe.type(to_bytes(key))) for key in wanted}
        wrong = {
            k: f"{k} is a {kinds[k]}, not a {v}"
            for k, v in wanted.items()
            if kinds[k] not in (v, "none")
        }
        for item in ready:
            assert item.record is not None
            bad = wrong.get(self.keys.queues) or wrong.get(self.keys.queue(item.record.queue))
            if bad:
                why[item.digest] = f"it cannot go back ({bad})"
        return why

    def _requeue_commands(self, pipe: Any, rec: Failure) -> None:
        """Written as bytes: a queue name or payload that was not UTF-8 goes back as it was."""
        pipe.sadd(self.keys.queues, to_bytes(rec.queue))
        payload = rec.payload
        if isinstance(payload, dict) and ATTEMPTS_FIELD in payload:  # a fresh set of retries
            payload = {k: v for k, v in payload.items() if k != ATTEMPTS_FIELD}
        if isinstance(payload, dict) and CRASHES_FIELD in payload:  # and of crashes
            payload = {k: v for k, v in payload.items() if k != CRASHES_FIELD}
        text = payload if isinstance(payload, str) else _json_text(payload)
        pipe.rpush(to_bytes(self.keys.queue(rec.queue)), to_bytes(text))
        if rec.job_id:
            status = status_json(JobStatus.WAITING, time.time())
            pipe.set(to_bytes(self.keys.status(rec.job_id)), status)


#: Read a reply as bytes, whatever the client decodes.
_BYTES: dict[str, Any] = {NEVER_DECODE: True}


def _json_text(value: Any) -> str:
    """Compact JSON that encodes back to bytes (escaped where a lone surrogate stands)."""
    text = dumps(value)
    try:
        text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":"))
    return text


def _select(items: list[StoredFailure], job_id: str | None) -> list[StoredFailure]:
    if job_id is None:
        return list(items)
    for item in items:
        if item.digest == job_id or (item.record is not None and item.record.job_id == job_id):
            return [item]
    if _POSITION.fullmatch(job_id) and int(job_id) < len(items):
        return [items[int(job_id)]]
    return []
