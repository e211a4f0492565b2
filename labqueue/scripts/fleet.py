"""The fleet's scripts: CLAIM, BEAT, DROP_FOREIGN (see :mod:`labqueue.scripts`)."""

from __future__ import annotations

from ..lua import PREFLIGHT, Script

#: CLAIM: take a worker id in labqueue's record, only if the record is still what the
#: caller judged (compare and set: two workers starting with one id cannot both win).
#: KEYS[1] labqueue's worker records. ARGV[1] worker id, ARGV[2] the record as read ('' =
#: none), ARGV[3] the new record. Returns 1 if claimed, 0 if the record changed meanwhile.
#: Preflight: the records hash.
CLAIM = Script(
    "CLAIM",
    PREFLIGHT
    + """
-- preflight: the key read and written holds its type or nothing, before any write
local err = check(KEYS[1], 'hash')
if err then return err end
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
#: Preflight: the workers set, both hashes written and the in-progress hash read (the
#: started and busy keys are SET, NX or whole, whatever they held).
BEAT = Script(
    "BEAT",
    PREFLIGHT
    + """
-- preflight: the keys read and written hold their type or nothing, before any write
local err = check(KEYS[1], 'set', KEYS[3], 'hash', KEYS[4], 'hash', KEYS[6], 'hash')
if err then return err end
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
#: Preflight: the busy key read (a string), the workers set, the heartbeat hash and (a
#: failure record to write) the failed list; the keys DELeted may hold anything.
DROP_FOREIGN = Script(
    "DROP_FOREIGN",
    PREFLIGHT
    + """
-- preflight: the keys read and written hold their type or nothing, before any write
local err = check(KEYS[2], 'string', KEYS[1], 'set', KEYS[4], 'hash')
if not err and ARGV[3] ~= '' then err = check(KEYS[7], 'list') end
if err then return err end
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
