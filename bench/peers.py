"""The peers, on the same server with the same no-op job: huey and RQ.

- huey: ``RedisHuey`` (blocking fetch), its own consumer with one worker thread.
- RQ: ``SimpleWorker`` (runs jobs in its own process, no fork per job).

Each is timed like labqueue: enqueue one call per job; a worker process (started by
:mod:`bench.peer_worker`, warmed up with one job) drains jobs that were staged on a side
list and RENAMEd onto its queue at once; then spaced-out probe jobs give the idle latency.
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
    HUEY_STAGING,
    RQ_STAGING,
    Context,
    CpuMeter,
    Workers,
    latency_run,
    python_module,
    wait_until,
)


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


class _StagingQueue(rq.Queue):
    """RQ jobs of queue ``bench`` pushed to a side list, to be RENAMEd onto the queue."""

    @property
    def key(self) -> str:
        return RQ_STAGING


def _enqueue_rate(ctx: Context, n: int, enqueue: Any) -> dict[str, float]:
    before = ctx.used_memory()
    start = time.perf_counter()
    for i in range(n):
        enqueue(n=i)
    rate = n / (time.perf_counter() - start)
    return {"enqueue_rate": rate, "memory_per_job_bytes": (ctx.used_memory() - before) / n}


def measure_huey(ctx: Context) -> dict[str, float]:
    """One repetition of huey's figures."""
    ctx.flush()
    huey, tasks = huey_app(ctx.url)
    out = _enqueue_rate(ctx, ctx.jobs, tasks["noop"])
    ctx.flush()
    queue_key = huey.storage.queue_key
    with Workers([python_module("bench.peer_worker", "huey", "--url", ctx.url)], ctx.url) as w:
        tasks["noop"](n=-1)
        wait_until(lambda: ctx.r.llen(queue_key) == 0, "huey to start", w, ctx.timeout)
        time.sleep(0.05)
        _, staged = huey_app(ctx.url, HUEY_STAGING)
        for i in range(ctx.jobs):
            staged["noop"](n=i)
        meter = CpuMeter(ctx, w)
        start = time.perf_counter()
        ctx.r.rename(HUEY_STAGING, queue_key)
        end = wait_until(lambda: ctx.r.llen(queue_key) == 0, "huey's drain", w, ctx.timeout)
        out["drain_1_rate"] = ctx.jobs / (end - start)
        out.update(meter.per_job(ctx.jobs))
        out["worker_rss_mb"] = w.rss_mb()
        out["latency_p50_ms"], out["latency_p99_ms"] = latency_run(ctx, tasks["probe"], w)
    huey.storage.conn.connection_pool.disconnect()
    return out


def measure_rq(ctx: Context) -> dict[str, float]:
    """One repetition of RQ's figures (with ``ctx.rq_jobs`` jobs: RQ is slower)."""
    ctx.flush()
    conn = redis.Redis.from_url(ctx.url)
    q = rq.Queue(BENCH_QUEUE, connection=conn)
    out = _enqueue_rate(ctx, ctx.rq_jobs, lambda **kw: q.enqueue(jobs.noop, **kw))
    ctx.flush()
    finished = q.finished_job_registry.key
    with Workers([python_module("bench.peer_worker", "rq", "--url", ctx.url)], ctx.url) as w:
        q.enqueue(jobs.noop, n=-1)
        wait_until(lambda: conn.zcard(finished) >= 1, "RQ to start", w, ctx.timeout)
        time.sleep(0.05)
        staging = _StagingQueue(BENCH_QUEUE, connection=conn)
        for i in range(ctx.rq_jobs):
            staging.enqueue(jobs.noop, n=i)
        meter = CpuMeter(ctx, w)
        start = time.perf_counter()
        conn.rename(RQ_STAGING, q.key)
        done = 1 + ctx.rq_jobs
        end = wait_until(lambda: conn.zcard(finished) >= done, "RQ's drain", w, ctx.timeout)
        out["drain_1_rate"] = ctx.rq_jobs / (end - start)
        out.update(meter.per_job(ctx.rq_jobs))
        out["worker_rss_mb"] = w.rss_mb()
        out["latency_p50_ms"], out["latency_p99_ms"] = latency_run(
            ctx, lambda: q.enqueue(jobs.probe), w
        )
    conn.close()
    return out
