"""Reading what Redis holds, whoever wrote it, without trusting it.

The readers (stats, failures, delayed, the monitor, the CLI) show what they find, and a
key of the layout may hold anything Redis can: another type, text that is not JSON or not
UTF-8, JSON nested 100,000 deep, a counter that is no number, a time no calendar has.
Each helper turns such a value into a value or a one-line reason, never a traceback:

    tolerant(conn)       a client of the same server that reads any bytes, exactly
    loads(raw)           JSON, or UnreadableData (not JSON, nested deeper than MAX_DEPTH)
    counter(raw)         a Redis counter as an int, or UnreadableData
    epoch(value)         seconds since the epoch that a calendar can show, or None
    printable(text)      text with control characters and undecodable bytes escaped
    Batch                reads in one round trip; a key of another type gives a default
                         and one line in ``problems`` (key -> what is wrong), not an error
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import redis

from .connection import clone
from .errors import UnreadableData, UnreadableKey

#: How deeply nested JSON from Redis may be. Deeper values are unreadable: Python's own
#: parser and encoder, ``dataclasses.asdict`` and the templates recurse once per level.
MAX_DEPTH = 100

#: The range of a Redis counter (INCR works on signed 64-bit integers).
_COUNTER = re.compile(r"-?[0-9]{1,19}")
_INT64 = 2**63

#: The seconds a ``datetime`` can show: 0001-01-01 to 9999-12-31 (UTC).
_FIRST, _LAST = -62135596800.0, 253402300799.0

#: What never reaches a terminal or a page raw: C0 and C1 controls, DEL, lone surrogates
#: (bytes that were not UTF-8), and the bidirectional overrides that reorder a line.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
_KEEP_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")


def tolerant(connection: redis.Redis) -> redis.Redis:
    """A client of the same server that decodes replies as text, turning bytes that are not
    UTF-8 into lone surrogates (``surrogateescape``) instead of raising: such text shows up
    (through :func:`printable`), and written back it is the very same bytes, so a key named
    by it is the key that exists."""
    kwargs = connection.connection_pool.connection_kwargs
    if kwargs.get("decode_responses") and kwargs.get("encoding_errors") == "surrogateescape":
        return connection
    return clone(connection, decode_responses=True, encoding_errors="surrogateescape")


def to_text(raw: str | bytes) -> str:
    return raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else raw


def to_bytes(text: str | bytes) -> bytes:
    """The bytes ``text`` was read from (its escaped bytes back as they were)."""
    if isinstance(text, bytes):
        return text
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that came from a JSON escape
        return text.encode("utf-8", "surrogatepass")


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char, f"\\x{code:02x}")
    return f"\\u{code:04x}"


def printable(text: str, lines: bool = False) -> str:
    """``text`` with what a terminal or a page must not receive raw written as escapes
    (``\\x1b``, ``\\r``, ``\\xff`` for a byte that was not UTF-8); ``lines`` keeps newlines
    and tabs (for a ``<pre>`` block)."""
    return (_KEEP_LINES if lines else _UNPRINTABLE).sub(_escape, text)


def excerpt(raw: str | bytes, limit: int = 60) -> str:
    """The start of a value, quoted and escaped, for a one-line message."""
    text = to_text(raw)
    cut = text if len(text) <= limit else text[:limit] + "..."
    return "'" + printable(cut).replace("'", "\\'") + "'"


def loads(raw: str | bytes) -> Any:
    """JSON from Redis; UnreadableData when it is not JSON or nests deeper than MAX_DEPTH."""
    text = to_text(raw)
    try:
        value = json.loads(text)
    except RecursionError:
        raise UnreadableData(f"JSON nested too deep (over {MAX_DEPTH} levels)") from None
    except ValueError as exc:
        raise UnreadableData(f"not JSON ({exc})") from None
    if text.count("[") + text.count("{") > MAX_DEPTH and _deeper(value, MAX_DEPTH):
        raise UnreadableData(f"JSON nested too deep (over {MAX_DEPTH} levels)")
    return value


def _deeper(value: Any, limit: int) -> bool:
    """Whether ``value`` nests more than ``limit`` lists and objects (without recursing)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, list | dict))
    return False


def counter(raw: Any) -> int:
    """A counter as Redis keeps it (absent: 0); UnreadableData for anything INCR refuses."""
    if raw is None:
        return 0
    text = to_text(raw) if isinstance(raw, str | bytes) else str(raw)
    if _COUNTER.fullmatch(text) and -_INT64 <= int(text) < _INT64:
        return int(text)
    raise UnreadableData(f"{excerpt(text)} is not a whole number")


def finite(value: Any) -> float | None:
    """``value`` as a float if it is a finite int or float (not a bool, not 10**400)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def epoch(value: Any) -> float | None:
    """``value`` as seconds since the epoch, if it is a number a calendar can show."""
    seconds = finite(value)
    return seconds if seconds is not None and _FIRST <= seconds <= _LAST else None


def schedule_problem(key: str, stamps: list[tuple[Any, float]]) -> str | None:
    """What is wrong with a delayed schedule's members: each must be a whole second, with
    that second as its score (as resque-scheduler and labqueue write them)."""
    for member, score in stamps:
        if not re.fullmatch(r"-?[0-9]{1,12}", to_text(member)):
            return f"{key}: member {excerpt(member)} is not a time in seconds"
        if not math.isfinite(score):
            return f"{key}: member {excerpt(member)} has the score {score}, not its time"
    return None


# -- keys of another type ---------------------------------------------------------------
def _article(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def key_problem(connection: Any, key: str, expected: str, exc: redis.ResponseError) -> str:
    """One line on why ``key`` could not be read (its type, when it is the wrong one)."""
    if "WRONGTYPE" not in str(exc):
        return f"{key} cannot be read: {exc}"
    try:
        kind = to_text(connection.type(key))
    except redis.ResponseError:
        kind = "value of another type"
    return f"{key} is {_article(kind)}, not {_article(expected)}"


def unreadable_key(
    connection: Any, key: str, expected: str, exc: redis.ResponseError
) -> UnreadableKey:
    """The error to raise for ``key`` when nothing else of it can be shown."""
    return UnreadableKey(key, key_problem(connection, key, expected, exc))


#: What each read expects and gives when its key is of another type.
_READS: dict[str, tuple[str, Any]] = {
    "get": ("string", None),
    "llen": ("list", 0),
    "lrange": ("list", []),
    "smembers": ("set", frozenset()),
    "sismember": ("set", 0),
    "hgetall": ("hash", {}),
    "zrange": ("zset", []),
}


class Batch:
    """Reads queued on one pipeline and run in one round trip. A reply Redis refuses (a key
    of another type, a command an ACL forbids) gives the read's default and one line in
    ``problems``; losing the connection still raises."""

    def __init__(self, connection: Any, problems: dict[str, str]) -> None:
        self.connection = connection
        self.problems = problems
        self._calls: list[tuple[str, str, tuple[Any, ...], dict[str, Any]]] = []

    def call(self, command: str, key: str, *args: Any, **kwargs: Any) -> Batch:
        self._calls.append((command, key, args, kwargs))
        return self

    def run(self) -> list[Any]:
        if not self._calls:
            return []
        with self.connection.pipeline(transaction=False) as pipe:
            for command, key, args, kwargs in self._calls:
                getattr(pipe, command)(key, *args, **kwargs)
            replies = pipe.execute(raise_on_error=False)
        return [self._reply(call, reply) for call, reply in zip(self._calls, replies, strict=True)]

    def _reply(self, call: tuple[str, str, Any, Any], reply: Any) -> Any:
        command, key = call[0], call[1]
        if not isinstance(reply, redis.ResponseError):
            return reply
        expected, default = _READS[command]
        self.problems[key] = key_problem(self.connection, key, expected, reply)
        return default


def read_one(
    connection: Any, problems: dict[str, str], command: str, key: str, *args: Any, **kwargs: Any
) -> Any:
    """One read, as :class:`Batch` does it."""
    return Batch(connection, problems).call(command, key, *args, **kwargs).run()[0]
