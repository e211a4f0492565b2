"""Every Lua script labqueue runs (each a :class:`~labqueue.lua.Script`: see :mod:`labqueue.lua`
for the one way to run one).

Each state change that touches more than one key is one script, so it happens all or
nothing, in one round trip. A script is a named constant with a comment saying what it
guarantees and what its KEYS and ARGV are.

JSON records (statuses, failure records) are built in Python and passed in as arguments;
a script only ever pastes a payload, which it alone has, into them.

Each script that writes checks first: its text starts with the preflight helpers
(:data:`~labqueue.lua.PREFLIGHT`) and its commented preflight block, which fails the call
with nothing written when a key it would write holds the wrong type. Scripts that meet keys
as they go (a queue named in the queues set, a ``delayed:<second>`` list) check each before
touching it.

A wake-up (PUBLISH) is a hint, sent last and with ``redis.pcall``: a server, proxy or ACL
that refuses the channel leaves the script's writes standing and its reply as it was
(idle workers then find the job by polling, see :mod:`labqueue.worker.wakeups`).
"""

from __future__ import annotations

from .lua import JSON_TEXT, PREFLIGHT, Script
from .lua import encoded as encoded  # callers encode their fixed arguments once

#: ENQUEUE: record the queue, push the payloads, mark each job waiting and wake idle
#: workers, all or nothing in one step, so a worker never sees a job without its status.
#: The wake-up goes out only when the queue was empty: a worker sleeps only after finding
#: its queues empty, so the first push after that wakes it, and while a queue is not empty
#: some worker is still fetching from it (busy workers never pile up wake-ups).
#: KEYS[1] queues set, KEYS[2] the queue list, KEYS[3..] each job's status key;
#: ARGV[1] queue name, ARGV[2] wake-up channel, ARGV[3] status JSON, ARGV[4..] each job's
#: payload (in the order of the status keys). Returns the queue's new length.
#: Preflight: the queues set and the queue list (a status key is SET whatever it held).
ENQUEUE = Script(
    "ENQUEUE",
    PREFLIGHT
    + """
-- preflight: the keys written hold their type or nothing, before any write
local err = check(KEYS[1], 'set', KEYS[2], 'list')
if err then return err end
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
#: Preflight: the second's list and the schedule.
SCHEDULE = Script(
    "SCHEDULE",
    PREFLIGHT
    + """
-- preflight: the keys written hold their type or nothing, before any write
local err = check(KEYS[1], 'list', KEYS[2], 'zset')
if err then return err end
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
#: halves passed in with the raw payload, as a JSON string, between them (bytes that are not
#: UTF-8: in hex, so the record stays readable JSON). Seconds wholly
#: past are moved whole; in the current second only jobs whose exact time has come.
#: A schedule entry is due by its score; its member names its list and is its second (a
#: member that is not a finite number: its score is). Bad content never stops the others:
#: a ``delayed:<second>`` that is not a list, or a job whose queue key holds another type,
#: is left where it is and named in the reply (in a second wholly past, the jobs after it in
#: its list wait with it, in order).
#: KEYS[1] schedule zset, KEYS[2] queues set, KEYS[3] failed list.
#: ARGV[1] now (epoch s, float), ARGV[2] delayed key prefix, ARGV[3] queue key prefix,
#: ARGV[4] wake-up channel, ARGV[5] budget, ARGV[6] exact-time field, ARGV[7] failure
#: record up to its payload, ARGV[8] the rest of it.
#: Returns {moved, soonest due time still waiting ('' = none), then per key left alone:
#: its name in hex, its type, the type that belongs there}.
#: Preflight: the schedule, the queues set, the failed list.
MOVE_DUE = Script(
    "MOVE_DUE",
    PREFLIGHT
    + JSON_TEXT
    + """
-- preflight: the fixed keys hold their type or nothing, before any write; the lists met
-- on the way are checked as met (skipped), each queue before its first push
local err = check(KEYS[1], 'zset', KEYS[2], 'set', KEYS[3], 'list')
if err then return err end
local skipped, kinds = {}, {}  -- keys left alone (in order); each key's type, looked up once
local function usable(k)
  if kinds[k] == nil then
    local t = redis.call('TYPE', k)
    kinds[k] = type(t) == 'table' and t['ok'] or t
    if kinds[k] ~= 'list' and kinds[k] ~= 'none' then skipped[#skipped + 1] = k end
  end
  return kinds[k] == 'list' or kinds[k] == 'none'
end
local function finite(x) return x ~= nil and x == x and x > -math.huge and x < math.huge end
local now, budget = tonumber(ARGV[1]), tonumber(ARGV[5])
local moved, woken, soonest = 0, {}, nil
local function later(t) if finite(t) and (soonest == nil or t < soonest) then soonest = t end end
local function target(job)  -- the queue's key, '' for the failed store, nil: not now
  local q = type(job) == 'table' and job['queue']
  if type(q) ~= 'string' or q == '' or string.find(q, '[%s,%*]') then return '' end
  if usable(ARGV[3] .. q) then return q end
  return nil
end
local function move(raw, job, q)
  if q == '' then
    redis.call('RPUSH', KEYS[3], ARGV[7] .. text(raw) .. ARGV[8])
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
local stamps = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', math.floor(now), 'WITHSCORES',
  'LIMIT', 0, 100)
for i = 1, #stamps, 2 do
  local ts, key = stamps[i], ARGV[2] .. stamps[i]
  local second = tonumber(ts)
  if not finite(second) then second = tonumber(stamps[i + 1]) end
  if not finite(second) then second = 0 end  -- due since -inf: wholly past
  if usable(key) then  -- else not a list: left alone, named in the reply
    if moved < budget and second + 1 <= now then
      local items, taken = redis.call('LRANGE', key, 0, budget - moved - 1), 0
      for _, raw in ipairs(items) do
        local job = decoded(raw)
        local q = target(job)
        if q == nil then break end  -- its queue key is bad: it and those after it wait
        move(raw, job, q)
        taken = taken + 1
      end
      redis.call('LTRIM', key, taken, -1)
    elseif moved < budget then
      for _, raw in ipairs(redis.call('LRANGE', key, 0, 999)) do
        local job = decoded(raw)
        local at = type(job) == 'table' and tonumber(job[ARGV[6]]) or nil
        if moved >= budget or (at ~= nil and not (at <= now)) then
          later(at or now)
        else
          local q = target(job)
          if q ~= nil then  -- nil: its queue key is bad, named in the reply
            redis.call('LREM', key, 1, raw)
            move(raw, job, q)
          end
        end
      end
    end
    if redis.call('LLEN', key) == 0 then
      redis.call('DEL', key)
      redis.call('ZREM', KEYS[1], ts)
    end
  end
end
local nxt = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. math.floor(now), '+inf', 'WITHSCORES',
  'LIMIT', 0, 1)
if nxt[2] then later(tonumber(nxt[2])) end
local reply = {moved, soonest and tostring(soonest) or ''}
for _, k in ipairs(skipped) do
  reply[#reply + 1] = hexed(k)
  reply[#reply + 1] = kinds[k]
  reply[#reply + 1] = 'list'
end
return reply
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
#: Preflight: finishing, both counters and (a failure) the failed list; fetching, the
#: in-progress hash, the queues set ('*') and each queue up to the first one holding jobs
#: (the ones LPOP reaches), in the order LPOP takes them.
STEP = Script(
    "STEP",
    PREFLIGHT
    + """
-- preflight: the keys read and written hold their type or nothing, before any write
local spec, names = {}, {}
if ARGV[1] == '1' then spec = {KEYS[4], 'integer', KEYS[5], 'integer'} end
if ARGV[3] ~= '' then spec[#spec + 1], spec[#spec + 2] = KEYS[6], 'list' end
if #ARGV >= 10 then spec[#spec + 1], spec[#spec + 2] = KEYS[1], 'hash' end
if ARGV[10] == '*' then spec[#spec + 1], spec[#spec + 2] = KEYS[3], 'set' end
local err = check(unpack(spec))
if not err and #ARGV >= 10 then
  if ARGV[10] == '*' then
    names = redis.call('SMEMBERS', KEYS[3])
    table.sort(names)
  else
    for i = 10, #ARGV do names[#names + 1] = ARGV[i] end
  end
  for _, q in ipairs(names) do
    local t = redis.call('TYPE', ARGV[7] .. q)
    t = type(t) == 'table' and t['ok'] or t
    if t == 'list' then break end
    if t ~= 'none' then
      err = check(ARGV[7] .. q, 'list')
      break
    end
  end
end
if err then return err end
local finishing = ARGV[1] == '1'
if finishing then
  redis.call('INCR', KEYS[4])
  redis.call('INCR', KEYS[5])
  if ARGV[2] ~= '' then redis.call('SET', KEYS[7], ARGV[2], 'EX', ARGV[6]) end
  if ARGV[3] ~= '' then redis.call('RPUSH', KEYS[6], ARGV[3]) end
end
if #ARGV >= 10 then
  for _, q in ipairs(names) do  -- the queues the preflight named, in priority order
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
#: or false. Preflight: the in-progress hash, the workers set, the heartbeat hash, the
#: queues set and the list the job goes back to.
RELEASE = Script(
    "RELEASE",
    PREFLIGHT
    + """
-- preflight: the keys read and written hold their type or nothing, before any write
local err = check(KEYS[1], 'hash', KEYS[2], 'set', KEYS[5], 'hash', KEYS[8], 'set')
if not err then
  local q = redis.call('HGET', KEYS[1], 'queue')
  if q then err = check(ARGV[2] .. q, 'list') end
end
if err then return err end
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
#: Preflight: both counters, and the queue list and queues set, or the delayed list and the
#: schedule, whichever this retry writes.
RETRY = Script(
    "RETRY",
    PREFLIGHT
    + """
-- preflight: the keys written hold their type or nothing, before any write
local err
if ARGV[3] == '' then
  err = check(KEYS[3], 'integer', KEYS[4], 'integer', KEYS[9], 'list', KEYS[8], 'set')
else
  err = check(KEYS[3], 'integer', KEYS[4], 'integer', KEYS[7], 'list', KEYS[6], 'zset')
end
if err then return err end
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
#: Preflight: the in-progress hash, both counters, the failed list.
QUARANTINE = Script(
    "QUARANTINE",
    PREFLIGHT
    + """
-- preflight: the keys read and written hold their type or nothing, before any write
local err = check(KEYS[1], 'hash', KEYS[3], 'integer', KEYS[4], 'integer', KEYS[5], 'list')
if err then return err end
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

#: SET_ASIDE: rename a key of the layout that holds the wrong type out of the way, content
#: intact, if it still holds what it was found holding (another worker may have moved it,
#: or someone fixed it, meanwhile): see :mod:`labqueue.badkeys`.
#: KEYS[1] the key, KEYS[2] its new name. ARGV[1] the type it was found holding, ARGV[2]
#: the type that belongs there ('integer': a counter, set aside only if still not one).
#: Returns 1 if renamed, else 0.
SET_ASIDE = Script(
    "SET_ASIDE",
    PREFLIGHT
    + """
local t = redis.call('TYPE', KEYS[1])
if (type(t) == 'table' and t['ok'] or t) ~= ARGV[1] then return 0 end
if ARGV[2] == 'integer' and ARGV[1] == 'string' and not check(KEYS[1], 'integer') then
  return 0  -- a counter again
end
redis.call('RENAME', KEYS[1], KEYS[2])
return 1
""",
    keys=2,
    args=2,
)

#: Every script, for tests and for loading them all ahead of time.
ALL = (ENQUEUE, SCHEDULE, MOVE_DUE, STEP, RELEASE, RETRY, QUARANTINE, SET_ASIDE)
