"""``labqueue worker --threads N``: N workers in one process, for jobs that wait on I/O.

Each thread is a worker as Resque tools see it: its own id ``host:pid:queues:tK`` (K = 1..N,
see :class:`~labqueue.keys.WorkerId`), its registration, start time, heartbeat field,
labqueue record, busy record while it runs a job, reliable in-progress hash and per-worker
counters. Each thread takes its jobs with its own STEP: one round trip per job.

Shared by the process, once each:

- one heartbeat thread: one TIME, then the N BEATs in one pipeline (one round trip), then
  one prune of dead workers;
- one delayed mover;
- one subscription (:class:`Gate`): a subscriber thread listens for pushes to our queues
  and wakes one idle thread per push it hears (or per poll interval when it hears none); a
  thread that finds a job on waking wakes the next idle one, so a burst fans out, and an
  idle process looks at its queues once per poll interval, not once per thread.

Signals (main thread): the first TERM, INT or QUIT lets every thread finish its job and
fetch no other; then every id is unregistered. A second TERM or INT puts every thread's job
back at the head of its queue (not counted as a crash) and returns at once: a thread still
inside ``perform`` stops at its next step without recording or fetching anything (each
thread's step runs under its own lock, which the give-back takes). A SIGKILL leaves N
in-progress hashes; whoever finds the process gone (a live worker's prune, the supervisor)
releases each id and puts its job back.

Time limits: a thread cannot be killed. A job over its limit (``--timeout``,
``Job.timeout``) gets an exception raised into its thread, which interrupts Python code but
not a blocking C call (a socket read without a timeout of its own); the worker says so once
at start. ``fork`` with threads is refused (:func:`.options.check_threads`).
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING, Any

import redis

from ..delayed import DelayedMover
from ..scripts import BEAT
from . import signals
from .liveness import labqueue_dead, prune_dead_workers
from .presence import Presence, Title
from .reliable import Fetched
from .wakeups import Wakeups

if TYPE_CHECKING:
    from .loop import Worker
    from .outcome import Outcome

log = logging.getLogger("labqueue.worker")

#: Connections a thread pool's process may hold beside one per thread: the heartbeat, the
#: subscriber, the delayed mover, a prune, a job's second client call.
SPARE_CONNECTIONS = 8

#: An idle thread that hears nothing looks at its queues after this long anyway (seconds):
#: a safety net should the subscriber thread stop; wake-ups and the poll tick come sooner.
IDLE_SAFETY = 60.0

#: How long the give-back waits for a thread to finish a step it is in (seconds).
STEP_WAIT = 5.0


class Gate:
    """The process's one subscription, and its idle threads waiting on it."""

    def __init__(self, wakeups: Wakeups, stop: threading.Event, poll: float) -> None:
        self.wakeups = wakeups
        self.stop = stop
        self.poll = poll
        self.seq = 0  #: wake-ups heard so far (a thread that missed one looks again at once)
        self.closed = False  #: the pool is done: the subscriber leaves at its next wake
        self._idle = 0  # threads asleep
        self._tokens = 0  # wake-ups given and not yet taken
        self._cond = threading.Condition()

    def listen(self, on_error: Any) -> None:
        """The subscriber thread: a wake-up per push heard (or poll interval), until stop."""
        try:
            while not (self.stop.is_set() or self.closed):
                try:
                    self.wakeups.wait(self.poll)
                except Exception as exc:  # Wakeups rides out Redis' own errors; anything else:
                    on_error(exc)  # said, then a poll interval as if no push came
                    self.stop.wait(self.poll)
                self.wake(heard=True)
        finally:
            self.wakeups.close()
            self.open()

    def wake(self, heard: bool = False) -> None:
        """Wake one idle thread, if any sleeps; ``heard``: a push (or a poll tick) came."""
        with self._cond:
            if heard:
                self.seq += 1
            if self._tokens < self._idle:
                self._tokens += 1
                self._cond.notify()

    def open(self) -> None:
        """Wake every idle thread (the process is stopping)."""
        with self._cond:
            self._cond.notify_all()

    def sleep(self, seen: int) -> int:
        """Sleep until woken, unless a wake-up came since ``seen``; returns the count now."""
        with self._cond:
            if self.seq == seen and not self.stop.is_set():
                self._idle += 1
                try:
                    self._cond.wait_for(lambda: self._tokens > 0 or self.stop.is_set(), IDLE_SAFETY)
                    self._tokens = max(0, self._tokens - 1)
                finally:
                    self._idle -= 1
            return self.seq


class _Waiter:
    """One thread's side of the :class:`Gate`, in the shape the worker loop expects of
    :class:`.Wakeups`."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.seen = gate.seq  # before the thread's first look at its queues

    def wait(self, timeout: float) -> None:
        self.seen = self.gate.sleep(self.seen)

    def found(self) -> None:
        self.gate.wake()  # there may be more: the next idle thread looks too

    def drain(self) -> None:
        """Nothing to drain: the subscriber thread reads every notification."""

    def close(self) -> None:
        """The subscription is the process's (:meth:`Gate.listen` closes it)."""


class _ThreadTitle:
    """A thread's view of the process title: the pool counts busy threads and shows it."""

    def __init__(self, pool: ThreadPool) -> None:
        self.pool = pool

    def processing(self, queue: str, since: float, job_class: str) -> None:
        self.pool.show_title()

    def wait(self) -> None:
        self.pool.show_title()


def make_room(client: redis.Redis, wanted: int) -> None:
    """Let ``client``'s pool open ``wanted`` connections at once: redis-py 8 caps a pool at
    100 by default, and past its cap a command raises MaxConnectionsError ("Too many
    connections"), which a worker would read as an outage and a job as its failure. Only
    raised, never lowered; a BlockingConnectionPool (which waits for a free connection
    instead of raising) is left as its owner sized it."""
    pool = client.connection_pool
    blocking = isinstance(pool, redis.BlockingConnectionPool)
    cap = getattr(pool, "max_connections", None)
    if not blocking and isinstance(cap, int) and cap < wanted:
        pool.max_connections = wanted


def _member(worker: Worker, k: int, pool: ThreadPool) -> Any:
    """Worker thread ``k`` of ``worker``'s process: a copy with its own id, state, presence
    and step lock, sharing the process's connections, stop event, executor and side
    threads' error reporting."""
    member: Any = copy.copy(worker)
    member.__dict__.pop("_perform", None)  # job events: wrapped again below, with this id
    member.thread, member.lock = k, threading.Lock()
    member.processed = member.failed = member._signals = 0
    member._state, member._steps, member._steps_for = "starting", None, 0
    member._wakeups = _Waiter(pool.gate)
    member._title = _ThreadTitle(pool)
    member._presence = Presence(member._redis, member.keys, member.id, member.heartbeat_interval)
    if member._events is not None:
        member._perform = member._events.wrap(member._perform, lambda: member.id)
    step = member._step

    def locked_step(done: Outcome | None, fetch: bool = True) -> Fetched | None:
        with member.lock:
            if pool.gave_back:  # our job is back on its queue: record nothing, fetch nothing
                raise signals.Abort
            result: Fetched | None = step(done, fetch)
            return result

    member._step = locked_step
    return member


class ThreadPool:
    """Runs ``worker.threads`` worker threads in this process (see the module doc)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.stop = worker._stop
        for client in (worker.connection, worker._redis):
            make_room(client, worker.threads + SPARE_CONNECTIONS)
        own = worker._wakeups  # the process's subscription: one per run of the pool
        wakeups = Wakeups(own.connection, own.keys, own.queues, own.db, self.stop)
        self.gate = Gate(wakeups, self.stop, worker.poll_interval)
        self.gave_back = False  #: a second signal put every thread's job back
        self.giving_back = False
        self.signals = 0
        self.error: BaseException | None = None
        self.members = [_member(worker, k, self) for k in range(1, worker.threads + 1)]
        self.title = Title(worker.queues, worker.proctitle)
        self._title_lock = threading.Lock()

    @property
    def busy(self) -> int:
        """Threads running a job now."""
        return sum(m._state == "performing" for m in self.members)

    def show_title(self) -> None:
        with self._title_lock:
            self.title.threads(self.busy, len(self.members))

    # -- the process's life ------------------------------------------------------------
    def work(self, burst: bool) -> int:
        """Run every thread until stopped (or, with ``burst``, until each finds nothing)."""
        w = self.worker
        self.stop.clear()
        self.show_title()  # before registering: a Resque worker starting now must see it
        try:
            self._claim()
        except BaseException:
            self.title.restore()
            raise
        old = signals.install(self._on_signal)
        w._outage.who = self.gate.wakeups.who = w.id
        beat = w._sides.heartbeat(self.stop, w.heartbeat_interval, self._beat, self._prune)
        try:
            self._register()
            beat.start()
            self._start_side_threads()
            self._run_threads(burst)
        finally:
            self.stop.set()
            self.gate.closed = True
            self.gate.open()
            if beat.is_alive():  # no beat may register us again after we let go
                beat.join(max(5.0, w.heartbeat_interval))
            self._shutdown(old)
            self.title.restore()
        w.processed = sum(m.processed for m in self.members)
        w.failed = sum(m.failed for m in self.members)
        if self.error is not None:
            raise self.error
        return w.processed

    def _claim(self) -> None:
        """Take every thread's id (ConfigurationError, the taken ones let go, if a live
        labqueue worker holds one)."""
        w, claimed = self.worker, []
        try:
            for m in self.members:
                m._presence.claim(
                    lambda rec, now, wid=m.id: labqueue_dead(wid, rec, now, w.dead_after)
                )
                claimed.append(m)
        except BaseException:
            for m in claimed:  # a job its id still holds is a dead process's: back it goes
                m._fetcher.release(m.id, time.time())
            raise

    def _register(self) -> None:
        """Put back what a dead process with our ids left, release dead workers (once for
        the process), then register and beat every id."""
        w = self.worker
        for m in self.members:
            m._fetcher.release(m.id, time.time())
        prune_dead_workers(w.connection, w.keys, self.members[0].id, w.dead_after)
        self._beat()
        log.info("%s started %d threads on %s", w.id, len(self.members), ",".join(w.queues))
        if w._executor.default_timeout is not None:
            log.warning(
                "%s: --timeout with --threads: a job over its limit gets an exception raised "
                "into its thread, which cannot interrupt a blocking C call (give such calls "
                "their own timeouts, or use --fork --concurrency N for hard limits)",
                w.id,
            )

    def _start_side_threads(self) -> None:
        w = self.worker
        listen = threading.Thread(
            target=self.gate.listen, args=(w._sides.error,), name="labqueue-wakeups", daemon=True
        )
        listen.start()
        if w.scheduler_interval:
            mover = DelayedMover(w._redis, w.keys, self.stop, w._sides.error)
            mover.max_pause, mover.who = w.scheduler_interval, w.id
            mover.start()

    def _beat(self) -> None:
        """Every id's BEAT in one pipeline, on one reading of Redis' clock."""
        now = self.members[0]._presence.now()
        try:
            with self.worker._redis.pipeline(transaction=False) as pipe:
                for m in self.members:
                    BEAT.queue(pipe, *m._presence.beat_call(now))
                pipe.execute()
        except redis.ResponseError:  # a key of the wrong type: each alone, as one worker's
            for m in self.members:
                m._presence.beat()
        self.worker._limits.beat()  # every thread's slots: one round trip for the process

    def _prune(self, scan: bool) -> None:
        w = self.worker
        prune_dead_workers(w._redis, w.keys, self.members[0].id, w.dead_after, scan)

    # -- the threads -------------------------------------------------------------------
    def _run_threads(self, burst: bool) -> None:
        threads = [
            threading.Thread(
                target=self._run, args=(m, burst), name=f"labqueue-t{m.thread}", daemon=True
            )
            for m in self.members
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.1)
                if self.stop.is_set():
                    self.gate.open()
                if self.giving_back:
                    self._give_back()
                    return

    def _run(self, member: Any, burst: bool) -> None:
        try:
            member._loop(burst)
        except (signals.Interrupted, signals.Abort):
            pass
        except BaseException as exc:  # one thread's failure stops the process, as one worker's
            if self.error is None:
                self.error = exc
            log.error("%s: stopped by %s: %s", member.id, type(exc).__name__, exc)
            self.stop.set()
            self.gate.open()

    def _give_back(self) -> None:
        """No thread records or fetches from now on: each thread's lock is taken once
        after ``gave_back`` is set (a step under way finishes first)."""
        self.gave_back = True
        for m in self.members:
            if m.lock.acquire(timeout=STEP_WAIT):
                m.lock.release()
            else:
                log.warning("%s: still in a step after %g s; releasing it anyway", m.id, STEP_WAIT)

    def _shutdown(self, old: dict[int, Any]) -> None:
        signals.restore(old)
        w, back = self.worker, 0
        for m in self.members:
            try:
                back += bool(m._fetcher.release(m.id, time.time(), crashed=not self.gave_back))
            except redis.RedisError as exc:
                log.warning("%s: could not unregister (%s); a live worker will", m.id, exc)
        if back:
            log.warning("%s: put %d unfinished jobs back on their queues", w.id, back)
        done, failed = sum(m.processed for m in self.members), sum(m.failed for m in self.members)
        log.info("%s stopped after %d jobs (%d failed)", w.id, done, failed)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals += 1
        self.stop.set()
        if signals.gives_back(signum, self.signals):
            self.giving_back = True
            log.warning(  # the count: in _shutdown, once every thread has let go
                "%s: second signal, putting the jobs still running back on their queues",
                self.worker.id,
            )
        else:
            log.info(
                "%s: %s, finishing the %d current jobs, then exiting",
                self.worker.id,
                signals.name(signum),
                self.busy,
            )
