"""The peers, on the same server with the same no-op job: huey and RQ.

- huey: ``RedisHuey`` (blocking fetch), its own consumer with one worker thread.
- RQ: ``SimpleWorker`` (runs jobs in its own process, no fork per job).

Driven like labqueue (bench.common.System): one enqueue call per job; a worker process
(bench.peer_worker), warmed up with one job, drains jobs staged on a side list and RENAMEd
onto its queue at once; probe jobs give the idle latency.
"""

from __future__ import annotations

import time
from typing import Any

import redis
import rq
from huey import RedisHuey

from . import jobs
from .common import (
    BENCH_QUEUE,
    Context,
    System,
    Workers,
    python_module,
    wait_until,
)
from .names import HUEY_STAGING, RQ_STAGING


def huey_app(url: str, queue_key: str | None = None) -> tuple[RedisHuey, dict[str, Any]]:
    """The huey instance and its two tasks; ``queue_key`` sends enqueued tasks elsewhere."""
    huey = RedisHuey(BENCH_QUEUE, url=url)
    tasks = {
        "noop": huey.task(name="bench.noop")(jobs.noop),
        "probe": huey.task(name="bench.probe")(jobs.probe),
    }
    if queue_key is not None:
        huey.storage.queue_key = queue_key
    return huey, tasks


class Huey(System):
    name = "huey"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.huey, self.tasks = huey_app(ctx.url)
        self.staging, self.staged = huey_app(ctx.url, HUEY_STAGING)
        self.queue_key = self.huey.storage.queue_key

    def enqueue(self, i: int) -> None:
        self.tasks["noop"](n=i)

    def worker_commands(self, count: int) -> list[list[str]]:
        return [python_module("bench.peer_worker", "huey", "--url", self.ctx.url)] * count

    def ready(self, workers: Workers, count: int = 1) -> None:
        self.tasks["noop"](n=-1)
        wait_until(self.done, "huey to start", workers, self.ctx.timeout)
        time.sleep(0.05)  # the popped warm-up job runs

    def stage(self, n: int) -> None:
        for i in range(n):
            self.staged["noop"](n=i)

    def release(self) -> None:
        self.ctx.r.rename(HUEY_STAGING, self.queue_key)

    def done(self) -> bool:
        # huey keeps no count of run jobs: empty means the last one was taken (a no-op ends
        # microseconds later)
        return int(self.ctx.r.llen(self.queue_key)) == 0

    def probe(self) -> None:
        self.tasks["probe"]()

    def close(self) -> None:
        for app in (self.huey, self.staging):
            app.storage.conn.connection_pool.disconnect()


class _StagingQueue(rq.Queue):
    """RQ jobs of queue ``bench`` pushed to a side list, to be RENAMEd onto the queue."""

    @property
    def key(self) -> str:
        return RQ_STAGING


class RQ(System):
    name = "rq"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.jobs = ctx.rq_jobs
        self.conn = redis.Redis.from_url(ctx.url)  # RQ wants bytes, not decoded replies
        self.queue = rq.Queue(BENCH_QUEUE, connection=self.conn)
        self.finished = self.queue.finished_job_registry.key
        self._target = 0

    def enqueue(self, i: int) -> None:
        self.queue.enqueue(jobs.noop, n=i)

    def worker_commands(self, count: int) -> list[list[str]]:
        return [python_module("bench.peer_worker", "rq", "--url", self.ctx.url)] * count

    def _finished(self) -> int:
        return int(self.conn.zcard(self.finished))

    def ready(self, workers: Workers, count: int = 1) -> None:
        self._target = self._finished() + count
        for _ in range(count):
            self.queue.enqueue(jobs.noop, n=-1)
        wait_until(self.done, "RQ to start", workers, self.ctx.timeout)

    def stage(self, n: int) -> None:
        self._target = self._finished() + n
        staging = _StagingQueue(BENCH_QUEUE, connection=self.conn)
        for i in range(n):
            staging.enqueue(jobs.noop, n=i)

    def release(self) -> None:
        self.conn.rename(RQ_STAGING, self.queue.key)

    def done(self) -> bool:
        return self._finished() >= self._target

    def probe(self) -> None:
        self.queue.enqueue(jobs.probe)

    def close(self) -> None:
        self.conn.close()
