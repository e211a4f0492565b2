"""Jobs for the hardening tests (issue 15), in-process and in worker subprocesses
(``--import hard_jobs``): jobs that raise what ``except Exception`` does not catch."""

from __future__ import annotations

import asyncio
import time

import labqueue

DONE = "labqueue-test:hard:done"  #: job ids, one per completed run


class Halt(BaseException):
    """A BaseException of the job's own (as some libraries define for cancellation)."""


@labqueue.job("Hard::Done")
class Done(labqueue.Job):
    """Records its id."""

    def perform(self) -> None:
        self.connection.rpush(DONE, self.job_id or "-")


@labqueue.job("Hard::Cancelled")
class Cancelled(labqueue.Job):
    def perform(self) -> None:
        raise asyncio.CancelledError("the job's task was cancelled")


@labqueue.job("Hard::Halted")
class Halted(labqueue.Job):
    def perform(self) -> None:
        raise Halt("a BaseException of the job's own")


@labqueue.job("Hard::GenExit")
class GenExit(labqueue.Job):
    def perform(self) -> None:
        raise GeneratorExit("closed")


@labqueue.job("Hard::Interrupted")
class Interrupted(labqueue.Job):
    def perform(self) -> None:
        raise KeyboardInterrupt


#: The BaseException jobs and the exception name each leaves in its failure record.
BASE_EXCEPTION_JOBS = {
    Cancelled: "CancelledError",
    Halted: "Halt",
    GenExit: "GeneratorExit",
}


@labqueue.job("Hard::FailsOnce")
class FailsOnce(labqueue.Job):
    """Fails its first run (retried at once), then records its id."""

    retry_limit = 1
    retry_backoff = (0,)

    def perform(self) -> None:
        if self.connection.incr(f"labqueue-test:hard:tries:{self.job_id}") == 1:
            raise ConnectionError("first run fails")
        self.connection.rpush(DONE, self.job_id or "-")


@labqueue.job("Hard::Clobber")
class Clobber(labqueue.Job):
    """Writes a value of the wrong type at ``key`` while it runs (``kind``: a hash, a list,
    a set, or a string ``text``; key ``@status``: its own status key), then records its id,
    or fails when ``fail`` is set: the step that records its outcome meets the bad key."""

    def perform(self) -> None:
        key, kind = self.args["key"], self.args["kind"]
        key = labqueue.Keys().status(self.job_id or "-") if key == "@status" else key
        self.connection.delete(key)
        if kind == "hash":
            self.connection.hset(key, "not", "a counter")
        elif kind == "list":
            self.connection.rpush(key, "not", "this")
        elif kind == "set":
            self.connection.sadd(key, "not this")
        else:
            self.connection.set(key, self.args["text"])
        if self.args.get("fail"):
            raise ValueError("failed after clobbering")
        if kind == "stall":  # a string, then long enough for side threads to meet it
            time.sleep(0.3)
        self.connection.rpush(DONE, self.job_id or "-")


@labqueue.job("Hard::Noise")
class Noise(labqueue.Job):
    """Does nothing: a registered class the garbage may name (it must not count as done)."""

    def perform(self) -> None:
        pass
