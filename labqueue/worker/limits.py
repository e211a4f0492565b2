"""A concurrency limit per job class: at most K jobs of a limiter run at once, across every
worker, process, thread and host sharing the Redis.

``@labqueue.job("Shop::RecordSale", max_concurrency=2, limiter="erp")`` (see
:mod:`labqueue.jobs`). Each limiter has K slots in Redis (``<ns>:labqueue:limit:holders:<name>``,
a zset of worker id -> lease deadline on Redis' clock). The worker calls :meth:`Limits.run`
with each job it fetched:

- A job of an unlimited class runs as before (no round trip added).
- ACQUIRE (one script, one round trip): a free slot is taken and the job runs; then VACATE
  (one round trip) gives the slot back and hands every free slot to a parked job.
- No free slot: ACQUIRE parks the job in the same step: out of the worker's in-progress
  hash onto ``<ns>:labqueue:limit:parked:<name>`` (status waiting), and the worker fetches its
  next job. A parked job counts as neither processed nor failed, is no crash, and is not
  fetched again until a slot frees: it then goes back to the HEAD of its queue (next in line)
  with a wake-up, so an idle worker takes it. Jobs of other classes keep running meanwhile.

Leases: a slot's deadline is :data:`LEASE_BEATS` x the worker's heartbeat interval ahead
(15 s at the default 5 s); every beat renews it, and sweeps (SWEEP, one round trip per beat
in every worker process): expired holders are dropped and parked jobs move into free slots.
So a holder that dies (SIGKILL, power loss) stops renewing, and its slot is free again at
most one lease after its last beat; a parked job then waits at most one more heartbeat
interval of a live worker: **lease + one heartbeat (4 x heartbeat interval, 20 s by
default)**. Its own job comes back by the usual dead-worker release (reliable fetch).

What the limit does not cover: a worker whose heartbeat stalls past its lease (a stopped
process, a Redis outage longer than the lease) loses its slot while its job still runs, so K
may be exceeded until that job ends; Resque and php-resque workers on the same queues do not
know the limit; a parked job is in no ``queue:NAME`` list (``labqueue stats`` and the monitor
show it under its limiter).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import redis

from .. import timefmt
from ..badkeys import heal
from ..errors import BadKey
from ..jobs import Registry
from ..keys import Keys
from ..payload import Payload
from ..scripts import ACQUIRE, SWEEP, VACATE
from ..status import JobStatus, StatusRecord
from .guard import Outage, unavailable
from .reliable import Fetched

log = logging.getLogger("labqueue.worker")

_T = TypeVar("_T")

#: A slot's lease, in heartbeat intervals: a holder missing this many beats loses its slot.
LEASE_BEATS = 3


class Limits:
    """The slots one worker process's ids hold, and the calls that take, give back and renew
    them (thread-safe: one object may serve a process's threads, each with its own id)."""

    def __init__(
        self,
        connection: redis.Redis,
        keys: Keys,
        registry: Registry,
        heartbeat_interval: float,
        stop: threading.Event,
        outage: Outage,
    ) -> None:
        self.connection = connection
        self.keys = keys
        self.registry = registry
        self.lease = LEASE_BEATS * heartbeat_interval  #: seconds a slot stays held unrenewed
        self._stop = stop
        self._outage = outage
        self._held: dict[str, str] = {}  # worker id -> the limiter it holds a slot of
        self._lock = threading.Lock()

    def limit_of(self, fetched: Fetched) -> tuple[str, int] | None:
        """(limiter, K) of the fetched job's class; None: no limit (or a payload the worker
        will fail anyway: unreadable, or of no registered class). ConfigurationError when
        the class's limit was changed since registration to one no worker can honour."""
        if not self.registry.limited():
            return None
        try:
            cls = self.registry.resolve(Payload.from_json(fetched.raw).class_name)
        except Exception:
            return None
        return self.registry.limit_of(cls)

    def run(self, worker_id: str, fetched: Fetched, perform: Callable[[Fetched], _T]) -> _T | None:
        """``perform(fetched)`` under the job's limit; None when it did not run: parked (no
        free slot), no longer this worker's, or the worker stopped during a Redis outage
        (the job stays in its in-progress hash, which the worker's release puts back)."""
        limit = self.limit_of(fetched)
        if limit is None:
            return perform(fetched)
        name, k = limit
        answer = self._acquire(worker_id, name, k)
        if answer != "go":
            if answer is not None:
                log.debug(
                    "%s: limiter %s full: job from %s %s", worker_id, name, fetched.queue, answer
                )
            return None
        with self._lock:
            self._held[worker_id] = name
        try:
            return perform(fetched)
        finally:
            with self._lock:
                self._held.pop(worker_id, None)
            self._vacate(worker_id, name, k)

    def beat(self) -> int:
        """Renew every slot this object's ids hold, drop expired holders and move parked jobs
        into free slots: one round trip (the heartbeat thread's; errors are its to log)."""
        with self._lock:
            pairs = [v for wid, name in self._held.items() for v in (name, wid)]
        k = self.keys
        args = (
            k.limit_holders_prefix,
            k.limit_parked_prefix,
            k.queue_prefix,
            k.wakeup_channel,
            self.lease,
            timefmt.failed_at(),
            *pairs,
        )
        call = partial(SWEEP.call, self.connection, (k.limits, k.queues, k.failed), args)
        return int(self._healed(call, "limits sweep"))

    def _acquire(self, worker_id: str, name: str, k: int) -> str | None:
        keys = self.keys
        waiting = StatusRecord(JobStatus.WAITING, time.time(), time.time()).to_json()
        call = partial(
            ACQUIRE.call,
            self.connection,
            (
                keys.limit_holders(name),
                keys.limits,
                keys.inprogress(worker_id),
                keys.worker(worker_id),
                keys.limit_parked(name),
            ),
            (worker_id, k, self.lease, name, keys.status_prefix, Keys.STATUS_SUFFIX, waiting),
        )
        reply = self._patient(call, worker_id)
        return None if reply is None else _text(reply)

    def _vacate(self, worker_id: str, name: str, k: int) -> None:
        keys = self.keys
        call = partial(
            VACATE.call,
            self.connection,
            (keys.limit_holders(name), keys.limit_parked(name), keys.queues, keys.failed),
            (worker_id, k, keys.queue_prefix, keys.wakeup_channel, timefmt.failed_at()),
        )
        if self._patient(call, worker_id) is None:
            log.warning("%s: could not give back its %s slot; its lease frees it", worker_id, name)

    def _patient(self, call: Callable[[], Any], who: str) -> Any:
        """``call()``, again after a Redis outage until Redis answers; None if the worker
        was stopped meanwhile."""
        while True:
            try:
                reply = self._healed(call, who)
                self._outage.back()
                return reply
            except redis.RedisError as exc:
                if not unavailable(exc):
                    raise
                self._outage.note(exc)
                if not self._outage.wait(self.connection, self._stop):
                    return None

    def _healed(self, call: Callable[[], Any], who: str) -> Any:
        try:
            return call()
        except BadKey as bad:  # moved aside, then the call again (see labqueue.badkeys)
            return heal(bad, call, self.connection, self.keys, who)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
