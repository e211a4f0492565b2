"""Helpers for the bad-key tests: what Redis holds, byte for byte, and wrong-typed values."""

from __future__ import annotations

from typing import Any

from redis.client import NEVER_DECODE

RAW = {NEVER_DECODE: True}

#: A value of each type, as (type, writer): for making a key hold the wrong one.
WRONG = {
    "string": lambda r, k: r.set(k, "not the right type"),
    "list": lambda r, k: r.rpush(k, "not", "the right type"),
    "hash": lambda r, k: r.hset(k, "not", "the right type"),
    "set": lambda r, k: r.sadd(k, "not the right type"),
    "zset": lambda r, k: r.zadd(k, {"not the right type": 1}),
}

#: Strings an INCR refuses: not integers, or one past the top of the range.
NOT_COUNTERS = ["abc", "1.5", "007", "-0", " 1", "9223372036854775807", "-9223372036854775809"]


def raw(r: Any, command: str, *args: Any) -> Any:
    return r.execute_command(command, *args, **RAW)


def type_of(r: Any, key: bytes | str) -> str:
    t = raw(r, "TYPE", key)
    return t.decode() if isinstance(t, bytes) else str(t)


def contents(r: Any) -> dict[bytes, tuple[str, Any]]:
    """Every key with its type and value (sorted where Redis does not order)."""
    out: dict[bytes, tuple[str, Any]] = {}
    for key in raw(r, "KEYS", "*"):
        t = type_of(r, key)
        if t == "string":
            value: Any = raw(r, "GET", key)
        elif t == "list":
            value = raw(r, "LRANGE", key, 0, -1)
        elif t == "hash":
            flat = raw(r, "HGETALL", key)
            value = sorted(flat.items()) if isinstance(flat, dict) else flat
        elif t == "set":
            value = sorted(raw(r, "SMEMBERS", key))
        else:
            value = raw(r, "ZRANGE", key, 0, -1, "WITHSCORES")
        out[key] = (t, value)
    return out


def wrong_for(expected: str) -> list[str]:
    """Types that do not belong where ``expected`` does (a counter: all but string)."""
    if expected == "integer":
        return ["hash", "list"]
    return [t for t in ("string", "hash") if t != expected] + (
        ["zset"] if expected != "zset" else ["list"]
    )
