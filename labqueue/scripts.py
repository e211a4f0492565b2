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

    def call_then(
        self, client: redis.Redis, keys: Sequence[Any], args: Sequence[Any], then: Sequence[Any]
    ) -> tuple[Any, Any]:
        """Run it, then the command ``then`` (``WAIT 1 1000``, say) on the same connection, in
        the same round trip; both replies."""
        evalsha = (b"EVALSHA", self._sha, len(keys), *keys, *args)
        try:
            first, second = wire.call_many(client, evalsha, tuple(then))
        except NoScriptError:  # as in call(): load it and send both again
            self.load(client)
            first, second = wire.call_many(client, evalsha, tuple(then))
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
if n == #KEYS - 2 then redis.call('PUBLISH', ARGV[2], ARGV[1]) end
return n
""",
    keys=(3, None),
    args=(4, None),
)

#: ENQUEUE_NEW: ENQUEUE for jobs that may have been enqueued before (an outbox relay that
#: died between enqueueing and marking its rows sent, and a second relay sending them again):
#: a job whose status key exists (waiting, running, or finished within the status TTL) is
#: skipped, so one id is queued once, however many times it is sent. The check and the push
#: are one step: two relays racing cannot both push it.
#: KEYS[1] queues set, KEYS[2] the queue list, KEYS[3..] each job's status key;
#: ARGV[1] queue name, ARGV[2] wake-up channel, ARGV[3] status JSON, ARGV[4..] each job's
#: payload (as ENQUEUE's). Returns how many jobs were pushed.
ENQUEUE_NEW = Script(
    "ENQUEUE_NEW",
    """
redis.call('SADD', KEYS[1], ARGV[1])
local before, pushed = redis.call('LLEN', KEYS[2]), 0
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    redis.call('RPUSH', KEYS[2], ARGV[i + 1])
    redis.call('SET', KEYS[i], ARGV[3])
    pushed = pushed + 1
  end
end
if pushed > 0 and before == 0 then redis.call('PUBLISH', ARGV[2], ARGV[1]) end
return pushed
""",
    keys=(3, None),
    args=(4, None),
)

#: SCHEDULE: add one payload to the second it is due in and that second to the schedule,
#: and mark the job waiting, in one step (a reader never sees a second without its list).
#: With resque-scheduler's index (see :mod:`labqueue.delayed_index`): the item's
#: ``timestamps:`` set names the list, and labqueue's note of the copy (its id, exact time)
#: is appended beside it, in the same step.
#: KEYS[1] delayed:<second>, KEYS[2] the schedule zset, KEYS[3] status key, KEYS[4] the
#: item's timestamps set, KEYS[5] the second's notes hash.
#: ARGV[1] the second, ARGV[2] payload, ARGV[3] status JSON ('' = no status), ARGV[4] the
#: index member ``delayed:<second>`` ('' = no index), ARGV[5] the note ('' = none), ARGV[6]
#: when the notes expire (epoch s).
SCHEDULE = Script(
    "SCHEDULE",
    """
redis.call('RPUSH', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[1])
if ARGV[3] ~= '' then redis.call('SET', KEYS[3], ARGV[3]) end
-- resque-scheduler's index, and labqueue's note of what the item cannot carry
if ARGV[4] ~= '' then redis.call('SADD', KEYS[4], ARGV[4]) end
if ARGV[5] ~= '' then
  local notes = redis.call('HGET', KEYS[5], ARGV[2])
  redis.call('HSET', KEYS[5], ARGV[2], notes and (notes .. '\\n' .. ARGV[5]) or ARGV[5])
  redis.call('EXPIREAT', KEYS[5], ARGV[6])
end
return 1
""",
    keys=5,
    args=6,
)

#: MOVE_DUE: move every job due at ``now`` (up to a budget) from the schedule to the tail
#: of its queue, and wake idle workers. Each job leaves its delayed list in the same script
#: that pushes it, so with any number of movers a job is moved exactly once. A job without
#: a usable "queue" goes to the failed store, never dropped: its failure record is the two
#: halves passed in with the raw payload, as a JSON string, between them. Seconds wholly
#: past are moved whole; in the current second only jobs whose exact time has come.
#: resque-scheduler's index and labqueue's notes (see :mod:`labqueue.delayed_index`): a
#: copy with a note moves as the item with the note's fields, at the note's exact time; the
#: item's ``timestamps:`` set loses the list once no copy is left in it; a list left empty
#: goes with its notes and its schedule entry (also one emptied by Ruby's remove_delayed).
#: KEYS[1] schedule zset, KEYS[2] queues set, KEYS[3] failed list.
#: ARGV[1] now (epoch s, float), ARGV[2] delayed key prefix, ARGV[3] queue key prefix,
#: ARGV[4] wake-up channel, ARGV[5] budget, ARGV[6] exact-time field, ARGV[7] failure
#: record up to its payload, ARGV[8] the rest of it, ARGV[9] timestamps key prefix,
#: ARGV[10] notes key prefix, ARGV[11] index member prefix (``delayed:``).
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
    redis.call('PUBLISH', ARGV[4], q)
  end
  moved = moved + 1
end
local function decoded(raw)
  local ok, job = pcall(cjson.decode, raw)
  if ok then return job end
  return nil
end
-- the notes of one second: item -> its notes (a list), read once; copies skipped so far
local notes, skipped, touched = {}, {}, {}
local function note_of(ts, raw)
  if notes[raw] == nil then
    local list = {}
    local text = redis.call('HGET', ARGV[10] .. ts, raw)
    if text then for line in string.gmatch(text, '[^\\n]+') do list[#list + 1] = line end end
    notes[raw] = list
  end
  local i = (skipped[raw] or 0) + 1
  local line = notes[raw][i]
  if not line then return i, nil, nil end
  local cut = string.find(line, ' ', 1, true)
  if not cut then return i, nil, nil end
  return i, tonumber(string.sub(line, 1, cut - 1)), string.sub(line, cut + 1)
end
local function take(raw, job, i, tail)
  touched[raw] = true
  if tail then
    table.remove(notes[raw], i)
    move(string.sub(raw, 1, -2) .. tail .. '}', job)
  else
    move(raw, job)
  end
end
local function tidy(ts, key)
  local empty = redis.call('LLEN', key) == 0
  for raw, _ in pairs(touched) do
    if #notes[raw] == 0 then redis.call('HDEL', ARGV[10] .. ts, raw)
    else redis.call('HSET', ARGV[10] .. ts, raw, table.concat(notes[raw], '\\n')) end
    if empty or not redis.call('LPOS', key, raw) then
      redis.call('SREM', ARGV[9] .. raw, ARGV[11] .. ts)
    end
  end
  if empty then
    redis.call('DEL', key, ARGV[10] .. ts)
    redis.call('ZREM', KEYS[1], ts)
  end
end
local stamps = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', math.floor(now), 'LIMIT', 0, 100)
for _, ts in ipairs(stamps) do
  local key, second = ARGV[2] .. ts, tonumber(ts)
  notes, skipped, touched = {}, {}, {}
  if second ~= nil and moved < budget then
    if second + 1 <= now then
      local items = redis.call('LRANGE', key, 0, budget - moved - 1)
      for _, raw in ipairs(items) do
        local i, _, tail = note_of(ts, raw)
        take(raw, decoded(raw), i, tail)
      end
      redis.call('LTRIM', key, #items, -1)
    else
      for _, raw in ipairs(redis.call('LRANGE', key, 0, 999)) do
        local job = decoded(raw)
        local i, at, tail = note_of(ts, raw)
        if at == nil then at = type(job) == 'table' and tonumber(job[ARGV[6]]) or nil end
        if moved < budget and (at == nil or at <= now) then
          redis.call('LREM', key, 1, raw)
          take(raw, job, i, tail)
        else
          skipped[raw] = i
          later(at or now)
        end
      end
    end
  end
  tidy(ts, key)
end
local nxt = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. math.floor(now), '+inf', 'LIMIT', 0, 1)
if nxt[1] and tonumber(nxt[1]) then later(tonumber(nxt[1])) end
return {moved, soonest and tostring(soonest) or ''}
""",
    keys=3,
    args=11,
)

#: UNSCHEDULE: remove delayed items, Ruby's ``remove_delayed`` way or one copy, and keep
#: resque-scheduler's index and labqueue's notes true, in one step. ARGV[5..] in threes:
#: (second or '', item, note or ''): no second = every list the item's
#: ``timestamps:`` set names, every copy (LREM 0, SREM each member: ``remove_delayed_job``);
#: a second and no note = every copy in that list; a note = that one copy, if its note is
#: still there. A list left empty goes with its notes and schedule entry.
#: KEYS[1] schedule zset. ARGV[1] delayed key prefix, ARGV[2] timestamps key prefix,
#: ARGV[3] notes key prefix, ARGV[4] index member prefix (``delayed:``).
#: Returns how many list elements were removed (Ruby's count).
UNSCHEDULE = Script(
    "UNSCHEDULE",
    """
local removed = 0
local function tidy(ts, item)
  local key = ARGV[1] .. ts
  local empty = redis.call('LLEN', key) == 0
  if empty or not redis.call('LPOS', key, item) then
    redis.call('SREM', ARGV[2] .. item, ARGV[4] .. ts)
    redis.call('HDEL', ARGV[3] .. ts, item)
  end
  if empty then
    redis.call('DEL', key, ARGV[3] .. ts)
    redis.call('ZREM', KEYS[1], ts)
  end
end
local function drop_all(ts, item)
  local n = redis.call('LREM', ARGV[1] .. ts, 0, item)
  redis.call('HDEL', ARGV[3] .. ts, item)
  tidy(ts, item)
  return n
end
local function drop_one(ts, item, line)
  local text = redis.call('HGET', ARGV[3] .. ts, item)
  local kept, found = {}, false
  for l in string.gmatch(text or '', '[^\\n]+') do
    if not found and l == line then found = true else kept[#kept + 1] = l end
  end
  if not found then return 0 end
  local n = redis.call('LREM', ARGV[1] .. ts, 1, item)
  if #kept == 0 then redis.call('HDEL', ARGV[3] .. ts, item)
  else redis.call('HSET', ARGV[3] .. ts, item, table.concat(kept, '\\n')) end
  tidy(ts, item)
  return n
end
for i = 5, #ARGV, 3 do
  local ts, item, line = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if ts == '' then
    for _, member in ipairs(redis.call('SMEMBERS', ARGV[2] .. item)) do
      removed = removed + drop_all(string.sub(member, #ARGV[4] + 1), item)
      redis.call('SREM', ARGV[2] .. item, member)
    end
  elseif line == '' then
    removed = removed + drop_all(ts, item)
  else
    removed = removed + drop_one(ts, item, line)
  end
end
return removed
""",
    keys=1,
    args=(4, None),
)

#: Lua helpers pasted into the scripts that write statuses (STEP, RELEASE): php-resque's
#: status rules for payloads that carry php-resque's ``prefix`` field (every php-resque
#: payload does, ``""`` when it has none): the key is ``job:<prefix>_<id>:status`` (no
#: prefix for ``""``/``"0"``), a status is updated only if it exists (php-resque creates it
#: only when tracking is on), ``started`` stays what creation wrote, ``result`` comes last.
#: ``php_status(key, head, tail, ttl)`` writes ``head .. started .. tail``.
_PHP_STATUS = """
local function php_key(prefix, job, suffix)
  local p, id = job['prefix'], job['id']
  if type(p) == 'string' and p ~= '' and p ~= '0' then id = p .. '_' .. id end
  return prefix .. id .. suffix
end
local function php_status(key, head, tail, ttl)
  local old = redis.call('GET', key)
  if not old then return end
  local ok, rec = pcall(cjson.decode, old)
  local started = ok and type(rec) == 'table' and rec['started'] or nil
  if started == nil then started = cjson.null end
  local text = head .. cjson.encode(started) .. tail
  if ttl then redis.call('SET', key, text, 'EX', ttl) else redis.call('SET', key, text) end
end
"""

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
#: processed counter, KEYS[5] worker processed counter, KEYS[6] failed list, KEYS[7] status
#: key of the finished job, KEYS[8] global failed counter, KEYS[9] worker failed counter.
#: ARGV[1] '1' = finish a job, '2' = count a retried run processed ('' = fetch only),
#: ARGV[2] its status JSON ('' = no id; '?'-marked: php-resque's rules, see _PHP_STATUS),
#: ARGV[3] failure record ('' = none), ARGV[4] run_at, ARGV[5] the fetched job's status JSON
#: (running), ARGV[6] status TTL, ARGV[7] queue key prefix, ARGV[8] status prefix, ARGV[9]
#: status suffix, ARGV[10..] queue names or the single '*' (none = don't fetch).
#: A job fetched replaces the finished one in the in-progress hash (its only fields are
#: queue and payload) and in the busy key, so those two are deleted only when nothing is
#: fetched: two commands fewer per job, the same state after the script.
#: Returns {queue, payload} or false when fetching; else 1 if the finished job was still
#: ours, 0 if a pruner had already put it back.
#: A finish counts only while the in-progress hash still holds the job (issue 17): a worker
#: cut off from Redis for longer than dead-after was released by a pruner (its hash
#: deleted, the job requeued, maybe finished by another worker), and its late finish must
#: not count the job twice nor overwrite the other worker's status or add a failure record.
#: Only this worker's own STEP fills its hash, so an empty hash means the job is not ours.
STEP = Script(
    "STEP",
    _PHP_STATUS
    + """
local mode = ARGV[1]
-- multihost (issue 17): a late finish of a job a pruner already took back records nothing
-- ('2' comes after RETRY, which has already let go of the hash: it is not checked here)
if mode == '1' and redis.call('EXISTS', KEYS[1]) == 0 then
  mode = ''
  if #ARGV < 10 then return 0 end
end
local finishing = mode == '1' or mode == '2'
if finishing then
  redis.call('INCR', KEYS[4])
  redis.call('INCR', KEYS[5])
end
-- counting as Resque does: every finished job is processed (KEYS[4], KEYS[5]), a failed one
-- is failed as well (KEYS[8], KEYS[9]); '2' = a retried run, which RETRY already let go of
-- and counted failed: only processed is counted here
if mode == '1' and ARGV[3] ~= '' then
  redis.call('INCR', KEYS[8])
  redis.call('INCR', KEYS[9])
end
if mode == '1' then
  if string.sub(ARGV[2], 1, 1) == '?' then
    -- a php-resque payload: '?' .. head .. '\\1' .. tail (see _PHP_STATUS)
    local cut = string.find(ARGV[2], '\\1', 1, true)
    php_status(KEYS[7], string.sub(ARGV[2], 2, cut - 1), string.sub(ARGV[2], cut + 1), ARGV[6])
  elseif ARGV[2] ~= '' then
    redis.call('SET', KEYS[7], ARGV[2], 'EX', ARGV[6])
  end
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
        if job['prefix'] == nil then
          redis.call('SET', ARGV[8] .. job['id'] .. ARGV[9], ARGV[5])
        else
          -- a php-resque payload: running, only if tracked, started kept
          local updated = string.match(ARGV[5], '"updated":(%d+)')
          php_status(php_key(ARGV[8], job, ARGV[9]), '{"status":2,"updated":' .. updated
            .. ',"started":', ',"result":null}', nil)
        end
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
    keys=9,
    args=(9, None),
)

#: RELEASE: unregister a worker and put its in-progress job (if any) back at the head of
#: its queue with status waiting, in one step. Run by a worker on its way out and by a live
#: worker for a dead one; two callers racing for the same job cannot both requeue it.
#: KEYS[1] in-progress, KEYS[2] workers set, KEYS[3] busy key, KEYS[4] started key,
#: KEYS[5] heartbeat hash, KEYS[6] worker processed counter, KEYS[7] worker failed counter,
#: KEYS[8] queues set, KEYS[9] labqueue's worker records.
#: ARGV[1] worker id, ARGV[2] queue key prefix, ARGV[3] status prefix, ARGV[4] status
#: suffix, ARGV[5] the requeued job's status JSON (waiting), ARGV[6] '1' = the worker died
#: under its job: count a crash ('' = a worker giving its own job back: no count). Returns
#: the requeued payload (as requeued) or false.
RELEASE = Script(
    "RELEASE",
    _PHP_STATUS
    + """
local job = redis.call('HMGET', KEYS[1], 'queue', 'payload')
redis.call('DEL', KEYS[1], KEYS[3], KEYS[4], KEYS[6], KEYS[7])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
-- labqueue's own record of the worker goes with its registration
redis.call('HDEL', KEYS[9], ARGV[1])
if not job[1] or not job[2] then return false end
-- crash count (issue 12; labqueue.worker.crashes): the worker died under this job, which a
-- poison job (os._exit, a segfault, an OOM kill) does to every worker that takes it. Count
-- the death in the payload's first field "crashes", spliced into the text so every other
-- byte stays as its producer wrote it (an id-less Ruby payload counts the same way); the
-- worker that fetches it next fails it instead of running it once the count is at its limit.
if ARGV[6] == '1' then
  local body = string.match(job[2], '^%s*{(.*)$')
  if body then
    local n, rest = string.match(body, '^"crashes":(%d+),?(.*)$')
    rest = rest or body
    local sep = string.match(rest, '^%s*}') and '' or ','
    job[2] = '{"crashes":' .. ((tonumber(n) or 0) + 1) .. sep .. rest
  end
end
redis.call('LPUSH', ARGV[2] .. job[1], job[2])
redis.call('SADD', KEYS[8], job[1])
local ok, payload = pcall(cjson.decode, job[2])
if ok and type(payload) == 'table' and type(payload['id']) == 'string' then
  if payload['prefix'] == nil then
    redis.call('SET', ARGV[3] .. payload['id'] .. ARGV[4], ARGV[5])
  else
    -- a php-resque payload: waiting again, only if tracked, started kept
    local updated = string.match(ARGV[5], '"updated":(%d+)')
    php_status(php_key(ARGV[3], payload, ARGV[4]), '{"status":1,"updated":' .. updated
      .. ',"started":', ',"result":null}', nil)
  end
end
return job[2]
""",
    keys=9,
    args=6,
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
  redis.call('PUBLISH', ARGV[4], ARGV[5])
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
#: worker's failed counter, KEYS[5] failed list, KEYS[6] global processed counter, KEYS[7]
#: the worker's processed counter. ARGV[1] the payload as read, ARGV[2] the
#: failure record. Returns 1 if moved, 0 if the job was no longer there.
QUARANTINE = Script(
    "QUARANTINE",
    """
if redis.call('HGET', KEYS[1], 'payload') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('INCR', KEYS[3])
redis.call('INCR', KEYS[4])
redis.call('RPUSH', KEYS[5], ARGV[2])
-- a failed job is processed as well, as Resque counts (processed >= failed)
redis.call('INCR', KEYS[6])
redis.call('INCR', KEYS[7])
return 1
""",
    keys=7,
    args=2,
)

#: CLAIM: take a worker id in labqueue's record, only if the record is still what the
#: caller judged (compare and set: two workers starting with one id cannot both win).
#: KEYS[1] labqueue's worker records. ARGV[1] worker id, ARGV[2] the record as read ('' =
#: none), ARGV[3] the new record. Returns 1 if claimed, 0 if the record changed meanwhile.
CLAIM = Script(
    "CLAIM",
    """
local held = redis.call('HGET', KEYS[1], ARGV[1])
if (held or '') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
""",
    keys=1,
    args=3,
)

#: BEAT: a worker's heartbeat, which also registers it again: in the workers set, its start
#: time (only if missing, so resque-web's "Started" stays), the Resque heartbeat, labqueue's
#: own record, and, while a job of ours still sits in our in-progress hash, the busy record
#: (built as FETCH builds it). Whoever pruned us wrongly (a Resque or php-resque worker
#: starting on this host) is undone within one beat.
#: KEYS[1] workers set, KEYS[2] started key, KEYS[3] heartbeat hash, KEYS[4] labqueue's
#: worker records, KEYS[5] busy key, KEYS[6] in-progress hash.
#: ARGV[1] worker id, ARGV[2] start time text, ARGV[3] heartbeat text (Redis' clock),
#: ARGV[4] labqueue's record, ARGV[5] run_at of the job we run. Returns 1.
BEAT = Script(
    "BEAT",
    """
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'NX')
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[4])
if redis.call('EXISTS', KEYS[5]) == 0 then
  local job = redis.call('HMGET', KEYS[6], 'queue', 'payload')
  if job[1] and job[2] then
    local ok, decoded = pcall(cjson.decode, job[2])
    local shown = job[2]
    if not ok or type(decoded) ~= 'table' then shown = cjson.encode(job[2]) end
    redis.call('SET', KEYS[5], '{"queue":' .. cjson.encode(job[1]) .. ',"run_at":"' .. ARGV[5]
      .. '","payload":' .. shown .. '}')
  end
end
return 1
""",
    keys=6,
    args=5,
)

#: DROP_FOREIGN: unregister a dead Resque or php-resque worker as Resque's own
#: ``unregister_worker`` does (SREM workers; DEL its busy, started and counter keys; HDEL its
#: heartbeat), with the failure record Resque writes for the job it was running
#: (``Resque::DirtyExit`` / ``Resque::PruneDeadWorkerDirtyExit``), in one step, and only if
#: its busy record is still the one the record was built from.
#: KEYS[1] workers set, KEYS[2] busy key, KEYS[3] started key, KEYS[4] heartbeat hash,
#: KEYS[5] worker processed counter, KEYS[6] worker failed counter, KEYS[7] failed list.
#: ARGV[1] worker id, ARGV[2] the busy record as read ('' = none), ARGV[3] the failure
#: record ('' = none). Returns 1, or 0 when the busy record changed meanwhile.
DROP_FOREIGN = Script(
    "DROP_FOREIGN",
    """
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[2] then return 0 end
if ARGV[3] ~= '' then redis.call('RPUSH', KEYS[7], ARGV[3]) end
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2], KEYS[3], KEYS[5], KEYS[6])
redis.call('HDEL', KEYS[4], ARGV[1])
return 1
""",
    keys=7,
    args=3,
)

#: Every script, for tests and for loading them all ahead of time.
ALL = (
    ENQUEUE,
    ENQUEUE_NEW,
    SCHEDULE,
    MOVE_DUE,
    STEP,
    RELEASE,
    RETRY,
    QUARANTINE,
    CLAIM,
    BEAT,
    DROP_FOREIGN,
    UNSCHEDULE,
)
