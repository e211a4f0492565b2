"""Job payloads <-> JSON, in the format Resque and php-resque share.

    {"class": "Job\\\\Work\\\\TestJob", "args": [{...}], "id": "32 hex", "queue_time": 1.7e9}

php-resque adds ``id`` and ``queue_time``; Ruby Resque sends only ``class`` and ``args``,
so both are optional when reading. ``args`` is a list: php-resque puts one dict in it
(``[{...}]``), Ruby Resque the positional arguments of ``perform``. Fields labqueue does
not know are kept, so a payload survives a round trip byte for byte in meaning.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigurationError, PayloadError

#: A payload larger than this is refused when enqueued and failed when read.
MAX_PAYLOAD_BYTES = 1024 * 1024

_KNOWN = ("class", "args", "id", "queue_time")

#: Extra payload fields labqueue writes (Resque readers ignore fields they don't know):
#: the queue a delayed job goes to (resque-scheduler's own field), its exact due time (the
#: ``delayed:TS`` key has whole seconds only), how many runs of it have failed so far, and
#: how many of its runs died with their worker.
QUEUE_FIELD = "queue"
SCHEDULED_FOR_FIELD = "scheduled_for"
ATTEMPTS_FIELD = "attempts"
#: How many times a worker died while running this job (counted by the RELEASE script that
#: puts it back; :mod:`labqueue.worker.crashes` fails it once the count reaches its limit).
CRASHES_FIELD = "crashes"


def new_job_id() -> str:
    """A php-resque style job id: 32 lowercase hex digits (a random UUID 4, as uuid4().hex).

    The bits are set as ``uuid.UUID(version=4)`` sets them, without building the object:
    an enqueue makes one per job.
    """
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return raw.hex()


#: The encoder json.dumps(separators=(",", ":"), ensure_ascii=False) builds on every call,
#: built once (encoding keeps no state between calls, so it is safe to share).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
#: The same, refusing NaN and Infinity: what payloads are written with. Python reads them,
#: Ruby's and PHP's JSON parsers refuse them, so a job carrying one could run here only.
_STRICT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def dumps(value: Any) -> str:
    """Compact JSON, as Resque writes it (for showing and for records read elsewhere: NaN
    passes through here; payloads are written strictly)."""
    return _ENCODER.encode(value)


#: A JSON string literal, exactly as dumps() writes one (ensure_ascii=False).
_json_string = json.encoder.encode_basestring
_INF = float("inf")


def excerpt(raw: str | bytes, limit: int = 80) -> str:
    """The start of a raw payload, for error messages."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass(frozen=True)
class Payload:
    """One job as it travels through Redis."""

    class_name: str
    args: list[Any]
    id: str | None = None
    queue_time: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def new(cls, class_name: str, args: list[Any]) -> Payload:
        """A fresh payload with a new id and the current time, validated."""
        check_class_name(class_name)
        return cls(class_name, list(args), new_job_id(), time.time())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"class": self.class_name, "args": self.args}
        if self.id is not None:
            out["id"] = self.id
        if self.queue_time is not None:
            out["queue_time"] = self.queue_time
        out.update(self.extra)
        return out

    def to_json(self) -> str:
        """Compact JSON; raises PayloadError when an argument is not JSON-serialisable."""
        try:
            if self._is_fresh():
                text = _fresh_text(self.class_name, self.args, self.id, self.queue_time)  # type: ignore[arg-type]
            else:
                text = _STRICT.encode(self.to_dict())
        except (TypeError, ValueError) as exc:
            raise _not_json(self.class_name, exc) from None
        return _within_limit(text, self.class_name)

    def _is_fresh(self) -> bool:
        """The shape every enqueue makes: an id, a finite float queue_time, no extra field."""
        qt = self.queue_time
        return not self.extra and type(self.id) is str and type(qt) is float and -_INF < qt < _INF

    @classmethod
    def from_json(cls, raw: str | bytes) -> Payload:
        """Read a payload pushed by labqueue, Resque or php-resque; PayloadError if unusable."""
        if len(raw) > MAX_PAYLOAD_BYTES:
            raise PayloadError(f"payload is {len(raw)} bytes, over the {MAX_PAYLOAD_BYTES} limit")
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PayloadError(f"payload is not JSON ({exc}): {excerpt(raw)!r}") from None
        return cls.from_dict(data, raw)

    @classmethod
    def from_dict(cls, data: Any, raw: str | bytes = "") -> Payload:
        if not isinstance(data, dict):
            raise PayloadError(f"payload is not a JSON object: {excerpt(raw or dumps(data))!r}")
        name = data.get("class")
        if not isinstance(name, str) or not name.strip():
            raise PayloadError(f"payload has no string 'class': {excerpt(raw or dumps(data))!r}")
        args = data.get("args", [])
        if not isinstance(args, list):
            raise PayloadError(f"payload 'args' of {name} is not a list: {excerpt(dumps(args))}")
        job_id = data.get("id")
        queue_time = data.get("queue_time")
        return cls(
            class_name=name,
            args=args,
            id=job_id if isinstance(job_id, str) else None,
            queue_time=_seconds(queue_time),
            extra={k: v for k, v in data.items() if k not in _KNOWN},
        )


def _seconds(value: Any) -> float | None:
    """A payload's ``queue_time``, if it is a time (a finite number: not 1e400, not NaN)."""
    return float(value) if isinstance(value, int | float) and abs(value) < 1e308 else None


def new_payload_json(class_name: str, args: list[Any]) -> tuple[str, str]:
    """(id, JSON) of a new payload: ``Payload.new(class_name, args)``'s id and ``to_json()``,
    without building the object (an enqueue makes one per job)."""
    check_class_name(class_name)
    job_id = new_job_id()
    try:
        text = _fresh_text(class_name, args, job_id, time.time())
    except (TypeError, ValueError) as exc:
        raise _not_json(class_name, exc) from None
    return job_id, _within_limit(text, class_name)


def _fresh_text(class_name: str, args: list[Any], job_id: str, queue_time: float) -> str:
    """The strict dumps(to_dict()) of a payload with an id, a finite float queue_time and no
    extra field: the same text, written without the dict."""
    return (
        f'{{"class":{_json_string(class_name)},"args":{_STRICT.encode(args)},'
        f'"id":{_json_string(job_id)},"queue_time":{float.__repr__(queue_time)}}}'
    )


def _not_json(class_name: str, exc: Exception) -> PayloadError:
    return PayloadError(
        f"job arguments for {class_name} must be JSON (str, int, float but not NaN or "
        f"Infinity, bool, None, list, dict): {exc}"
    )


def _within_limit(text: str, class_name: str) -> str:
    try:
        size = len(text.encode())
    except UnicodeEncodeError as exc:  # a lone surrogate: no UTF-8 for it, so no JSON
        raise PayloadError(f"job arguments for {class_name} are not UTF-8 text: {exc}") from None
    if size > MAX_PAYLOAD_BYTES:
        raise PayloadError(
            f"payload for {class_name} is {size} bytes, over the "
            f"{MAX_PAYLOAD_BYTES} byte limit: pass a reference (an id, a URL), not the data"
        )
    return text


def check_class_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise PayloadError(f"a job class name must be a non-empty string, not {name!r}")
    return name


def check_queue_name(name: object) -> str:
    """Queue names are non-empty strings without spaces or commas (they join worker ids)."""
    if not isinstance(name, str) or not name or any(c in name for c in " ,\t\n*"):
        raise ConfigurationError(
            f"invalid queue name {name!r}: use a non-empty name without spaces, commas or '*'"
        )
    return name
