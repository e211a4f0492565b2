"""Job classes for the multi-host tests and notebook 7 (``--import labqueue.testing.jobs``)."""

from __future__ import annotations

import json
import socket
import time

from ..jobs import Job, job


@job("labqueue.testing.Tick")
class Tick(Job):
    """Does nothing, or sleeps ``args['seconds']``: a job whose cost is only the queue's."""

    def perform(self) -> None:
        time.sleep(float(self.args.get("seconds", 0)))


@job("labqueue.testing.Nap")
class Nap(Job):
    """Sleeps ``args['seconds']`` and records each run (the host that ran it, when) in the
    list ``args['log']``: how often a job ran, and where, survives the worker that ran it.
    On the host named ``args['fail_on']`` (if any) it then raises."""

    def perform(self) -> None:
        started = time.time()
        time.sleep(float(self.args["seconds"]))
        assert self.connection is not None
        host = socket.gethostname()
        record = {"id": self.job_id, "host": host, "start": started}
        self.connection.rpush(self.args["log"], json.dumps(record))
        if host == self.args.get("fail_on"):
            raise RuntimeError(f"Nap fails on {host}, as asked")
