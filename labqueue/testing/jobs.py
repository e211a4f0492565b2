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
    """Sleeps ``args['seconds']``, recording its start and its end (the job, the host, the
    time) in the list ``args['log']``: how often a job ran, where and when survives the
    worker that ran it. On the host named ``args['fail_on']`` (if any) it then raises."""

    def perform(self) -> None:
        assert self.connection is not None
        host = socket.gethostname()
        self._record(host, "start")
        time.sleep(float(self.args["seconds"]))
        self._record(host, "end")
        if host == self.args.get("fail_on"):
            raise RuntimeError(f"Nap fails on {host}, as asked")

    def _record(self, host: str, event: str) -> None:
        record = {"id": self.job_id, "host": host, "event": event, "at": time.time()}
        self.connection.rpush(self.args["log"], json.dumps(record))  # type: ignore[union-attr]
