"""What Redis holds, printed as ``redis-cli`` prints it: the prompt, the command, the reply.

Replies are read raw (no redis-py response callbacks), so ``HGETALL`` is the flat list
redis-cli shows, strings are quoted and escaped as redis-cli escapes them
(``"{\\"class\\":...}"``), numbers are ``(integer) 3`` and a missing key is ``(nil)``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis

from ..connection import clone

#: The command that shows a key's value, by the key's TYPE.
READ_COMMAND = {
    "string": ("GET",),
    "list": ("LRANGE", 0, -1),
    "set": ("SMEMBERS",),
    "hash": ("HGETALL",),
    "zset": ("ZRANGE", 0, -1, "WITHSCORES"),
}

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\a": "\\a"}


def quote(value: str | bytes) -> str:
    """A bulk string as redis-cli shows it (its ``sdscatrepr``): quoted, escaped."""
    data = value if isinstance(value, bytes) else value.encode()
    out = ['"']
    for byte in data:
        ch = chr(byte)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ch == "\b":
            out.append("\\b")
        elif 32 <= byte < 127:
            out.append(ch)
        else:
            out.append(f"\\x{byte:02x}")
    out.append('"')
    return "".join(out)


def format_reply(reply: Any, indent: int = 0) -> str:
    """One reply in redis-cli's layout (nested arrays indented)."""
    if reply is None:
        return "(nil)"
    if isinstance(reply, bool):
        return f"(integer) {int(reply)}"
    if isinstance(reply, int):
        return f"(integer) {reply}"
    if isinstance(reply, float):
        return f"(double) {reply:g}"
    if isinstance(reply, Exception):
        return f"(error) {reply}"
    if isinstance(reply, str | bytes):
        return quote(reply)
    if isinstance(reply, dict):  # RESP3 map: redis-cli (RESP2) shows field, value, ...
        return _format_array([x for kv in reply.items() for x in kv], indent)
    if isinstance(reply, set | frozenset):  # RESP3 set: sorted, so a notebook reads the same
        return _format_array(sorted(reply, key=str), indent)
    return _format_array(list(reply), indent)


def _format_array(items: list[Any], indent: int) -> str:
    if not items:
        return "(empty array)"
    width = len(str(len(items)))
    lines = []
    for i, item in enumerate(items, start=1):
        label = f"{i:>{width}}) "
        body = format_reply(item, indent + len(label))
        prefix = "" if i == 1 else " " * indent
        lines.append(prefix + label + body)
    return "\n".join(lines)


def _arg(value: Any) -> str:
    text = str(value)
    if text and all(c.isalnum() or c in ":_-*.\\/@" for c in text):
        return text
    return quote(text)


def _text(value: Any) -> str:
    """A reply's bytes as the text redis-cli would show (never Python's ``b'...'``)."""
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else str(value)


def _as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


#: A JSON string longer than this (quoted, as redis-cli shows it) also gets an indented view.
LONG_LINE = 72


def _strings(reply: Any) -> list[str | bytes]:
    """The bulk strings of a reply, flattened, in the order redis-cli prints them."""
    if isinstance(reply, str | bytes):
        return [reply]
    if isinstance(reply, dict):
        return [s for kv in reply.items() for x in kv for s in _strings(x)]
    if isinstance(reply, list | tuple | set | frozenset):
        return [s for x in reply for s in _strings(x)]
    return []


def json_views(reply: Any, longer_than: int = LONG_LINE) -> str:
    """After a reply: each long JSON object or array in it again, indented (redis-cli's one
    escaped line is what Redis holds; the indented view is only for reading it)."""
    strings = _strings(reply)
    views = []
    for n, value in enumerate(strings, start=1):
        if len(quote(value)) <= longer_than:
            continue
        try:
            parsed = json.loads(value)
        except ValueError:
            continue
        if isinstance(parsed, dict | list):
            which = f"{n}) " if not isinstance(reply, str | bytes) else ""
            text = json.dumps(parsed, indent=2, ensure_ascii=False)
            views.append(f"\n# {which}as JSON, indented:\n{text}")
    return "".join(views)


class RedisCli:
    """Run commands and print them as a redis-cli session would (raw replies)."""

    def __init__(self, client: Any, prompt: str = "redis") -> None:
        self.client = client
        self.prompt = prompt
        self._conn: Any = None

    def _resp2(self) -> Any:
        """A client of our own that speaks RESP2, as redis-cli does by default (raw bytes)."""
        if self._conn is None:
            self._conn = clone(self.client, protocol=2, decode_responses=False)
        return self._conn

    def raw(self, *args: Any) -> Any:
        """The reply to one command, without redis-py's response callbacks."""
        if type(self.client).__module__.startswith("fakeredis"):
            return self.client.execute_command(*args)
        pool = self._resp2().connection_pool
        conn = pool.get_connection()
        try:
            conn.send_command(*args)
            return conn.read_response()
        except redis.ResponseError as exc:
            return exc
        finally:
            pool.release(conn)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def transcript(self, *args: Any) -> str:
        """``prompt> COMMAND args`` and the reply, as text."""
        line = " ".join(_arg(a) for a in args)
        reply = self.raw(*args)
        return f"{self.prompt}> {line}\n{format_reply(reply)}{json_views(reply)}"

    def __call__(self, *args: Any) -> None:
        """Print one command and its reply: ``cli("LRANGE", keys.queue("default"), 0, -1)``."""
        print(self.transcript(*args))

    def keys(self, pattern: str = "*") -> list[str]:
        found = self.raw("KEYS", pattern)
        return sorted(_text(k) for k in found)

    def dump_text(self, pattern: str = "*", skip: Sequence[str] = ()) -> str:
        """``KEYS pattern``, then each key read with the command its type calls for."""
        names = [k for k in self.keys(pattern) if not any(s in k for s in skip)]
        parts = [f"{self.prompt}> KEYS {_arg(pattern)}\n{format_reply(names)}"]
        for name in names:
            kind = self.raw("TYPE", name)
            kind = _text(kind)
            command = READ_COMMAND.get(kind)
            if command is None:
                parts.append(f"{self.prompt}> TYPE {_arg(name)}\n{kind}")
                continue
            args = (command[0], name, *command[1:])
            text = self.transcript(*args)
            if kind == "set":  # redis-cli shows a set in hash order; sorted reads better
                text = self._sorted_set(args)
            parts.append(text)
        return "\n".join(parts)

    def _sorted_set(self, args: tuple[Any, ...]) -> str:
        members = sorted(self.raw(*args), key=_as_bytes)  # bytes stay bytes, quoted as such
        line = " ".join(_arg(a) for a in args)
        return f"{self.prompt}> {line}\n{format_reply(members)}{json_views(members)}"

    def dump(self, pattern: str = "*", skip: Sequence[str] = ()) -> None:
        """Print every key matching ``pattern`` and its value, redis-cli style."""
        print(self.dump_text(pattern, skip))


def pretty_json(raw: str | bytes | None) -> str:
    """A JSON value stored in Redis, indented for reading (raw text if it is not JSON)."""
    if raw is None:
        return "(nil)"
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except ValueError:
        return raw.decode() if isinstance(raw, bytes) else raw
