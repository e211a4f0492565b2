"""labqueue: enqueue, bulk enqueue, one and N worker processes draining, idle latency.

Workers are real processes (``python -m labqueue worker``). A drain is timed from the
moment its jobs become visible to idle, warmed-up workers (the staged list is RENAMEd onto
the queue and a wake-up published, in one MULTI) until ``stat:processed`` counts them all,
so process start-up is not counted as drain time.
"""

from __future__ import annotations

import time

from labqueue import Queue
from labqueue.keys import Keys

from .common import (
    BENCH_QUEUE,
    STAGING_QUEUE,
    BenchError,
    Context,
    CpuMeter,
    Workers,
    batched_rate,
    latency_run,
    python_module,
    wait_until,
)
from .jobs import Noop, Probe

KEYS = Keys()


def measure(ctx: Context) -> dict[str, float]:
    """One repetition of every labqueue figure."""
    out = _enqueue(ctx)
    out["bulk_enqueue_rate"] = _bulk(ctx)
    out.update(_one_worker(ctx))
    out["drain_n_rate"] = _n_workers(ctx)
    return out


def _enqueue(ctx: Context) -> dict[str, float]:
    q = Queue(BENCH_QUEUE, ctx.flush())
    before = ctx.used_memory()
    start = time.perf_counter()
    for i in range(ctx.jobs):
        q.enqueue(Noop, n=i)
    rate = ctx.jobs / (time.perf_counter() - start)
    return {"enqueue_rate": rate, "memory_per_job_bytes": (ctx.used_memory() - before) / ctx.jobs}


def _bulk(ctx: Context) -> float:
    q = Queue(BENCH_QUEUE, ctx.flush())
    items = [{"n": i} for i in range(ctx.jobs)]
    return batched_rate(ctx.jobs, ctx.flush, lambda: q.enqueue_many(Noop, items))


def worker_command(url: str) -> list[str]:
    return python_module(
        "labqueue", "worker", "--queues", BENCH_QUEUE, "--import", "bench.jobs", "--url", url
    )


def _one_worker(ctx: Context) -> dict[str, float]:
    ctx.flush()
    with Workers([worker_command(ctx.url)], ctx.url) as workers:
        _warm_up(ctx, workers, 1)
        meter = CpuMeter(ctx, workers)
        out = {"drain_1_rate": _drain(ctx, workers), **meter.per_job(ctx.jobs)}
        out["worker_rss_mb"] = workers.rss_mb()
        q = Queue(BENCH_QUEUE, ctx.r)
        out["latency_p50_ms"], out["latency_p99_ms"] = latency_run(
            ctx, lambda: q.enqueue(Probe), workers
        )
    return out


def _n_workers(ctx: Context) -> float:
    ctx.flush()
    with Workers([worker_command(ctx.url)] * ctx.workers, ctx.url) as workers:
        _warm_up(ctx, workers, ctx.workers)
        return _drain(ctx, workers)


def _processed(ctx: Context) -> int:
    return int(ctx.r.get(KEYS.stat("processed")) or 0)


def _warm_up(ctx: Context, workers: Workers, count: int) -> None:
    """Wait until ``count`` workers listen for wake-ups, then have them run a job each."""

    def listening() -> bool:
        return int(ctx.r.pubsub_numsub(KEYS.wakeup_channel)[0][1]) >= count

    wait_until(listening, f"{count} labqueue worker(s) to start", workers, ctx.timeout)
    Queue(BENCH_QUEUE, ctx.r).enqueue_many(Noop, [{"n": -1}] * count)
    wait_until(lambda: _processed(ctx) >= count, "the warm-up jobs", workers, ctx.timeout)


def _drain(ctx: Context, workers: Workers) -> float:
    """Jobs/s of ``workers`` draining ``ctx.jobs`` no-op jobs."""
    r, n = ctx.r, ctx.jobs
    base, failed = _processed(ctx), int(r.get(KEYS.stat("failed")) or 0)
    Queue(STAGING_QUEUE, r).enqueue_many(Noop, [{"n": i} for i in range(n)])
    time.sleep(0.3)  # let idle workers swallow the keyspace notifications of the staging
    with r.pipeline(transaction=True) as pipe:
        pipe.rename(KEYS.queue(STAGING_QUEUE), KEYS.queue(BENCH_QUEUE))
        pipe.publish(KEYS.wakeup_channel, BENCH_QUEUE)
        start = time.perf_counter()
        pipe.execute()
    end = wait_until(lambda: _processed(ctx) >= base + n, "the drain", workers, ctx.timeout)
    if int(r.get(KEYS.stat("failed")) or 0) != failed:
        raise BenchError("labqueue jobs failed during the drain: see `labqueue failed list`")
    return n / (end - start)
