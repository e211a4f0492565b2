"""A module whose job class has a limit no worker can honour (``max_concurrency=0``): the
worker that imports it must refuse to start, in one line."""

from __future__ import annotations

import labqueue


@labqueue.job("tests.limits.Zero", max_concurrency=0)
class Zero(labqueue.Job):
    def perform(self) -> None:
        pass
