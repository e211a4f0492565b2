"""labqueue as the rounds drive it: enqueue, ``labqueue worker`` processes, drains, probes.

Workers are real processes (``python -m labqueue worker``), started idle, warmed up with a
job each. A drain starts when its staged jobs are RENAMEd onto the queue and a wake-up is
published (one MULTI), and ends when ``stat:processed`` counts them all (failed ones count
there too, as in Resque, and :meth:`Labqueue.check` then fails the round): process start-up
is not drain time. ``enqueue_many`` is timed in :func:`bench.rounds.bulk_round`.
"""

from __future__ import annotations

import time
from typing import Any

from labqueue import Queue
from labqueue.keys import Keys
from labqueue.procs import worker_command

from .common import (
    BENCH_QUEUE,
    STAGING_QUEUE,
    BenchError,
    Context,
    System,
    Workers,
    wait_until,
)
from .jobs import Noop, Probe

KEYS = Keys()


class Labqueue(System):
    name = "labqueue"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self.queue = Queue(BENCH_QUEUE, ctx.r)
        self._target = 0
        self._failed = 0

    def enqueue(self, i: int) -> None:
        self.queue.enqueue(Noop, n=i)

    def enqueue_many(self, items: list[dict[str, Any]]) -> None:
        self.queue.enqueue_many(Noop, items)

    def worker_commands(self, count: int) -> list[list[str]]:
        command = worker_command(queues=BENCH_QUEUE, imports=["bench.jobs"], url=self.ctx.url)
        return [command] * count

    def _counter(self, name: str) -> int:
        return int(self.ctx.r.get(KEYS.stat(name)) or 0)

    def ready(self, workers: Workers, count: int = 1) -> None:
        r = self.ctx.r

        def listening() -> bool:
            return int(r.pubsub_numsub(KEYS.wakeup_channel)[0][1]) >= count

        wait_until(listening, f"{count} labqueue worker(s) to start", workers, self.ctx.timeout)
        target = self._counter("processed") + count

        def warmed_up() -> bool:
            return self._counter("processed") >= target

        self.queue.enqueue_many(Noop, [{"n": -1}] * count)
        wait_until(warmed_up, "labqueue's warm-up jobs", workers, self.ctx.timeout)

    def stage(self, n: int) -> None:
        self._target = self._counter("processed") + n
        self._failed = self._counter("failed")
        Queue(STAGING_QUEUE, self.ctx.r).enqueue_many(Noop, [{"n": i} for i in range(n)])
        time.sleep(0.3)  # idle workers swallow the keyspace notifications of the staging

    def release(self) -> None:
        with self.ctx.r.pipeline(transaction=True) as pipe:
            pipe.rename(KEYS.queue(STAGING_QUEUE), KEYS.queue(BENCH_QUEUE))
            pipe.publish(KEYS.wakeup_channel, BENCH_QUEUE)
            pipe.execute()

    def done(self) -> bool:
        return self._counter("processed") >= self._target

    def check(self) -> None:
        if self._counter("failed") != self._failed:
            raise BenchError("labqueue jobs failed during the drain: see `labqueue failed list`")

    def probe(self) -> None:
        self.queue.enqueue(Probe)
