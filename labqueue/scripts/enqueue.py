"""The producers' scripts: ENQUEUE and ENQUEUE_NEW (see :mod:`labqueue.scripts`)."""

from __future__ import annotations

from ..lua import PREFLIGHT, Script

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

#: ENQUEUE_NEW: ENQUEUE for jobs that may have been enqueued before (an outbox relay that
#: died between enqueueing and marking its rows sent, and a second relay sending them again):
#: a job whose status key exists (waiting, running, or finished within the status TTL) is
#: skipped, so one id is queued once, however many times it is sent. The check and the push
#: are one step: two relays racing cannot both push it.
#: KEYS[1] queues set, KEYS[2] the queue list, KEYS[3..] each job's status key;
#: ARGV[1] queue name, ARGV[2] wake-up channel, ARGV[3] status JSON, ARGV[4..] each job's
#: payload (as ENQUEUE's). Returns how many jobs were pushed.
#: Preflight: as ENQUEUE's (a status key of any type counts as existing, and is not written).
ENQUEUE_NEW = Script(
    "ENQUEUE_NEW",
    PREFLIGHT
    + """
-- preflight: the keys written hold their type or nothing, before any write
local err = check(KEYS[1], 'set', KEYS[2], 'list')
if err then return err end
redis.call('SADD', KEYS[1], ARGV[1])
local before, pushed = redis.call('LLEN', KEYS[2]), 0
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    redis.call('RPUSH', KEYS[2], ARGV[i + 1])
    redis.call('SET', KEYS[i], ARGV[3])
    pushed = pushed + 1
  end
end
if pushed > 0 and before == 0 then redis.pcall('PUBLISH', ARGV[2], ARGV[1]) end
return pushed
""",
    keys=(3, None),
    args=(4, None),
)
