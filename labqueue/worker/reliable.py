"""Reliable fetch: every state change of a worker's job, each one atomic Lua script.

A job is always in exactly one place: its queue, one worker's in-progress hash
(``<ns>:labqueue:inprogress:<worker id>`` = ``{queue, payload}``), or done (counted, status
set, failure recorded). A worker killed at any instant leaves its job in the in-progress
hash, and whoever releases that worker (itself on the way out, or a live worker that finds
it dead) puts the job back at the head of its queue: at least once, never lost.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import NoScriptError

from .. import wire
from ..keys import Keys

#: STEP: FINISH the job this worker ran (if any), then FETCH the next (if asked), in one
#: script call, so a worker needs one round trip per job.
#: FINISH records the outcome and lets go of the job in one step: the counters, the status
#: and (on failure) the failure record change together with the job leaving the in-progress
#: hash, so a crash never counts a job twice or loses a failure.
#: FETCH takes the first job of the first non-empty queue (priority order; '*' = every known
#: queue, sorted) into the in-progress hash, and marks the worker busy and the job running,
#: in one step: no instant exists where the job is in neither place.
#: KEYS[1] in-progress hash, KEYS[2] worker busy key, KEYS[3] queues set, KEYS[4] global
#: counter (processed or failed), KEYS[5] worker counter, KEYS[6] failed list, KEYS[7] status
#: key of the finished job.
#: ARGV[1] '1' = finish a job ('' = fetch only), ARGV[2] its status JSON ('' = no id),
#: ARGV[3] failure record ('' = none), ARGV[4] run_at, ARGV[5] now (epoch s), ARGV[6] status
#: TTL, ARGV[7] queue key prefix, ARGV[8] status prefix, ARGV[9] status suffix, ARGV[10..]
#: queue names or the single '*' (none = don't fetch).
#: A job fetched replaces the finished one in the in-progress hash (its only fields are
#: queue and payload) and in the busy key, so those two are deleted only when nothing is
#: fetched: two commands fewer per job, the same state after the script.
#: Returns {queue, payload} or false when fetching; else 1 if the finished job was still
#: ours, 0 if a pruner had already put it back.
STEP_LUA = """
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
        redis.call('SET', ARGV[8] .. job['id'] .. ARGV[9],
          '{"status":2,"updated":' .. ARGV[5] .. ',"started":' .. ARGV[5] .. '}')
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

STEP_SHA = hashlib.sha1(STEP_LUA.encode()).hexdigest()


@dataclass
class Fetched:
    """A job a worker has taken: the queue it came from and its raw payload."""

    queue: str
    raw: str


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ReliableFetch:
    """The scripts, bound to one connection and namespace.

    Scripts run by EVALSHA with the digest computed here (SCRIPT LOAD once, on NOSCRIPT):
    no SCRIPT EXISTS before every pipeline, no Script object in between.
    """

    def __init__(self, connection: Any, keys: Keys) -> None:
        self.connection = connection
        self.keys = keys
        self._release = connection.register_script(RELEASE_LUA)

    def step(self, args: Sequence[Any]) -> Any:
        """Run STEP_LUA with ``args`` (numkeys first, as EVALSHA takes them)."""
        try:
            return wire.call(self.connection, b"EVALSHA", STEP_SHA, *args)
        except NoScriptError:
            self.connection.script_load(STEP_LUA)
            return wire.call(self.connection, b"EVALSHA", STEP_SHA, *args)

    def bind(self, worker_id: str, queues: Sequence[str], ttl: int) -> WorkerSteps:
        """STEP_LUA's arguments that never change for ``worker_id``, computed once."""
        return WorkerSteps(self, worker_id, queues, ttl)

    def fetch(self, worker_id: str, queues: list[str], now: float, run_at: str) -> Any:
        """Take the next job into ``worker_id``'s in-progress hash (reply for :meth:`parse`)."""
        return self.bind(worker_id, queues, 0).step(None, now, run_at)

    @staticmethod
    def parse(reply: Any) -> Fetched | None:
        if not reply:
            return None
        return Fetched(_text(reply[0]), _text(reply[1]))

    def finish(
        self, worker_id: str, job_id: str | None, status: str, ttl: int, failure: str = ""
    ) -> Any:
        """Record the outcome of ``worker_id``'s job; 1 if it was still ours, else 0."""
        steps = self.bind(worker_id, (), ttl)
        return steps.step((job_id, status, failure), time.time(), "", fetch=False)

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


class WorkerSteps:
    """STEP_LUA for one worker: its keys and queues encoded once, the job's parts per call."""

    def __init__(
        self, fetcher: ReliableFetch, worker_id: str, queues: Sequence[str], ttl: int
    ) -> None:
        k = fetcher.keys
        self._fetcher = fetcher
        head = (7, k.inprogress(worker_id), k.worker(worker_id), k.queues)
        self._done = {
            counter: _encoded((*head, k.stat(counter), k.stat(counter, worker_id), k.failed))
            for counter in ("processed", "failed")
        }
        self._status = (k.status_prefix, Keys.STATUS_SUFFIX)
        consts = (ttl, k.queue_prefix, k.status_prefix, Keys.STATUS_SUFFIX)
        self._tail = _encoded(consts)
        self._fetch_tail = _encoded((*consts, *queues))

    def step(
        self,
        done: tuple[str | None, str, str] | None,
        now: float,
        run_at: str,
        fetch: bool = True,
    ) -> Any:
        """Finish ``done`` = (job id, status JSON, failure record) if given, then fetch."""
        tail = self._fetch_tail if fetch else self._tail
        if done is None:
            keys, flag, job_id, status, failure = self._done["processed"], "", None, "", ""
        else:
            job_id, status, failure = done
            keys, flag = self._done["failed" if failure else "processed"], "1"
        status_key = self._status[0] + (job_id or "-") + self._status[1]
        status = status if job_id else ""
        return self._fetcher.step(
            (*keys, status_key, flag, status, failure, run_at, int(now), *tail)
        )


def _encoded(values: Sequence[Any]) -> tuple[Any, ...]:
    """Strings as UTF-8 bytes, which redis-py sends as they are (no per-call encoding)."""
    return tuple(v.encode() if isinstance(v, str) else v for v in values)
