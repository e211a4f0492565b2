"""Jobs for the fault tests, in-process and in worker subprocesses (``--import fault_jobs``).

Each records what happened under ``labqueue-test:faults:*`` keys, so a test can tell which
jobs ran, how often and when, whichever process ran them.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time

import labqueue

DONE = "labqueue-test:faults:done"  #: job ids, one per completed run
TRIES = "labqueue-test:faults:tries"  #: "id attempt epoch" per run of a retrying job
RAN_AT = "labqueue-test:faults:ran-at"  #: "id epoch" per run of a delayed job
LEAK: list[bytes] = []


@labqueue.job("Faults::Mark")
class Mark(labqueue.Job):
    """Works ``ms`` milliseconds, then records its id."""

    def perform(self) -> None:
        time.sleep(float(self.args.get("ms", 0)) / 1000)
        self.connection.rpush(DONE, self.job_id or "-")


@labqueue.job("Faults::MarkManyLives")
class MarkManyLives(Mark):
    """Mark for chaos with threads: a SIGKILL takes a process's 8 jobs at once, so a healthy
    job may meet three kills in a run, and the poison rule (crash_limit 3) would fail it by
    design (see labqueue.worker.crashes)."""

    crash_limit = 1000


@labqueue.job("Faults::MarkRetrying")
class MarkRetrying(Mark):
    """Mark, retried (soon) when Redis is away while it records."""

    retry_limit = 50
    retry_backoff = (0.2, 0.5, 1.0)


@labqueue.job("Faults::When")
class When(labqueue.Job):
    """Records when it ran (for the delayed-job timing test)."""

    def perform(self) -> None:
        self.connection.rpush(RAN_AT, f"{self.job_id} {time.time()!r}")


@labqueue.job("Faults::Flaky")
class Flaky(labqueue.Job):
    """Records each run; fails until its run number reaches ``succeed_on`` (0: never)."""

    retry_limit = 2
    retry_backoff = (1.0, 2.0)
    retry_jitter = None  # the exact schedule: the timing tests measure it

    def perform(self) -> None:
        attempt = int(self.payload.extra.get("attempts", 0)) + 1
        self.connection.rpush(TRIES, f"{self.job_id} {attempt} {time.time()!r}")
        succeed_on = int(self.args.get("succeed_on", 0))
        if not succeed_on or attempt < succeed_on:
            raise ConnectionError(f"the ERP is down (run {attempt})")
        self.connection.rpush(DONE, self.job_id or "-")


@labqueue.job("Faults::Picky")
class Picky(labqueue.Job):
    """Retries ConnectionError only; a ValueError fails at once."""

    retry_limit = 3
    retry_backoff = (0,)
    retry_on = (ConnectionError,)

    def perform(self) -> None:
        self.connection.rpush(TRIES, f"{self.job_id} picky")
        raise ValueError("bad order data: no retry helps")


@labqueue.job("Faults::Sleepy")
class Sleepy(labqueue.Job):
    """Sleeps ``seconds`` (default 30) under a 0.5 s limit."""

    timeout = 0.5

    def perform(self) -> None:
        self.connection.rpush("labqueue-test:faults:started", self.job_id or "-")
        time.sleep(float(self.args.get("seconds", 30)))
        self.connection.rpush(DONE, self.job_id or "-")


@labqueue.job("Faults::Spin")
class Spin(labqueue.Job):
    """Busy-loops in Python (no sleep) until stopped; catches Exception, not the limit."""

    timeout = 0.5

    def perform(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                sum(range(1000))


@labqueue.job("Faults::Exit")
class Exit(labqueue.Job):
    def perform(self) -> None:
        os._exit(3)


@labqueue.job("Faults::SysExit")
class SysExit(labqueue.Job):
    def perform(self) -> None:
        sys.exit(4)


@labqueue.job("Faults::Segfault")
class Segfault(labqueue.Job):
    def perform(self) -> None:
        ctypes.string_at(0)


@labqueue.job("Faults::Leak")
class Leak(labqueue.Job):
    """Keeps 20 MB in a module list each run; records how many it sees (1 if isolated)."""

    def perform(self) -> None:
        LEAK.append(bytes(20 * 1024 * 1024))
        self.connection.rpush("labqueue-test:faults:leak", len(LEAK))


@labqueue.job("Faults::Raises")
class Raises(labqueue.Job):
    def perform(self) -> None:
        raise KeyError("order 42")


class _Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str for you")


@labqueue.job("Faults::Unprintable")
class Unprintable(labqueue.Job):
    def perform(self) -> None:
        raise _Unprintable


POISONED = "labqueue-test:faults:poisoned"  #: one "id pid" per run of a Poison job


@labqueue.job("Faults::Poison")
class Poison(labqueue.Job):
    """Records its run, then SIGKILLs the worker running it (as the OOM killer would)."""

    def perform(self) -> None:
        self.connection.rpush(POISONED, f"{self.job_id} {os.getpid()}")
        os.kill(os.getpid(), signal.SIGKILL)
