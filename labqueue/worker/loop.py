"""The worker loop: take a job, run it, record the outcome, repeat.

- Reliable fetch (see :mod:`.reliable`): the job sits in this worker's in-progress
  hash while it runs; finishing one job and fetching the next is one round trip.
- Idle, it sleeps on pub/sub until a push to one of its queues, or polls every
  ``poll_interval`` seconds (see :mod:`.wakeups`).
- Registers in ``resque:workers``, beats ``resque:workers:heartbeat`` from a thread, shows
  ``resque:worker:ID`` while busy, and releases dead workers' jobs when it starts. Every
  beat registers it again, and its process title is one Resque's and php-resque's prune
  rules keep (see :mod:`.presence`); dead workers are judged by their owner's rule (see
  :mod:`.liveness`). ``stat:processed`` counts every finished job, failed ones too.
- TERM, INT or QUIT: finish the current job, then exit. A second TERM or INT: put the
  current job back at the head of its queue and exit at once (see :mod:`.signals`).
- ``threads=N`` (N > 1): N workers in this process, each with its own id, sharing one
  heartbeat, one delayed mover and one subscription (see :mod:`.threads`).
- Whatever ``perform`` raises fails that job alone (into the failed store, or a retry when
  its class has one for it): any Exception, and the BaseExceptions that are not (a job's
  ``asyncio.CancelledError``, ``GeneratorExit``, a library's own), inline, under a time
  limit and with ``--fork`` alike. ``SystemExit`` and ``KeyboardInterrupt`` raised by a job
  fail it too (inline as ``JobCrashed``, naming them; with ``--fork`` under their own
  names): a job cannot stop the worker. Stopping the worker is a signal's business (above),
  handled by the worker, never an exception out of ``perform``.
- Faults (see :mod:`.guard`, :mod:`.execution`, :mod:`.retry`):
  a job runs under its time limit, in a child process with ``fork``; a failed job with
  retries left is scheduled again; due delayed jobs are moved by a timer thread
  (:mod:`labqueue.delayed`); a Redis outage is waited out, not fatal; a key of the wrong
  type is set aside and the step run again (:mod:`labqueue.badkeys`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, TypeVar

import redis

from .. import timefmt
from ..badkeys import say_once
from ..delayed import DelayedMover
from ..errors import BadKey, ConfigurationError
from ..events import JobEventLog
from ..failures import Failure
from ..jobs import Registry, registry
from ..keys import DEFAULT_NAMESPACE, Keys, WorkerId
from ..payload import Payload
from ..status import FINISHED_TTL, JobStatus, php_prefix, status_json
from . import crashes, retry, signals
from .execution import Executor
from .guard import Outage, quarantine, unavailable, without_retries
from .limits import Limits
from .liveness import DEAD_AFTER, labqueue_dead, prune_dead_workers
from .options import check_intervals, check_threads, parse_queues
from .outcome import Outcome
from .outcome import outcome as _outcome
from .presence import Presence, Title
from .reliable import Fetched, ReliableFetch, WorkerSteps
from .sides import SideThreads
from .signals import Abort as _Abort
from .signals import Interrupted as _Interrupted
from .threads import ThreadPool
from .wakeups import DRAIN_EVERY, Wakeups

log = logging.getLogger("labqueue.worker")

_T = TypeVar("_T")


class Worker:
    """Runs jobs from ``queues`` (priority order) until stopped, or until empty with burst."""

    def __init__(
        self,
        queues: str | Sequence[str] = "*",
        connection: redis.Redis | None = None,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        registry: Registry = registry,
        poll_interval: float = 1.0,
        heartbeat_interval: float = 5.0,
        dead_after: float = DEAD_AFTER,
        job_timeout: float | None = None,
        fork: bool = False,
        scheduler_interval: float | None = 0.5,
        crash_limit: int | None = crashes.DEFAULT_CRASH_LIMIT,
        rng: random.Random | None = None,
        job_events: str | os.PathLike[str] | None = None,
        proctitle: bool | None = None,
        threads: int = 1,
    ) -> None:
        """``crash_limit``: worker deaths a job may cause before it is failed (None: no cap;
        a job class's own wins, see :mod:`.crashes`); ``rng``: draws retry jitter (seed one
        for a repeatable run, see :mod:`.retry`); ``job_events``: a folder to record every
        job's life in (:mod:`labqueue.events`); ``threads``: how many jobs this process
        runs at once, each thread a worker of its own (:mod:`.threads`; not with ``fork``)."""
        from ..connection import connect, connection_url

        self.threads = check_threads(threads, fork)
        self.thread: int | None = None  #: K of a worker thread (set by :mod:`.threads`)
        if connection is None:
            connection = connect()
        if fork and connection_url(connection) is None:
            raise ConfigurationError("fork mode needs a redis-server (fakeredis is in-process)")
        self.queues = parse_queues(queues)
        self.connection = connection
        self.keys = Keys(namespace)
        self.registry = registry
        self.poll_interval = poll_interval
        self.heartbeat_interval = heartbeat_interval
        self.dead_after = dead_after
        self.hostname = socket.gethostname()
        self.processed = 0  #: jobs finished, failed ones included (as Resque counts)
        self.failed = 0  #: of which failed
        self.crash_limit = crashes.check_limit(crash_limit)
        self.rng = rng
        self._redis = without_retries(connection)  # the worker's own, never re-sent, commands
        self._fetcher = ReliableFetch(self._redis, self.keys)
        self._executor = Executor(connection, job_timeout, fork)
        self._retrier = retry.Retrier(self._redis, self.keys)
        self._outage = Outage("worker")
        self.scheduler_interval = scheduler_interval
        check_intervals(poll_interval, heartbeat_interval, scheduler_interval)
        self._stop = threading.Event()
        self._signals = 0
        self._state = "starting"
        db = int(connection.connection_pool.connection_kwargs.get("db", 0))
        self._wakeups = Wakeups(self._redis, self.keys, self.queues, db, self._stop)
        self._steps: WorkerSteps | None = None  # STEP's arguments for this process's id
        self._steps_for = 0
        self._events = None if job_events is None else JobEventLog(job_events)
        if self._events is not None:  # opt-in, one row per job (labqueue.events); off: no change
            self._perform = self._events.wrap(self._perform, lambda: self.id)  # type: ignore[method-assign,assignment]
        self.proctitle = proctitle  #: set the process title (None: when in the main thread)
        self._presence = Presence(self._redis, self.keys, self.id, heartbeat_interval)
        self._limits = Limits(
            self._redis, self.keys, registry, heartbeat_interval, self._stop, self._outage
        )
        self._title = Title(self.queues, False)
        self._sides = SideThreads(lambda: self.id, self._outage)

    @property
    def id(self) -> str:
        """``host:pid:queues``, as Resque names a worker (the pid of the running process);
        a worker thread's ends with ``:tK`` (see :class:`~labqueue.keys.WorkerId`)."""
        return str(WorkerId.of(self.hostname, os.getpid(), self.queues, self.thread))

    def __repr__(self) -> str:
        return f"Worker({self.id!r})"

    # -- the loop ----------------------------------------------------------------------
    def work(self, burst: bool = False) -> int:
        """Process jobs until stopped (or, with ``burst``, until the queues are empty).

        Returns how many jobs ran (succeeded or failed). Raises ConfigurationError, having
        changed nothing, when a live labqueue worker holds this worker's id.
        """
        if self.threads > 1:
            return ThreadPool(self).work(burst)
        self._stop.clear()
        if self._presence.id != self.id:  # forked since built: our id has our pid
            self._presence = Presence(self._redis, self.keys, self.id, self.heartbeat_interval)
        self._title = Title(self.queues, self.proctitle)
        self._title.wait()  # before registering: a Resque worker starting now must see it
        try:
            self._presence.claim(lambda rec, now: labqueue_dead(self.id, rec, now, self.dead_after))
        except BaseException:
            self._title.restore()
            raise
        old_handlers = self._install_signals()
        beat = self._sides.heartbeat(self._stop, self.heartbeat_interval, self._beat, self._prune)
        self._outage.who = self._wakeups.who = self.id
        try:
            self._register()
            beat.start()
            if self.scheduler_interval:
                mover = DelayedMover(self._redis, self.keys, self._stop, self._sides.error)
                mover.max_pause, mover.who = self.scheduler_interval, self.id
                mover.start()
            self._loop(burst)
        except _Interrupted:
            pass
        except _Abort:
            log.warning("%s: second signal, putting the current job back on its queue", self.id)
        finally:
            self._stop.set()
            if beat.is_alive():  # no beat may register us again after we let go
                beat.join(max(5.0, self.heartbeat_interval))
            self._shutdown(old_handlers)
            self._title.restore()
        return self.processed

    def stop(self) -> None:
        """Ask the worker to finish its current job and return (safe from any thread)."""
        self._stop.set()
        with contextlib.suppress(redis.RedisError):
            self.connection.publish(self.keys.wakeup_channel, "")

    def _loop(self, burst: bool) -> None:
        pending: Outcome | None = None
        woke = False
        while not self._stop.is_set():
            fetched = self._step(pending)
            pending = None
            if fetched is None:
                if burst:
                    return
                self._wait_for_work()
                woke = True
                continue
            if woke:  # found work on waking: a process of threads wakes one more idle thread
                self._wakeups.found()
                woke = False
            pending = self._limits.run(self.id, fetched, self._perform)  # None: parked
            if self.processed % DRAIN_EVERY == 0:
                self._wakeups.drain()
        if pending is not None:
            self._step(pending, fetch=False)

    def _step(self, done: Outcome | None, fetch: bool = True) -> Fetched | None:
        """:meth:`_finish_and_fetch`, riding out Redis outages and payloads that are not UTF-8."""
        while True:
            try:
                try:
                    return self._patiently(self._finish_and_fetch, done, fetch)
                except UnicodeDecodeError:  # the fetched job is not text: fail it as bytes
                    done = None
                    failed = self._patiently(quarantine, self._redis, self.keys, self.id)
                    self.failed += failed
                    self.processed += failed
            except redis.RedisError as exc:
                if not unavailable(exc):
                    raise
                held = self._recover(exc, done)
                if held is not None:
                    return held
            done = None  # settled: now fetch (again)
            if not fetch:
                return None

    def _recover(self, exc: Exception, done: Outcome | None) -> Fetched | None:
        """Wait for Redis, then settle the step it may or may not have run: our in-progress
        hash still holding ``done`` means it did not (finish it now); holding another job,
        that it fetched that job for us (returned, to run)."""
        while True:
            self._outage.note(exc)
            if not self._outage.wait(self._redis, self._stop):
                raise _Interrupted  # stopped meanwhile: a pruner puts our job back
            try:
                held = self._fetcher.held(self.id)
                if done and done.job_id and held and held.job_id == done.job_id:
                    self._patiently(self._finish_and_fetch, done, False)
                    held = None
                done = None
                self._presence.beat()  # a restarted Redis may have forgotten us
                self._outage.back()
                return held
            except redis.RedisError as again:
                if not unavailable(again):
                    raise
                exc = again

    def _patiently(self, settle: Callable[..., _T], *args: Any) -> _T:
        """``settle(*args)``, again every poll interval while a key comes back bad as fast as
        it is moved aside (see :mod:`labqueue.badkeys`): the job stays ours meanwhile."""
        while True:
            try:
                return settle(*args)
            except BadKey as bad:
                say_once(bad, f"{self.id}: {bad}; trying again every {self.poll_interval:g} s")
                if self._stop.wait(self.poll_interval):
                    raise _Interrupted from None  # stopping: release puts the job back

    def _finish_and_fetch(self, done: Outcome | None, fetch: bool = True) -> Fetched | None:
        """Record ``done`` (if any) and take the next job: one script call, one round trip."""
        now = time.time()
        retried = False
        if done is not None and done.retry is not None:  # let go of it for its next run
            retried = bool(self._retrier.finish(self.id, done.retry, done.status))
            done = None
        if self._steps is None or self._steps_for != os.getpid():
            self._steps = self._fetcher.bind(self.id, self.queues, FINISHED_TTL)
            self._steps_for = os.getpid()
        job = None if done is None else (done.status_id or done.job_id, done.status, done.failure)
        run_at = timefmt.run_at(now)
        reply = self._steps.step(job, now, run_at, fetch, retried)
        self._presence.run_at = run_at
        return ReliableFetch.parse(reply) if fetch else None

    def _perform(self, fetched: Fetched) -> Outcome:
        started = time.time()
        payload: Payload | None = None
        job_class = None
        self._state = "performing"
        try:
            payload = Payload.from_json(fetched.raw)
            self._title.processing(fetched.queue, started, payload.class_name)
            job_class = self.registry.resolve(payload.class_name)
            crashes.check(payload, job_class, self.crash_limit)  # a poison job: failed, not run
            log.debug("%s %s from %s: started", payload.class_name, payload.id, fetched.queue)
            result = self._executor.run(job_class, payload, fetched.queue)
        except (_Abort, _Interrupted):
            raise  # the worker's own: a second signal, or stop while waiting
        except BaseException as exc:  # a job's CancelledError or GeneratorExit fails the job only
            self.processed += 1  # every finished job, failed or not (not one given back)
            self.failed += 1
            return self._failed(exc, fetched, payload, job_class, started)
        finally:
            self._state = "busy"
        self.processed += 1
        log.debug("%s %s: done in %.3f s", payload.class_name, payload.id, time.time() - started)
        return _outcome(payload, JobStatus.COMPLETE, started, result)

    def _failed(
        self,
        exc: BaseException,
        fetched: Fetched,
        payload: Payload | None,
        job_class: Any,
        t0: float,
    ) -> Outcome:
        """A retry when the job class has one left for ``exc``, else a failure record."""
        plan = retry.plan(job_class, payload, fetched.queue, exc, time.time(), self.rng)
        if plan is not None:
            when = "now" if plan.due is None else f"in {plan.due - time.time():.1f} s"
            name = payload.class_name if payload else "?"
            log.warning("%s failed (%s), retry %d %s", name, type(exc).__name__, plan.attempt, when)
            return Outcome(plan.job_id, status_json(JobStatus.WAITING, t0), retry=plan)
        extra = retry.record_extra(job_class, payload)
        failure = Failure.from_exception(exc, fetched.raw, self.id, fetched.queue, **extra)
        log.warning("%s failed: %s: %s", failure.job_class, failure.exception, failure.error)
        if payload is not None and php_prefix(payload) is not None:
            return _outcome(payload, JobStatus.FAILED, t0, None, failure.to_json())
        return Outcome(failure.job_id, status_json(JobStatus.FAILED, t0), failure.to_json())

    def _wait_for_work(self) -> None:
        """Sleep until a push to one of our queues or ``poll_interval``; leave on stop()."""
        self._state = "waiting"
        self._title.wait()
        try:
            if not self._stop.is_set():
                self._wakeups.wait(self.poll_interval)
        finally:
            self._state = "busy"

    # -- registration, heartbeat, shutdown ----------------------------------------------
    def _register(self) -> None:
        """Claimed (no live worker has our id): put back what a dead previous process with
        our id left, release dead workers, then register and beat."""
        self._fetcher.release(self.id, time.time())
        prune_dead_workers(self.connection, self.keys, self.id, self.dead_after)
        self._presence.run_at = ""
        self._presence.beat()
        log.info("%s started on %s", self.id, ",".join(self.queues))

    def _beat(self) -> None:
        self._presence.beat()  # registers us again too: heals a wrong prune
        self._limits.beat()  # renews our slots' leases, frees dead holders' slots

    def _prune(self, scan: bool) -> None:
        prune_dead_workers(self._redis, self.keys, self.id, self.dead_after, scan)

    def _shutdown(self, old_handlers: dict[int, Any]) -> None:
        signals.restore(old_handlers)
        self._wakeups.close()
        try:
            # a second signal gives the job back on purpose: not a crash (see .crashes)
            requeued = self._fetcher.release(self.id, time.time(), crashed=self._signals < 2)
        except redis.RedisError as exc:
            log.warning(
                "%s: could not unregister (%s); a live worker will release it", self.id, exc
            )
            requeued = None
        if requeued:
            log.warning("%s: put its unfinished job back on its queue", self.id)
        log.info("%s stopped after %d jobs (%d failed)", self.id, self.processed, self.failed)

    # -- signals -----------------------------------------------------------------------
    def _install_signals(self) -> dict[int, Any]:
        return signals.install(self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        self._stop.set()
        if self._state == "waiting":
            raise _Interrupted
        if not signals.gives_back(signum, self._signals):
            log.info(
                "%s: %s, finishing the current job, then exiting", self.id, signals.name(signum)
            )
        elif self._state == "performing":
            raise _Abort
