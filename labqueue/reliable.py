"""Reliable fetch: every state change of a worker's job, each one atomic Lua script.

A job is always in exactly one place: its queue, one worker's in-progress hash
(``<ns>:labqueue:inprogress:<worker id>`` = ``{queue, payload}``), or done (counted, status
set, failure recorded). A worker killed at any instant leaves its job in the in-progress
hash, and whoever releases that worker (itself on the way out, or a live worker that finds
it dead) puts the job back at the head of its queue: at least once, never lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .keys import Keys

#: FETCH: take the first job of the first non-empty queue (priority order; '*' = every
#: known queue, sorted) into this worker's in-progress hash, and mark the worker busy and
#: the job running, in one step: no instant exists where the job is in neither place.
#: KEYS[1] in-progress hash, KEYS[2] worker busy key, KEYS[3] queues set.
#: ARGV[1] queue key prefix, ARGV[2] status prefix, ARGV[3] status suffix, ARGV[4] run_at,
#: ARGV[5] now (epoch s), ARGV[6..] queue names or the single '*'.
#: Returns {queue, payload} or false.
FETCH_LUA = """
local names = {}
if ARGV[6] == '*' then
  names = redis.call('SMEMBERS', KEYS[3])
  table.sort(names)
else
  for i = 6, #ARGV do names[#names + 1] = ARGV[i] end
end
for _, q in ipairs(names) do
  local raw = redis.call('LPOP', ARGV[1] .. q)
  if raw then
    redis.call('HSET', KEYS[1], 'queue', q, 'payload', raw)
    local ok, job = pcall(cjson.decode, raw)
    local shown = raw
    if not ok or type(job) ~= 'table' then shown = cjson.encode(raw) end
    redis.call('SET', KEYS[2],
      '{"queue":' .. cjson.encode(q) .. ',"run_at":"' .. ARGV[4] .. '","payload":' .. shown .. '}')
    if ok and type(job) == 'table' and type(job['id']) == 'string' then
      redis.call('SET', ARGV[2] .. job['id'] .. ARGV[3],
        '{"status":2,"updated":' .. ARGV[5] .. ',"started":' .. ARGV[5] .. '}')
    end
    return {q, raw}
  end
end
return false
"""

#: FINISH: record the outcome of the in-progress job and let go of it, in one step: the
#: counters, the status and (on failure) the failure record change together with the job
#: leaving the in-progress hash, so a crash never counts a job twice or loses a failure.
#: KEYS[1] in-progress, KEYS[2] worker busy key, KEYS[3] global counter, KEYS[4] worker
#: counter, KEYS[5] status key, KEYS[6] failed list.
#: ARGV[1] status JSON ('' = no id), ARGV[2] status TTL, ARGV[3] failure record ('' = none).
#: Returns 1 if the job was still ours, 0 if a pruner had already put it back.
FINISH_LUA = """
local ours = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2])
redis.call('INCR', KEYS[3])
redis.call('INCR', KEYS[4])
if ARGV[1] ~= '' then redis.call('SET', KEYS[5], ARGV[1], 'EX', ARGV[2]) end
if ARGV[3] ~= '' then redis.call('RPUSH', KEYS[6], ARGV[3]) end
return ours
"""

#: RELEASE: unregister a worker and put its in-progress job (if any) back at the head of
#: its queue with status waiting, in one step. Run by a worker on its way out and by a live
#: worker for a dead one; two callers racing for the same job cannot both requeue it.
#: KEYS[1] in-progress, KEYS[2] workers set, KEYS[3] busy key, KEYS[4] started key,
#: KEYS[5] heartbeat hash, KEYS[6] worker processed counter, KEYS[7] worker failed counter,
#: KEYS[8] queues set.
#: ARGV[1] worker id, ARGV[2] queue key prefix, ARGV[3] status prefix, ARGV[4] status
#: suffix, ARGV[5] now (epoch s). Returns the requeued payload or false.
RELEASE_LUA = """
local job = redis.call('HMGET', KEYS[1], 'queue', 'payload')
redis.call('DEL', KEYS[1], KEYS[3], KEYS[4], KEYS[6], KEYS[7])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
if not job[1] or not job[2] then return false end
redis.call('LPUSH', ARGV[2] .. job[1], job[2])
redis.call('SADD', KEYS[8], job[1])
local ok, payload = pcall(cjson.decode, job[2])
if ok and type(payload) == 'table' and type(payload['id']) == 'string' then
  redis.call('SET', ARGV[3] .. payload['id'] .. ARGV[4],
    '{"status":1,"updated":' .. ARGV[5] .. ',"started":' .. ARGV[5] .. '}')
end
return job[2]
"""


@dataclass
class Fetched:
    """A job a worker has taken: the queue it came from and its raw payload."""

    queue: str
    raw: str


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ReliableFetch:
    """The three scripts, bound to one connection and namespace."""

    def __init__(self, connection: Any, keys: Keys) -> None:
        self.connection = connection
        self.keys = keys
        self._fetch = connection.register_script(FETCH_LUA)
        self._finish = connection.register_script(FINISH_LUA)
        self._release = connection.register_script(RELEASE_LUA)

    def fetch(
        self, worker_id: str, queues: list[str], now: float, run_at: str, client: Any = None
    ) -> Any:
        k = self.keys
        return self._fetch(
            [k.inprogress(worker_id), k.worker(worker_id), k.queues],
            [k.queue_prefix, k.status_prefix, Keys.STATUS_SUFFIX, run_at, int(now), *queues],
            client=client,
        )

    @staticmethod
    def parse(reply: Any) -> Fetched | None:
        if not reply:
            return None
        return Fetched(_text(reply[0]), _text(reply[1]))

    def finish(
        self,
        worker_id: str,
        job_id: str | None,
        status: str,
        ttl: int,
        failure: str = "",
        client: Any = None,
    ) -> Any:
        k = self.keys
        counter = "failed" if failure else "processed"
        return self._finish(
            [
                k.inprogress(worker_id),
                k.worker(worker_id),
                k.stat(counter),
                k.stat(counter, worker_id),
                k.status(job_id or "-"),
                k.failed,
            ],
            [status if job_id else "", ttl, failure],
            client=client,
        )

    def release(self, worker_id: str, now: float) -> str | None:
        """Unregister ``worker_id``; returns the payload put back on its queue, if any."""
        k = self.keys
        reply = self._release(
            [
                k.inprogress(worker_id),
                k.workers,
                k.worker(worker_id),
                k.worker_started(worker_id),
                k.heartbeat,
                k.stat("processed", worker_id),
                k.stat("failed", worker_id),
                k.queues,
            ],
            [worker_id, k.queue_prefix, k.status_prefix, Keys.STATUS_SUFFIX, int(now)],
        )
        return _text(reply) if reply else None
