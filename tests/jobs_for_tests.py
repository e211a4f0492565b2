"""Job classes the tests run, in-process and in worker subprocesses (``--import jobs_for_tests``).

Each records what it saw in Redis under ``labqueue-test:*`` keys, so a test can check a job
ran (and how often) whichever process ran it.
"""

from __future__ import annotations

import json
import time

import labqueue

DONE = "labqueue-test:done"
SEEN = "labqueue-test:seen"


@labqueue.job("Job\\Work\\TestJob", "Job::Work::TestJob")
class TestJob(labqueue.Job):
    """Records its args and positional args."""

    __test__ = False  # a job, not a pytest test class

    def perform(self) -> None:
        self.connection.rpush(
            SEEN, json.dumps({"args": self.args, "arg_list": self.arg_list, "id": self.job_id})
        )
        self.connection.rpush(DONE, self.job_id or "-")


@labqueue.job("Job::Work::FailingJob")
class FailingJob(labqueue.Job):
    """Fails like the Ruby vector: ArgumentError-like, with the customer id."""

    def perform(self) -> None:
        raise ValueError(f"no such customer: {self.args.get('customer_id')}")


@labqueue.job("tests.Record")
class Record(labqueue.Job):
    """Records its tag (args['tag'] or the first positional arg) in order of running."""

    def perform(self) -> None:
        tag = self.args.get("tag", self.arg_list[0] if self.arg_list else None)
        self.connection.rpush(DONE, str(tag))


@labqueue.job("tests.Slow")
class Slow(labqueue.Job):
    """Marks its start, sleeps args['seconds'], then records its tag."""

    def perform(self) -> None:
        self.connection.rpush("labqueue-test:started", str(self.args["tag"]))
        time.sleep(float(self.args["seconds"]))
        self.connection.rpush(DONE, str(self.args["tag"]))


@labqueue.job("tests.StatusProbe")
class StatusProbe(labqueue.Job):
    """Records the job's own status while it runs."""

    def perform(self) -> None:
        assert self.job_id is not None
        status = labqueue.get_status(self.connection, self.job_id).status
        self.connection.rpush(DONE, int(status))
