"""The schedule's scripts: SCHEDULE, MOVE_DUE, UNSCHEDULE (see :mod:`labqueue.scripts` and
:mod:`labqueue.delayed_index`)."""

from __future__ import annotations

from ..lua import JSON_TEXT, PREFLIGHT, Script

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
#: Preflight: the second's list, the schedule, and the index set and notes hash when
#: written (the status key is SET whatever it held).
SCHEDULE = Script(
    "SCHEDULE",
    PREFLIGHT
    + """
-- preflight: the keys written hold their type or nothing, before any write
local spec = {KEYS[1], 'list', KEYS[2], 'zset'}
if ARGV[4] ~= '' then spec[#spec + 1], spec[#spec + 2] = KEYS[4], 'set' end
if ARGV[5] ~= '' then spec[#spec + 1], spec[#spec + 2] = KEYS[5], 'hash' end
local err = check(unpack(spec))
if err then return err end
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
#: halves passed in with the raw payload, as a JSON string, between them (bytes that are not
#: UTF-8: in hex, so the record stays readable JSON). Seconds wholly
#: past are moved whole; in the current second only jobs whose exact time has come.
#: resque-scheduler's index and labqueue's notes (see :mod:`labqueue.delayed_index`): a
#: copy with a note moves as the item with the note's fields, at the note's exact time; the
#: item's ``timestamps:`` set loses the list once no copy is left in it; a list left empty
#: goes with its notes and its schedule entry (also one emptied by Ruby's remove_delayed).
#: A schedule entry is due by its score; its member names its list and is its second (a
#: member that is not a finite number: its score is). Bad content never stops the others:
#: a ``delayed:<second>`` that is not a list or whose notes are not a hash, or a job whose
#: queue key or ``timestamps:`` set holds another type, is left where it is and named in the
#: reply (in a second wholly past, the jobs after it in its list wait with it, in order).
#: KEYS[1] schedule zset, KEYS[2] queues set, KEYS[3] failed list.
#: ARGV[1] now (epoch s, float), ARGV[2] delayed key prefix, ARGV[3] queue key prefix,
#: ARGV[4] wake-up channel, ARGV[5] budget, ARGV[6] exact-time field, ARGV[7] failure
#: record up to its payload, ARGV[8] the rest of it, ARGV[9] timestamps key prefix,
#: ARGV[10] notes key prefix, ARGV[11] index member prefix (``delayed:``).
#: Returns {moved, soonest due time still waiting ('' = none), then per key left alone:
#: its name in hex, its type, the type that belongs there}.
#: Preflight: the schedule, the queues set, the failed list.
MOVE_DUE = Script(
    "MOVE_DUE",
    PREFLIGHT
    + JSON_TEXT
    + """
-- preflight: the fixed keys hold their type or nothing, before any write; the keys met on
-- the way (lists, notes, index sets, queues) are checked as met (skipped), before their
-- first write
local err = check(KEYS[1], 'zset', KEYS[2], 'set', KEYS[3], 'list')
if err then return err end
local skipped_keys, kinds, wants = {}, {}, {}  -- keys left alone (in order); types, once
local function usable(k, want)
  if kinds[k] == nil then
    local t = redis.call('TYPE', k)
    kinds[k], wants[k] = type(t) == 'table' and t['ok'] or t, want
    if kinds[k] ~= want and kinds[k] ~= 'none' then skipped_keys[#skipped_keys + 1] = k end
  end
  return kinds[k] == want or kinds[k] == 'none'
end
local function finite(x) return x ~= nil and x == x and x > -math.huge and x < math.huge end
local now, budget = tonumber(ARGV[1]), tonumber(ARGV[5])
local moved, woken, soonest = 0, {}, nil
local function later(t) if finite(t) and (soonest == nil or t < soonest) then soonest = t end end
local function target(raw, job)  -- the queue's key, '' for the failed store, nil: not now
  if not usable(ARGV[9] .. raw, 'set') then return nil end  -- its index set, SREM'd later
  local q = type(job) == 'table' and job['queue']
  if type(q) ~= 'string' or q == '' or string.find(q, '[%s,%*]') then return '' end
  if usable(ARGV[3] .. q, 'list') then return q end
  return nil
end
local function move(raw, q)
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
local function take(raw, q, i, tail)
  touched[raw] = true
  if tail then
    table.remove(notes[raw], i)
    move(string.sub(raw, 1, -2) .. tail .. '}', q)
  else
    move(raw, q)
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
local stamps = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', math.floor(now), 'WITHSCORES',
  'LIMIT', 0, 100)
for n = 1, #stamps, 2 do
  local ts, key = stamps[n], ARGV[2] .. stamps[n]
  local second = tonumber(ts)
  if not finite(second) then second = tonumber(stamps[n + 1]) end
  if not finite(second) then second = 0 end  -- due since -inf: wholly past
  notes, skipped, touched = {}, {}, {}
  -- else the list or its notes hold another type: left alone, named in the reply
  if usable(key, 'list') and usable(ARGV[10] .. ts, 'hash') then
    if moved < budget and second + 1 <= now then
      local items, taken = redis.call('LRANGE', key, 0, budget - moved - 1), 0
      for _, raw in ipairs(items) do
        local q = target(raw, decoded(raw))
        if q == nil then break end  -- a key it writes is bad: it and those after it wait
        local i, _, tail = note_of(ts, raw)
        take(raw, q, i, tail)
        taken = taken + 1
      end
      redis.call('LTRIM', key, taken, -1)
    elseif moved < budget then
      for _, raw in ipairs(redis.call('LRANGE', key, 0, 999)) do
        local job = decoded(raw)
        local i, at, tail = note_of(ts, raw)
        if at == nil then at = type(job) == 'table' and tonumber(job[ARGV[6]]) or nil end
        local q = nil
        if moved >= budget or (at ~= nil and not (at <= now)) then
          later(at or now)
        else
          q = target(raw, job)  -- nil: a key it writes is bad, named in the reply
        end
        if q ~= nil then
          redis.call('LREM', key, 1, raw)
          take(raw, q, i, tail)
        else
          skipped[raw] = i
        end
      end
    end
    tidy(ts, key)
  end
end
local nxt = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. math.floor(now), '+inf', 'WITHSCORES',
  'LIMIT', 0, 1)
if nxt[2] then later(tonumber(nxt[2])) end
local reply = {moved, soonest and tostring(soonest) or ''}
for _, k in ipairs(skipped_keys) do
  reply[#reply + 1] = hexed(k)
  reply[#reply + 1] = kinds[k]
  reply[#reply + 1] = wants[k]
end
return reply
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
#: Preflight: the schedule, and for each item its ``timestamps:`` set and every second it
#: names or is given: that second's list and notes hash.
UNSCHEDULE = Script(
    "UNSCHEDULE",
    PREFLIGHT
    + """
-- preflight: the keys read and written hold their type or nothing, before any write
local err = check(KEYS[1], 'zset')
for i = 5, #ARGV, 3 do
  if err then break end
  local ts, item = ARGV[i], ARGV[i + 1]
  err = check(ARGV[2] .. item, 'set')
  if not err and ts ~= '' then err = check(ARGV[1] .. ts, 'list', ARGV[3] .. ts, 'hash') end
  if not err and ts == '' then
    for _, member in ipairs(redis.call('SMEMBERS', ARGV[2] .. item)) do
      local second = string.sub(member, #ARGV[4] + 1)
      err = check(ARGV[1] .. second, 'list', ARGV[3] .. second, 'hash')
      if err then break end
    end
  end
end
if err then return err end
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
