"""Every Lua script labqueue runs, and the one way to run one.

Each state change that touches more than one key is one script, so it happens all or
nothing, in one round trip. A script is a named constant with a comment saying what it
guarantees and what its KEYS and ARGV are, wrapped in a :class:`Script` that knows its
SHA1 (computed once, at import) and how many KEYS and ARGV it takes:

- :meth:`Script.call` runs it by EVALSHA, hand-packed on a pooled connection for a plain
  redis-py client (:mod:`labqueue.wire`: the enqueue and worker-step hot path), through
  ``execute_command`` for any other client; a server that does not know the script yet
  (NOSCRIPT) gets it with SCRIPT LOAD and the call is sent again, here and nowhere else.
- :meth:`Script.queue` adds it to a pipeline as EVAL with the script's text: a NOSCRIPT
  halfway through a MULTI/EXEC could not be recovered from without breaking the all or
  none, and the text is small next to the thousands of payloads a bulk call carries.

JSON records (statuses, failure records) are built in Python and passed in as arguments;
a script only ever pastes a payload, which it alone has, into them.

A wake-up (PUBLISH) is a hint, sent last and with ``redis.pcall``: a server, proxy or ACL
that refuses the channel leaves the script's writes standing and its reply as it was
(idle workers then find the job by polling, see :mod:`labqueue.worker.wakeups`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import redis
from redis.exceptions import NoScriptError

from . import wire


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
        """Run it with ``keys`` and ``args``: one EVALSHA, one round trip; its reply."""
        try:
            return wire.call(client, b"EVALSHA", self._sha, len(keys), *keys, *args)
        except NoScriptError:  # a new or restarted server, or SCRIPT FLUSH: load, send again
            self.load(client)
            return wire.call(client, b"EVALSHA", self._sha, len(keys), *keys, *args)

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


#: ENQUEUE: record the queue, push the payloads, mark each job waiting and wake idle
#: workers, all or nothing in one step, so a worker never sees a job without its status.
#: The wake-up goes out only when the queue was empty: a worker sleeps only after finding
#: its queues empty, so the first push after that wakes it, and while a queue is not empty
#: some worker is still fetching from it (busy workers never pile up wake-ups).
#: KEYS[1] queues set, KEYS[2] the queue list, KEYS[3..] each job's status key;
#: ARGV[1] queue name, ARGV[2] wake-up channel, ARGV[3] status JSON, ARGV[4..] each job's
#: payload (in the order of the status keys). Returns the queue's new length.
ENQUEUE = Script(
    "ENQUEUE",
    """
redis.call('SADD', KEYS[1], ARGV[1])
local n = 0
for i = 3, #KEYS do
  n = redis.call('RPUSH', KEYS[2], ARGV[i + 1])
  redis.call('SET', KEYS[i], ARGV[3])
end
if n == #KEYS - 2 then redis.pcall('PUBLISH', ARGV[2], ARGV[1]) end
return n
""",
    keys=(3, None),
    args=(4, None),
)

#: SCHEDULE: add one payload to the second it is due in and that second to the schedule,
#: and mark the job waiting, in one step (a reader never sees a second without its list).
#: KEYS[1] delayed:<second>, KEYS[2] the schedule zset, KEYS[3] status key.
#: ARGV[1] the second, ARGV[2] payload, ARGV[3] status JSON ('' = no status).
SCHEDULE = Script(
    "SCHEDULE",
    """
redis.call('RPUSH', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[1])
if ARGV[3] ~= '' then redis.call('SET', KEYS[3], ARGV[3]) end
return 1
""",
    keys=3,
    args=3,
)

#: MOVE_DUE: move every job due at ``now`` (up to a budget) from the schedule to the tail
#: of its queue, and wake idle workers. Each job leaves its delayed list in the same script
#: that pushes it, so with any number of movers a job is moved exactly once. A job without
#: a usable "queue" goes to the failed store, never dropped: its failure record is the two
#: halves passed in with the raw payload, as a JSON string, between them. Seconds wholly
#: past are moved whole; in the current second only jobs whose exact time has come.
#: KEYS[1] schedule zset, KEYS[2] queues set, KEYS[3] failed list.
#: ARGV[1] now (epoch s, float), ARGV[2] delayed key prefix, ARGV[3] queue key prefix,
#: ARGV[4] wake-up channel, ARGV[5] budget, ARGV[6] exact-time field, ARGV[7] failure
#: record up to its payload, ARGV[8] the rest of it.
#: Returns {moved, soonest due time still waiting ('' = none)}.
MOVE_DUE = Script(
    "MOVE_DUE",
    """
local now, budget = tonumber(ARGV[1]), tonumber(ARGV[5])
local moved, woken, soonest = 0, {}, nil
local function later(t) if soonest == nil or t < soonest then soonest = t end end
local function move(raw, job)
  local q = type(job) == 'table' and job['queue']
  if type(q) ~= 'string' or q == '' or string.find(q, '[%s,%*]') then
    redis.call('RPUSH', KEYS[3], ARGV[7] .. cjson.encode(raw) .. ARGV[8])
    return
  end
  redis.call('RPUSH', ARGV[3] .. q, raw)
  if not woken[q] then
    woken[q] = true
    redis.call('SADD', KEYS[2], q)
    redis.pcall('PUBLISH', ARGV[4], q)
  end
  moved = moved + 1
end
local function decoded(raw)
  local ok, job = pcall(cjson.decode, raw)
  if ok then return job end
  return nil
end
local stamps = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', math.floor(now), 'LIMIT', 0, 100)
for _, ts in ipairs(stamps) do
  local key, second = ARGV[2] .. ts, tonumber(ts)
  if second ~= nil and moved < budget then
    if second + 1 <= now then
      local items = redis.call('LRANGE', key, 0, budget - moved - 1)
      for _, raw in ipairs(items) do move(raw, decoded(raw)) end
      redis.call('LTRIM', key, #items, -1)
    else
      for _, raw in ipairs(redis.call('LRANGE', key, 0, 999)) do
        local job = decoded(raw)
        local at = type(job) == 'table' and tonumber(job[ARGV[6]]) or nil
        if moved < budget and (at == nil or at <= now) then
          redis.call('LREM', key, 1, raw)
          move(raw, job)
        else
          later(at or now)
        end
      end
    end
  end
  if redis.call('LLEN', key) == 0 then
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], ts)
  end
end
local nxt = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. math.floor(now), '+inf', 'LIMIT', 0, 1)
if nxt[1] and tonumber(nxt[1]) then later(tonumber(nxt[1])) end
return {moved, soonest and tostring(soonest) or ''}
""",
    keys=3,
    args=8,
)

#: STEP: FINISH the job this worker ran (if any), then FETCH the next (if asked), in one
#: script call, so a worker needs one round trip per job.
#: FINISH records the outcome and lets go of the job in one step: the counters, the status
#: and (on failure) the failure record change together with the job leaving the in-progress
#: hash, so a crash never counts a job twice or loses a failure.
#: FETCH takes the first job of the first non-empty queue (priority order; '*' = every known
#: queue, sorted) into the in-progress hash, and marks the worker busy and the job running,
#: in one step: no instant exists where the job is in neither place. The busy record
#: ``{queue, run_at, payload}`` is the one JSON built here: only the script has the payload
#: (shown as a JSON string when it is not a JSON object).
#: KEYS[1] in-progress hash, KEYS[2] worker busy key, KEYS[3] queues set, KEYS[4] global
#: counter (processed or failed), KEYS[5] worker counter, KEYS[6] failed list, KEYS[7] status
#: key of the finished job.
#: ARGV[1] '1' = finish a job ('' = fetch only), ARGV[2] its status JSON ('' = no id),
#: ARGV[3] failure record ('' = none), ARGV[4] run_at, ARGV[5] the fetched job's status JSON
#: (running), ARGV[6] status TTL, ARGV[7] queue key prefix, ARGV[8] status prefix, ARGV[9]
#: status suffix, ARGV[10..] queue names or the single '*' (none = don't fetch).
#: A job fetched replaces the finished one in the in-progress hash (its only fields are
#: queue and payload) and in the busy key, so those two are deleted only when nothing is
#: fetched: two commands fewer per job, the same state after the script.
#: Returns {queue, payload} or false when fetching; else 1 if the finished job was still
#: ours, 0 if a pruner had already put it back.
STEP = Script(
    "STEP",
    """
local finishing = ARGV[1] == '1'
if finishing then
  redis.call('INCR', KEYS[4])
  redis.call('INCR', KEYS[5])
  if ARGV[2] ~= '' then redis.call('SET', KEYS[7], ARGV[2], 'EX', ARGV[6]) end
  if ARGV[3] ~= '' then redis.call('RPUSH', KEYS[6], ARGV[3]) end
end
if #ARGV >= 10 then
  local names = {}
  if ARGV[10] == '*' then
    names = redis.call('SMEMBERS', KEYS[3])
    table.sort(names)
  else
    for i = 10, #ARGV do names[#names + 1] = ARGV[i] end
  end
  for _, q in ipairs(names) do
    local raw = redis.call('LPOP', ARGV[7] .. q)
    if raw then
      -- both fields of the in-progress hash and the busy key are replaced: whatever the
      -- finished job left there is gone, as if deleted first
      redis.call('HSET', KEYS[1], 'queue', q, 'payload', raw)
      local ok, job = pcall(cjson.decode, raw)
      local shown = raw
      if not ok or type(job) ~= 'table' then shown = cjson.encode(raw) end
      redis.call('SET', KEYS[2], '{"queue":' .. cjson.encode(q) .. ',"run_at":"' .. ARGV[4]
        .. '","payload":' .. shown .. '}')
      if ok and type(job) == 'table' and type(job['id']) == 'string' then
        redis.call('SET', ARGV[8] .. job['id'] .. ARGV[9], ARGV[5])
      end
      return {q, raw}
    end
  end
end
if not finishing then return false end
local ours = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2])
if #ARGV >= 10 then return false end
return ours
""",
    keys=7,
    args=(9, None),
)

#: RELEASE: unregister a worker and put its in-progress job (if any) back at the head of
#: its queue with status waiting, in one step. Run by a worker on its way out and by a live
#: worker for a dead one; two callers racing for the same job cannot both requeue it.
#: KEYS[1] in-progress, KEYS[2] workers set, KEYS[3] busy key, KEYS[4] started key,
#: KEYS[5] heartbeat hash, KEYS[6] worker processed counter, KEYS[7] worker failed counter,
#: KEYS[8] queues set.
#: ARGV[1] worker id, ARGV[2] queue key prefix, ARGV[3] status prefix, ARGV[4] status
#: suffix, ARGV[5] the requeued job's status JSON (waiting). Returns the requeued payload
#: or false.
RELEASE = Script(
    "RELEASE",
    """
local job = redis.call('HMGET', KEYS[1], 'queue', 'payload')
redis.call('DEL', KEYS[1], KEYS[3], KEYS[4], KEYS[6], KEYS[7])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
if not job[1] or not job[2] then return false end
redis.call('LPUSH', ARGV[2] .. job[1], job[2])
redis.call('SADD', KEYS[8], job[1])
local ok, payload = pcall(cjson.decode, job[2])
if ok and type(payload) == 'table' and type(payload['id']) == 'string' then
  redis.call('SET', ARGV[3] .. payload['id'] .. ARGV[4], ARGV[5])
end
return job[2]
""",
    keys=8,
    args=5,
)

#: RETRY: let go of the worker's failed job and schedule its next run, in one step: the
#: job leaves the in-progress hash, the failure is counted, its status says waiting, and its
#: new payload enters the delayed schedule (or the tail of its queue when due now). Nothing
#: happens when the job is no longer this worker's (a pruner put it back: it will run again).
#: KEYS[1] in-progress, KEYS[2] worker busy key, KEYS[3] global failed counter, KEYS[4] the
#: worker's failed counter, KEYS[5] status key, KEYS[6] schedule zset, KEYS[7] delayed list,
#: KEYS[8] queues set, KEYS[9] queue list.
#: ARGV[1] status JSON ('' = no id), ARGV[2] new payload, ARGV[3] due second ('' = now),
#: ARGV[4] wake-up channel, ARGV[5] queue name. Returns 1, or 0 if the job was not ours.
RETRY = Script(
    "RETRY",
    """
local ours = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2])
if ours == 0 then return 0 end
redis.call('INCR', KEYS[3])
redis.call('INCR', KEYS[4])
if ARGV[1] ~= '' then redis.call('SET', KEYS[5], ARGV[1]) end
if ARGV[3] == '' then
  redis.call('RPUSH', KEYS[9], ARGV[2])
  redis.call('SADD', KEYS[8], ARGV[5])
  redis.pcall('PUBLISH', ARGV[4], ARGV[5])
else
  redis.call('RPUSH', KEYS[7], ARGV[2])
  redis.call('ZADD', KEYS[6], ARGV[3], ARGV[3])
end
return 1
""",
    keys=9,
    args=5,
)

#: QUARANTINE: move the job in a worker's in-progress hash to the failed store, if it is
#: still the one the worker read, with the failure counted: one step, as FINISH does.
#: KEYS[1] in-progress, KEYS[2] worker busy key, KEYS[3] global failed counter, KEYS[4] the
#: worker's failed counter, KEYS[5] failed list. ARGV[1] the payload as read, ARGV[2] the
#: failure record. Returns 1 if moved, 0 if the job was no longer there.
QUARANTINE = Script(
    "QUARANTINE",
    """
if redis.call('HGET', KEYS[1], 'payload') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('INCR', KEYS[3])
redis.call('INCR', KEYS[4])
redis.call('RPUSH', KEYS[5], ARGV[2])
return 1
""",
    keys=5,
    args=2,
)

#: Every script, for tests and for loading them all ahead of time.
ALL = (ENQUEUE, SCHEDULE, MOVE_DUE, STEP, RELEASE, RETRY, QUARANTINE)
