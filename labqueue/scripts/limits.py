"""The concurrency limit's scripts: ACQUIRE, VACATE and SWEEP (see :mod:`labqueue.scripts`
and :mod:`labqueue.worker.limits`).

A limiter's state: ``limits`` (hash name -> K), ``limit:holders:<name>`` (zset worker id ->
lease deadline on Redis' clock, ``TIME``) and ``limit:parked:<name>`` (list of JSON
``{queue, payload}``, oldest first). Every script reads the clock on the server, so workers
on hosts whose clocks disagree still agree on who holds a slot.
"""

from __future__ import annotations

from ..lua import JSON_TEXT, PREFLIGHT, Script
from .worker import _PHP_STATUS

#: ``now()``: Redis' clock in seconds (TIME; effects replication, the default since Redis 5,
#: lets a script write after reading it). ``unpark(holders, parked, k, now, qprefix, queues,
#: channel, failed, failed_at)``: drop the expired holders, then while fewer than ``k`` hold a
#: slot and jobs are parked, move the oldest parked job back to the HEAD of its queue (it is
#: next in line) and PUBLISH the wake-up; returns how many moved, or the BADKEY reply for a
#: queue of another type (checked before it is touched; the job stays parked). A parked item
#: that is no ``{queue, payload}`` record (nothing labqueue writes) goes to the failed store.
_UNPARK = (
    JSON_TEXT
    + """
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function unpark(holders, parked, k, at, qprefix, queues, channel, failed, failed_at)
  redis.call('ZREMRANGEBYSCORE', holders, '-inf', at)
  local free, moved = k - redis.call('ZCARD', holders), 0
  while free > 0 do
    local item = redis.call('LINDEX', parked, 0)
    if not item then break end
    local ok, rec = pcall(cjson.decode, item)
    local q = ok and type(rec) == 'table' and rec['queue'] or nil
    local raw = ok and type(rec) == 'table' and rec['payload'] or nil
    if type(q) == 'string' and type(raw) == 'string' then
      local err = check(qprefix .. q, 'list')
      if err then return err end
      redis.call('LPUSH', qprefix .. q, raw)
      redis.call('SADD', queues, q)
      redis.pcall('PUBLISH', channel, q)
      free, moved = free - 1, moved + 1
    else
      redis.call('RPUSH', failed, '{"failed_at":' .. cjson.encode(failed_at) .. ',"payload":'
        .. text(item) .. ',"exception":"PayloadError","error":"a parked job that is no '
        .. '{queue, payload} record","backtrace":[],"worker":"labqueue limiter","queue":""}')
    end
    redis.call('LPOP', parked)
  end
  return moved
end
"""
)

#: ACQUIRE: take a slot of a limiter for the job a worker has just fetched, or park the job.
#: Drops expired holders; a worker already holding a slot keeps it; while fewer than K hold
#: one, adds the worker with deadline now + lease and returns 'go'. Else, in the same step,
#: moves the job out of the worker's in-progress hash (its busy record cleared, as after a
#: job) onto the tail of the limiter's parked list, its status waiting again: 'parked' (onto
#: the head instead when its ``queue_time`` is older than the head job's: a job unparked into
#: a slot that another worker took first is parked again in its place, not behind the burst).
#: A job no longer in the in-progress hash (a pruner put it back) is not the worker's: 'gone'.
#: Records K in the limits hash (how sweepers and readers know the limiter).
#: KEYS[1] holders zset, KEYS[2] limits hash, KEYS[3] in-progress hash, KEYS[4] busy key,
#: KEYS[5] parked list. ARGV[1] worker id, ARGV[2] K, ARGV[3] lease seconds, ARGV[4]
#: limiter name, ARGV[5] status prefix, ARGV[6] status suffix, ARGV[7] status JSON (waiting).
#: Preflight: all five keys.
ACQUIRE = Script(
    "ACQUIRE",
    PREFLIGHT
    + _PHP_STATUS
    + """
-- preflight: the keys read and written hold their type or nothing, before any write
local err = check(KEYS[1], 'zset', KEYS[2], 'hash', KEYS[3], 'hash', KEYS[5], 'list')
if err then return err end
local job = redis.call('HMGET', KEYS[3], 'queue', 'payload')
if not job[1] or not job[2] then return 'gone' end
local t = redis.call('TIME')
local at = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('HSET', KEYS[2], ARGV[4], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', at)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], at + tonumber(ARGV[3]), ARGV[1])
  return 'go'
end
redis.call('DEL', KEYS[3], KEYS[4])
local ok, payload = pcall(cjson.decode, job[2])
local push = 'RPUSH'
local mine = ok and type(payload) == 'table' and tonumber(payload['queue_time'])
local head = mine and redis.call('LINDEX', KEYS[5], 0)
if head then
  local hok, rec = pcall(cjson.decode, head)
  local raw = hok and type(rec) == 'table' and rec['payload']
  local pok, theirs = false, nil
  if type(raw) == 'string' then pok, theirs = pcall(cjson.decode, raw) end
  local when = pok and type(theirs) == 'table' and tonumber(theirs['queue_time'])
  if when and mine < when then push = 'LPUSH' end
end
redis.call(push, KEYS[5], '{"queue":' .. cjson.encode(job[1]) .. ',"payload":'
  .. cjson.encode(job[2]) .. '}')
job_status(ARGV[5], ok and payload, ARGV[6], ARGV[7], 1)  -- waiting again
return 'parked'
""",
    keys=5,
    args=7,
)

#: VACATE: give a limiter's slot back after the job ran, and hand the freed slots to parked
#: jobs (see _UNPARK: back to the head of their queue, with a wake-up), in one step.
#: KEYS[1] holders zset, KEYS[2] parked list, KEYS[3] queues set, KEYS[4] failed list.
#: ARGV[1] worker id, ARGV[2] K, ARGV[3] queue key prefix, ARGV[4] wake-up channel,
#: ARGV[5] failed_at (for a parked item that is no record). Returns how many jobs moved.
#: Preflight: all four keys; each queue before a job goes back onto it.
VACATE = Script(
    "VACATE",
    PREFLIGHT
    + _UNPARK
    + """
-- preflight: the keys read and written hold their type or nothing, before any write
local err = check(KEYS[1], 'zset', KEYS[2], 'list', KEYS[3], 'set', KEYS[4], 'list')
if err then return err end
redis.call('ZREM', KEYS[1], ARGV[1])
return unpark(KEYS[1], KEYS[2], tonumber(ARGV[2]), now(), ARGV[3], KEYS[3], ARGV[4], KEYS[4],
  ARGV[5])
""",
    keys=4,
    args=5,
)

#: SWEEP: a worker's heartbeat for the limits. Renews the leases of the slots its ids hold
#: (ZADD XX: a slot already lost, its lease expired, is not taken back), then for every
#: limiter in the limits hash drops expired holders and hands free slots to parked jobs
#: (see _UNPARK): a slot whose holder died is back within lease + one beat of a live worker.
#: KEYS[1] limits hash, KEYS[2] queues set, KEYS[3] failed list. ARGV[1] holders key prefix,
#: ARGV[2] parked key prefix, ARGV[3] queue key prefix, ARGV[4] wake-up channel, ARGV[5]
#: lease seconds, ARGV[6] failed_at, ARGV[7..] pairs of limiter name and worker id (the
#: slots to renew). Returns how many jobs moved. Preflight: the three keys; each limiter's
#: zset and list, and each queue, before it is touched.
SWEEP = Script(
    "SWEEP",
    PREFLIGHT
    + _UNPARK
    + """
-- preflight: the keys read and written hold their type or nothing, before any write
local err = check(KEYS[1], 'hash', KEYS[2], 'set', KEYS[3], 'list')
if err then return err end
local at, moved = now(), 0
for i = 7, #ARGV - 1, 2 do
  err = check(ARGV[1] .. ARGV[i], 'zset')
  if err then return err end
  redis.call('ZADD', ARGV[1] .. ARGV[i], 'XX', at + tonumber(ARGV[5]), ARGV[i + 1])
end
local sizes = redis.call('HGETALL', KEYS[1])
for j = 1, #sizes - 1, 2 do
  local holders, parked, k = ARGV[1] .. sizes[j], ARGV[2] .. sizes[j], tonumber(sizes[j + 1])
  err = check(holders, 'zset', parked, 'list')
  if err then return err end
  if k then
    local n = unpark(holders, parked, k, at, ARGV[3], KEYS[2], ARGV[4], KEYS[3], ARGV[6])
    if type(n) == 'table' then return n end
    moved = moved + n
  end
end
return moved
""",
    keys=3,
    args=(6, None),
)

#: PARKED_HEADS (read only, for readers: :func:`labqueue.ages.waiting_ages`): for every limiter
#: the limits hash names, how many jobs are parked and the one parked longest (the head of its
#: list), so a reader learns the limiters and reads their lists in one round trip. Writes
#: nothing. KEYS[1] limits hash. ARGV[1] parked key prefix. Returns a flat list of name,
#: count, head (nil: nothing parked); a parked key of another type reads as count -1, nil.
PARKED_HEADS = Script(
    "PARKED_HEADS",
    """
local function kind(k)
  local t = redis.call('TYPE', k)
  return type(t) == 'table' and t['ok'] or t
end
local out = {}
if kind(KEYS[1]) ~= 'hash' then return out end
for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
  local key, t = ARGV[1] .. name, kind(ARGV[1] .. name)
  out[#out + 1] = name
  if t == 'list' then
    out[#out + 1] = redis.call('LLEN', key)
    out[#out + 1] = redis.call('LINDEX', key, 0)
  else
    out[#out + 1] = t == 'none' and 0 or -1
    out[#out + 1] = false
  end
end
return out
""",
    keys=1,
    args=1,
)
