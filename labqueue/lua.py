"""One Lua script and the one way to run it; the preflight every writing script starts with.

A script is a named constant in :mod:`labqueue.scripts` wrapped in a :class:`Script` that
knows its SHA1 (computed once, at import) and how many KEYS and ARGV it takes:

- :meth:`Script.call` runs it by EVALSHA, hand-packed on a pooled connection for a plain
  redis-py client (:mod:`labqueue.wire`: the enqueue and worker-step hot path), through
  ``execute_command`` for any other client; a server that does not know the script yet
  (NOSCRIPT) gets it with SCRIPT LOAD and the call is sent again, here and nowhere else.
- :meth:`Script.queue` adds it to a pipeline as EVAL with the script's text: a NOSCRIPT
  halfway through a MULTI/EXEC could not be recovered from without breaking the all or
  none, and the text is small next to the thousands of payloads a bulk call carries.

The preflight (:data:`PREFLIGHT`, Lua helpers a script's text starts with): before its first
write, a script checks that every key it will write holds the type the layout gives it, or
nothing, and that every counter it will INCR holds an integer INCR can add one to. A key
that does not fails the call with a ``LABQUEUE_BADKEY`` reply and nothing written, which
:meth:`Script.call` raises as :class:`~labqueue.errors.BadKey` (the key, what it holds, what
belongs there). Redis runs a script's writes up to an error and keeps them, so a check after
the first write would be too late; checking is a TYPE (or a GET) per key, on the server, in
the same round trip. :mod:`labqueue.badkeys` says what the worker and the scheduler do then.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import redis
from redis.exceptions import NoScriptError

from . import wire
from .errors import BadKey


def encoded(values: Sequence[Any]) -> tuple[Any, ...]:
    """Strings as UTF-8 bytes, which redis-py sends as they are (no per-call encoding):
    for arguments that stay the same across many calls, encoded once."""
    return tuple(v.encode() if isinstance(v, str) else v for v in values)


class Script:
    """One Lua script: its text, its SHA1 and how many KEYS and ARGV it takes.

    ``keys`` and ``args`` are exact counts, or ``(least, None)`` for scripts that take any
    number from ``least`` on (one key and one payload per job, a worker's queue names).
    """

    def __init__(
        self, name: str, text: str, keys: int | tuple[int, None], args: int | tuple[int, None]
    ) -> None:
        self.name = name
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()
        self._sha = self.sha.encode()
        self.keys = keys
        self.args = args

    def __repr__(self) -> str:
        return f"Script({self.name}, {self.sha[:8]})"

    def call(self, client: redis.Redis, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Run it with ``keys`` and ``args``: one EVALSHA, one round trip; its reply.
        Raises :class:`~labqueue.errors.BadKey` when its preflight found a key of the wrong
        type (nothing written)."""
        try:
            try:
                return wire.call(client, b"EVALSHA", self._sha, len(keys), *keys, *args)
            except NoScriptError:  # a new or restarted server, or SCRIPT FLUSH: load, send again
                self.load(client)
                return wire.call(client, b"EVALSHA", self._sha, len(keys), *keys, *args)
        except redis.ResponseError as exc:
            bad = bad_key(exc)
            if bad is None:
                raise
            raise bad from None

    def call_then(
        self, client: redis.Redis, keys: Sequence[Any], args: Sequence[Any], then: Sequence[Any]
    ) -> tuple[Any, Any]:
        """Run it, then the command ``then`` (``WAIT 1 1000``, say) on the same connection, in
        the same round trip; both replies. Raises :class:`~labqueue.errors.BadKey` as
        :meth:`call` does."""
        evalsha = (b"EVALSHA", self._sha, len(keys), *keys, *args)
        try:
            try:
                first, second = wire.call_many(client, evalsha, tuple(then))
            except NoScriptError:  # as in call(): load it and send both again
                self.load(client)
                first, second = wire.call_many(client, evalsha, tuple(then))
        except redis.ResponseError as exc:
            bad = bad_key(exc)
            if bad is None:
                raise
            raise bad from None
        return first, second

    def queue(self, pipe: Any, keys: Sequence[Any], args: Sequence[Any]) -> None:
        """Add it to ``pipe`` (EVAL with the text: no NOSCRIPT inside a transaction)."""
        pipe.execute_command("EVAL", self.text, len(keys), *keys, *args)

    def load(self, client: redis.Redis) -> str:
        """SCRIPT LOAD; returns the server's SHA1 (the same as :attr:`sha`)."""
        reply = client.execute_command("SCRIPT", "LOAD", self.text)
        return reply.decode() if isinstance(reply, bytes) else str(reply)

    def takes(self, keys: int, args: int) -> bool:
        """Whether a call with this many KEYS and ARGV is one this script documents."""
        return _fits(keys, self.keys) and _fits(args, self.args)


def _fits(count: int, declared: int | tuple[int, None]) -> bool:
    return count == declared if isinstance(declared, int) else count >= declared[0]


#: What a preflight answers for a key of the wrong type: the key in hex (its bytes, whatever
#: they are), what it holds, what belongs there.
BADKEY = "LABQUEUE_BADKEY"


def bad_key(error: Exception | str) -> BadKey | None:
    """The :class:`BadKey` a script's ``LABQUEUE_BADKEY`` reply names (None: another error)."""
    parts = str(error).split()
    if len(parts) != 4 or parts[0] != BADKEY:
        return None
    try:
        return BadKey(bytes.fromhex(parts[1]), parts[2], parts[3])
    except ValueError:
        return None


def bad_keys(flat: Sequence[Any]) -> list[BadKey]:
    """Keys a script met and left alone, from its reply's ``hex, found, expected`` triples."""
    text = [v.decode() if isinstance(v, bytes) else str(v) for v in flat]
    found = (bad_key(" ".join((BADKEY, *text[i : i + 3]))) for i in range(0, len(text) - 2, 3))
    return [b for b in found if b is not None]


#: The preflight's Lua helper, at the top of every script that writes: ``check(k1, t1, k2,
#: t2, ...)`` is nil when each key holds its type or nothing (``'integer'``: a string INCR
#: takes, all counters read with one MGET), else the BADKEY reply naming the first that does
#: not. One function, not a library of small ones: Lua makes every local function anew on
#: every call of a script, and on the worker's step that cost more than the checks. TYPE
#: answers a status reply, ``{ok = 'list'}`` in Redis' Lua and in fakeredis', so a script
#: reading it inline writes ``t = type(t) == 'table' and t['ok'] or t``.
PREFLIGHT = """
local function check(...)
  local spec, counters, values, n = {...}, {}, {}, 0
  for i = 2, #spec, 2 do
    if spec[i] == 'integer' then counters[#counters + 1] = spec[i - 1] end
  end
  if #counters > 0 then values = redis.call('MGET', unpack(counters)) end
  for i = 1, #spec, 2 do
    local k, want, t = spec[i], spec[i + 1], nil
    if want == 'integer' then
      n = n + 1
      local v = values[n]
      if v then  -- a string: is it an integer INCR can add one to?
        local neg, d = string.match(v, '^(%-?)([1-9]%d*)$')
        local fits = d and (#d < 19 or (#d == 19 and (d < '9223372036854775807'
          or (neg == '-' and d <= '9223372036854775808'))))
        t = (fits or v == '0') and want or 'string'
      end
    end
    if t == nil then
      t = redis.call('TYPE', k)
      t = type(t) == 'table' and t['ok'] or t
    end
    if t ~= want and t ~= 'none' then
      local hex = string.gsub(k, '.', function(c) return string.format('%02x', string.byte(c)) end)
      return redis.error_reply('LABQUEUE_BADKEY ' .. hex .. ' ' .. t .. ' ' .. want)
    end
  end
end
"""

#: ``hexed(k)``: bytes in hex. ``text(raw)``: ``raw`` as a JSON string for a record a script
#: builds, as ``cjson.encode`` makes it when ``raw`` is UTF-8 (strictly: no surrogates, no
#: overlong forms), else ``"not UTF-8, in hex: ..."``. Redis' cjson would paste the bytes as
#: they are, a record no strict reader can decode; fakeredis' cjson raises.
JSON_TEXT = """
local function hexed(k)
  return (string.gsub(k, '.', function(c) return string.format('%02x', string.byte(c)) end))
end
local function text(raw)
  local i, n = 1, #raw
  while i <= n do
    local c, len, lo, hi = string.byte(raw, i), 0, 128, 191
    if c < 128 then len = 1
    elseif c >= 194 and c <= 223 then len = 2
    elseif c >= 224 and c <= 239 then
      len = 3
      if c == 224 then lo = 160 elseif c == 237 then hi = 159 end
    elseif c >= 240 and c <= 244 then
      len = 4
      if c == 240 then lo = 144 elseif c == 244 then hi = 143 end
    end
    local d = len > 1 and string.byte(raw, i + 1) or lo
    if len == 0 or i + len - 1 > n or d < lo or d > hi then
      return cjson.encode('not UTF-8, in hex: ' .. hexed(raw))
    end
    for j = i + 2, i + len - 1 do
      d = string.byte(raw, j)
      if d < 128 or d > 191 then return cjson.encode('not UTF-8, in hex: ' .. hexed(raw)) end
    end
    i = i + len
  end
  return cjson.encode(raw)
end
"""
