"""The worker: take a job, run it, record the outcome, repeat.

- Reliable fetch (see :mod:`labqueue.reliable`): the job sits in this worker's in-progress
  hash while it runs; finishing one job and fetching the next is one round trip.
- Idle, it sleeps on pub/sub: labqueue's enqueue publishes a wake-up, and keyspace
  notifications (on for the embedded server) wake it for jobs Resque or php-resque push;
  with neither, it polls every ``poll_interval`` seconds.
- Registers in ``resque:workers``, beats ``resque:workers:heartbeat`` from a thread, shows
  ``resque:worker:ID`` while busy, and releases dead workers' jobs when it starts.
- TERM, INT or QUIT: finish the current job, then exit. A second TERM or INT: put the
  current job back at the head of its queue and exit at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

import redis

from . import timefmt
from .errors import ConfigurationError
from .failures import Failure
from .jobs import Registry, registry
from .keys import DEFAULT_NAMESPACE, Keys
from .liveness import DEAD_AFTER, prune_dead_workers
from .payload import Payload, check_queue_name
from .reliable import Fetched, ReliableFetch, WorkerSteps
from .status import FINISHED_TTL, JobStatus, status_json

log = logging.getLogger("labqueue.worker")


class _Interrupted(BaseException):
    """Raised by the signal handler to leave an idle wait at once."""


class _Abort(BaseException):
    """Raised by the second signal inside ``perform``: give the job back and exit."""


@dataclass
class Outcome:
    """What FINISH records for one job."""

    job_id: str | None
    status: str
    failure: str = ""


def parse_queues(queues: str | Sequence[str]) -> list[str]:
    """``"high,default"`` or ``["high", "default"]`` -> names in priority order; ``*`` alone."""
    names = [q.strip() for q in queues.split(",")] if isinstance(queues, str) else list(queues)
    if names == ["*"]:
        return names
    if not names:
        raise ConfigurationError("a worker needs at least one queue (or '*' for all)")
    return [check_queue_name(n) for n in names]


class Worker:
    """Runs jobs from ``queues`` (priority order) until stopped, or until empty with burst."""

    def __init__(
        self,
        queues: str | Sequence[str] = "*",
        connection: Any = None,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        registry: Registry = registry,
        poll_interval: float = 1.0,
        heartbeat_interval: float = 5.0,
        dead_after: float = DEAD_AFTER,
    ) -> None:
        if connection is None:
            from .server import connect

            connection = connect()
        self.queues = parse_queues(queues)
        self.connection = connection
        self.keys = Keys(namespace)
        self.registry = registry
        self.poll_interval = poll_interval
        self.heartbeat_interval = heartbeat_interval
        self.dead_after = dead_after
        self.hostname = socket.gethostname()
        self.processed = 0
        self.failed = 0
        self._fetcher = ReliableFetch(connection, self.keys)
        self._stop = threading.Event()
        self._signals = 0
        self._state = "starting"
        self._pubsub: Any = None
        self._steps: WorkerSteps | None = None  # STEP_LUA's arguments for this process's id
        self._steps_for = 0

    @property
    def id(self) -> str:
        return f"{self.hostname}:{os.getpid()}:{','.join(self.queues)}"

    def __repr__(self) -> str:
        return f"Worker({self.id!r})"

    # -- the loop ----------------------------------------------------------------------
    def work(self, burst: bool = False) -> int:
        """Process jobs until stopped (or, with ``burst``, until the queues are empty).

        Returns how many jobs ran (succeeded or failed).
        """
        self._stop.clear()
        old_handlers = self._install_signals()
        beat = threading.Thread(target=self._heartbeat_loop, name="labqueue-heartbeat", daemon=True)
        try:
            self._register()
            beat.start()
            self._loop(burst)
        except _Interrupted:
            pass
        except _Abort:
            log.warning("%s: second signal, putting the current job back on its queue", self.id)
        finally:
            self._stop.set()
            self._shutdown(old_handlers)
        return self.processed + self.failed

    def stop(self) -> None:
        """Ask the worker to finish its current job and return (safe from any thread)."""
        self._stop.set()
        with contextlib.suppress(redis.RedisError):
            self.connection.publish(self.keys.wakeup_channel, "")

    def _loop(self, burst: bool) -> None:
        pending: Outcome | None = None
        while not self._stop.is_set():
            fetched = self._finish_and_fetch(pending)
            pending = None
            if fetched is None:
                if burst:
                    return
                self._wait_for_work()
                continue
            pending = self._perform(fetched)
        if pending is not None:
            self._finish_and_fetch(pending, fetch=False)

    def _finish_and_fetch(self, done: Outcome | None, fetch: bool = True) -> Fetched | None:
        """Record ``done`` (if any) and take the next job: one script call, one round trip."""
        now = time.time()
        if self._steps is None or self._steps_for != os.getpid():
            self._steps = self._fetcher.bind(self.id, self.queues, FINISHED_TTL)
            self._steps_for = os.getpid()
        job = None if done is None else (done.job_id, done.status, done.failure)
        reply = self._steps.step(job, now, timefmt.run_at(now), fetch)
        return ReliableFetch.parse(reply) if fetch else None

    def _perform(self, fetched: Fetched) -> Outcome:
        started = time.time()
        payload: Payload | None = None
        self._state = "performing"
        try:
            payload = Payload.from_json(fetched.raw)
            job_class = self.registry.resolve(payload.class_name)
            job_class(payload, fetched.queue, self.connection).perform()
        except Exception as exc:
            self.failed += 1
            failure = Failure.from_exception(exc, fetched.raw, self.id, fetched.queue)
            log.warning("%s failed: %s: %s", failure.job_class, failure.exception, exc)
            return Outcome(
                failure.job_id, status_json(JobStatus.FAILED, started), failure.to_json()
            )
        finally:
            self._state = "busy"
        self.processed += 1
        return Outcome(payload.id, status_json(JobStatus.COMPLETE, started))

    def _wait_for_work(self) -> None:
        """Sleep until a wake-up message or ``poll_interval``; leave early on stop()."""
        if self._pubsub is None:
            self._pubsub = self._subscribe()
        self._state = "waiting"
        try:
            if self._stop.is_set():
                return
            message = self._pubsub.get_message(timeout=self.poll_interval)
            while message is not None:  # drain wake-ups that piled up while busy
                message = self._pubsub.get_message(timeout=0.0)
        finally:
            self._state = "busy"

    def _subscribe(self) -> Any:
        pubsub = self.connection.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(self.keys.wakeup_channel)
        db = int(self.connection.connection_pool.connection_kwargs.get("db", 0))
        pubsub.psubscribe(self.keys.keyspace_pattern(db))
        return pubsub

    # -- registration, heartbeat, shutdown ----------------------------------------------
    def _register(self) -> None:
        now = time.time()
        self._fetcher.release(self.id, now)  # a previous process with our id left a job
        prune_dead_workers(self.connection, self.keys, self.id, self.dead_after)
        with self.connection.pipeline() as pipe:
            pipe.sadd(self.keys.workers, self.id)
            pipe.set(self.keys.worker_started(self.id), timefmt.started(now))
            pipe.hset(self.keys.heartbeat, self.id, timefmt.heartbeat(now))
            pipe.execute()
        log.info("%s started on %s", self.id, ",".join(self.queues))

    def _heartbeat_loop(self) -> None:
        beats = 0
        while not self._stop.wait(self.heartbeat_interval):
            beats += 1
            try:
                self.connection.hset(self.keys.heartbeat, self.id, timefmt.heartbeat())
                if beats % 6 == 0:
                    prune_dead_workers(self.connection, self.keys, self.id, self.dead_after)
            except redis.RedisError as exc:
                log.warning("%s: heartbeat failed: %s", self.id, exc)

    def _shutdown(self, old_handlers: dict[int, Any]) -> None:
        for signum, handler in old_handlers.items():
            signal.signal(signum, handler)
        if self._pubsub is not None:
            self._pubsub.close()
        requeued = self._fetcher.release(self.id, time.time())
        if requeued:
            log.warning("%s: put its unfinished job back on its queue", self.id)
        log.info(
            "%s stopped after %d jobs (%d failed)",
            self.id,
            self.processed + self.failed,
            self.failed,
        )

    # -- signals -----------------------------------------------------------------------
    def _install_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        old = {}
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            old[signum] = signal.signal(signum, self._on_signal)
        return old

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        self._stop.set()
        if self._state == "waiting":
            raise _Interrupted
        if self._signals == 1 or signum == signal.SIGQUIT:
            log.info(
                "%s: %s, finishing the current job, then exiting",
                self.id,
                signal.Signals(signum).name,
            )
        elif self._state == "performing":
            raise _Abort
