"""labqueue's side of the I/O round: the sleep job as a job class.

``labqueue worker --import bench.labqueue_io`` loads it (and nothing else of the bench).
"""

from __future__ import annotations

import labqueue

from . import sleepjob

SLEEP_NAME = "Bench\\Sleep"


@labqueue.job(SLEEP_NAME)
class Sleep(labqueue.Job):
    def perform(self) -> None:
        sleepjob.sleep(int(self.args["i"]), float(self.args["seconds"]))
