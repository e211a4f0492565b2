"""A worker's scripts: STEP, RELEASE, RETRY, QUARANTINE and SET_ASIDE (see
:mod:`labqueue.scripts`)."""

from __future__ import annotations

from ..lua import PREFLIGHT, Script

#: Lua helpers pasted into the scripts that write statuses (STEP, RELEASE): php-resque's
#: status rules for payloads that carry php-resque's ``prefix`` field (every php-resque
#: payload does, ``""`` when it has none): the key is ``job:<prefix>_<id>:status`` (no
#: prefix for ``""``/``"0"``), a status is updated only if it exists (php-resque creates it
#: only when tracking is on), ``started`` stays what creation wrote, ``result`` comes last.
#: ``php_status(key, head, tail, ttl)`` writes ``head .. started .. tail`` (a key holding
#: another type than a string is no status: left alone, as a missing one).
_PHP_STATUS = """
local function php_key(prefix, job, suffix)
  local p, id = job['prefix'], job['id']
  if type(p) == 'string' and p ~= '' and p ~= '0' then id = p .. '_' .. id end
  return prefix .. id .. suffix
end
local function php_status(key, head, tail, ttl)
  -- a key of another type is no status (pcall: GET would fail the script): left alone
  local old = redis.pcall('GET', key)
  if not old or type(old) == 'table' then return end
  local ok, rec = pcall(cjson.decode, old)
  local started = ok and type(rec) == 'table' and rec['started'] or nil
  if started == nil then started = cjson.null end
  local text = head .. cjson.encode(started) .. tail
  if ttl then redis.call('SET', key, text, 'EX', ttl) else redis.call('SET', key, text) end
end
local function job_status(prefix, job, suffix, text, code)
  -- a job's status: labqueue's JSON ``text``; for a php-resque payload (it has a prefix)
  -- php-resque's ``code`` instead, only if tracked, its started kept
  if type(job) ~= 'table' or type(job['id']) ~= 'string' then return end
  if job['prefix'] == nil then
    redis.call('SET', prefix .. job['id'] .. suffix, text)
    return
  end
  local updated = string.match(text, '"updated":(%d+)')
  php_status(php_key(prefix, job, suffix), '{"status":' .. code .. ',"updated":' .. updated
    .. ',"started":', ',"result":null}', nil)
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
#: Preflight (after that check, by the mode it leaves): finishing, both processed counters
#: and (a failure in mode '1') both failed counters and the failed list; fetching, the
#: in-progress hash, the queues set ('*') and each queue up to the first one holding jobs
#: (the ones LPOP reaches), in the order LPOP takes them. The busy and status keys are SET
#: whatever they held (a php-resque status of another type is left alone).
STEP = Script(
    "STEP",
    PREFLIGHT
    + _PHP_STATUS
    + """
local mode = ARGV[1]
-- multihost (issue 17): a late finish of a job a pruner already took back records nothing
-- ('2' comes after RETRY, which has already let go of the hash: it is not checked here)
if mode == '1' and redis.call('EXISTS', KEYS[1]) == 0 then
  mode = ''
  if #ARGV < 10 then return 0 end
end
-- preflight: the keys read and written hold their type or nothing, before any write
local spec, names = {}, {}
if mode == '1' or mode == '2' then spec = {KEYS[4], 'integer', KEYS[5], 'integer'} end
if mode == '1' and ARGV[3] ~= '' then
  for _, v in ipairs({KEYS[8], 'integer', KEYS[9], 'integer', KEYS[6], 'list'}) do
    spec[#spec + 1] = v
  end
end
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
      job_status(ARGV[8], ok and job, ARGV[9], ARGV[5], 2)  -- running
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
#: the requeued payload (as requeued) or false. Preflight: the in-progress hash, the workers
#: set, the heartbeat hash, the queues set, labqueue's worker records and the list the job
#: goes back to (a php-resque status of another type is left alone).
RELEASE = Script(
    "RELEASE",
    PREFLIGHT
    + _PHP_STATUS
    + """
-- preflight: the keys read and written hold their type or nothing, before any write
local err = check(KEYS[1], 'hash', KEYS[2], 'set', KEYS[5], 'hash', KEYS[8], 'set',
  KEYS[9], 'hash')
if not err then
  local q = redis.call('HGET', KEYS[1], 'queue')
  if q then err = check(ARGV[2] .. q, 'list') end
end
if err then return err end
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
job_status(ARGV[3], ok and payload, ARGV[4], ARGV[5], 1)  -- waiting again
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
#: worker's failed counter, KEYS[5] failed list, KEYS[6] global processed counter, KEYS[7]
#: the worker's processed counter. ARGV[1] the payload as read, ARGV[2] the
#: failure record. Returns 1 if moved, 0 if the job was no longer there.
#: Preflight: the in-progress hash, the four counters, the failed list.
QUARANTINE = Script(
    "QUARANTINE",
    PREFLIGHT
    + """
-- preflight: the keys read and written hold their type or nothing, before any write
local err = check(KEYS[1], 'hash', KEYS[3], 'integer', KEYS[4], 'integer', KEYS[5], 'list',
  KEYS[6], 'integer', KEYS[7], 'integer')
if err then return err end
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
