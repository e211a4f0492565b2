"""One repetition's measurements, in four rounds; figures a target compares are timed
side by side, so a burst of load on the machine hits both.

- enqueue_round: raw LPUSH and every system's enqueue, in alternating slices of the jobs.
- bulk_round: pipelined LPUSH and labqueue's enqueue_many, alternating batches.
- worker_round: one worker process per system, all idle on the server at once; raw LMOVE
  right before labqueue's drain, each system's drain (order reversed every other
  repetition), worker RSS, then probe jobs to each system in turn for the idle latency.
- n_worker_round: N labqueue worker processes draining.

Each round starts from an empty server (FLUSHALL); within the worker round the systems'
keys do not overlap.
"""

from __future__ import annotations

import contextlib
import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from . import ceiling
from .common import (
    MAX_BATCHES,
    MIN_BATCH_SECONDS,
    BenchError,
    Context,
    CpuMeter,
    System,
    Workers,
    percentiles,
    sample_payload,
    wait_until,
)
from .labq import Labqueue
from .names import PROBE_KEY

#: system -> metric -> value, for one repetition
Figures = dict[str, dict[str, float]]

#: Slices the enqueue round cuts each system's jobs into (taking turns slice by slice).
SLICES = 6


#: Jobs the memory figure is measured over, at the least: Redis's used_memory moves by tens of
#: kilobytes between two readings of an idle server (the allocator), which is more than a few
#: dozen jobs weigh, so a small run's figure would be noise and could come out negative.
MEMORY_MIN_JOBS = 1000


def _share(total: int, k: int) -> int:
    """Jobs in slice ``k`` of ``total``."""
    return total // SLICES + (1 if k < total % SLICES else 0)


def enqueue_round(ctx: Context, systems: Sequence[System], with_ceiling: bool) -> Figures:
    """One enqueue call per job (the ceiling: one LPUSH per job), and Redis memory per job."""
    r, payload = ctx.flush(), sample_payload()
    runners: list[tuple[str, str, int, Callable[[int, int], object]]] = []
    if with_ceiling:
        runners.append(("redis", "lpush_rate", ctx.jobs, lambda _, m: ceiling.lpush(r, payload, m)))
    for s in systems:
        runners.append((s.name, "enqueue_rate", s.jobs, _enqueue_slice(s)))
    seconds: dict[str, float] = defaultdict(float)
    for k in range(SLICES):
        for name, _, total, run in runners if k % 2 == 0 else runners[::-1]:
            start = time.perf_counter()
            run(k * (total // SLICES), _share(total, k))
            seconds[name] += time.perf_counter() - start
    out: Figures = {}
    for name, metric, total, run in runners:
        # memory apart, each from an empty server: the slices' deltas would take turns
        # paying for Redis's hash table growth
        ctx.flush()
        before = ctx.used_memory()
        count = max(total, MEMORY_MIN_JOBS)
        run(0, count)
        memory = (ctx.used_memory() - before) / count
        out[name] = {metric: total / seconds[name], "memory_per_job_bytes": memory}
    return out


def _enqueue_slice(system: System) -> Callable[[int, int], None]:
    def run(first: int, count: int) -> None:
        for i in range(first, first + count):
            system.enqueue(i)

    return run


def bulk_round(ctx: Context, labqueue: Labqueue | None, with_ceiling: bool) -> Figures:
    """enqueue_many of ctx.jobs jobs against one pipeline of as many LPUSHes, batch by batch."""
    r, payload, n = ctx.r, sample_payload(), ctx.jobs
    items = [{"n": i} for i in range(n)]
    runners: list[tuple[str, str, Callable[[], object]]] = []
    if with_ceiling:
        runners.append(("redis", "lpush_pipelined_rate", lambda: ceiling.pipelined(r, payload, n)))
    if labqueue is not None:
        runners.append(("labqueue", "bulk_enqueue_rate", lambda: labqueue.enqueue_many(items)))
    timed = {name: [0.0, 0] for name, _, _ in runners}

    def more(name: str) -> bool:
        seconds, batches = timed[name]
        return batches == 0 or (seconds < MIN_BATCH_SECONDS and batches < MAX_BATCHES)

    while any(more(name) for name, _, _ in runners):
        for name, _, run in runners:
            if more(name):
                ctx.flush()
                start = time.perf_counter()
                run()
                timed[name][0] += time.perf_counter() - start
                timed[name][1] += 1
    return {name: {metric: n * timed[name][1] / timed[name][0]} for name, metric, _ in runners}


def worker_round(ctx: Context, systems: Sequence[System], with_ceiling: bool, rep: int) -> Figures:
    """Drains by one worker process each (and raw LMOVE), worker RSS, idle latency."""
    ctx.flush()
    out: Figures = defaultdict(dict)
    with contextlib.ExitStack() as stack:
        pairs = [(s, stack.enter_context(Workers(s.worker_commands(1), ctx.url))) for s in systems]
        for s, workers in pairs:
            s.ready(workers)
        if with_ceiling and not any(s.name == "labqueue" for s in systems):
            out["redis"]["lmove_rate"] = _lmove(ctx)
        for s, workers in pairs if rep % 2 else pairs[::-1]:
            if with_ceiling and s.name == "labqueue":
                out["redis"]["lmove_rate"] = _lmove(ctx)
            out[s.name].update(drain(ctx, s, workers))
            out[s.name]["worker_rss_mb"] = workers.rss_mb()
        for name, (p50, p99) in latencies(ctx, pairs).items():
            out[name].update({"latency_p50_ms": p50, "latency_p99_ms": p99})
    return out


def n_worker_round(ctx: Context, labqueue: Labqueue) -> Figures:
    """ctx.workers labqueue worker processes draining ctx.jobs jobs together."""
    ctx.flush()
    with Workers(labqueue.worker_commands(ctx.workers), ctx.url) as workers:
        labqueue.ready(workers, ctx.workers)
        rate = drain(ctx, labqueue, workers)["drain_1_rate"]
    return {"labqueue": {"drain_n_rate": rate}}


def _lmove(ctx: Context) -> float:
    ceiling.fill(ctx.r, sample_payload(), ctx.jobs)
    start = time.perf_counter()
    ceiling.lmove(ctx.r, ctx.jobs)
    return ctx.jobs / (time.perf_counter() - start)


def drain(ctx: Context, system: System, workers: Workers) -> dict[str, float]:
    """Jobs/s of ``workers`` (idle, warmed up) draining ``system.jobs`` staged no-op jobs,
    timed from their release until all are done; and CPU time per job."""
    n = system.jobs
    system.stage(n)
    meter = CpuMeter(ctx, workers)
    start = time.perf_counter()
    system.release()
    end = wait_until(system.done, f"{system.name}'s drain", workers, ctx.timeout)
    system.check()
    return {"drain_1_rate": n / (end - start), **meter.per_job(n)}


def latencies(
    ctx: Context, pairs: Sequence[tuple[System, Workers]]
) -> dict[str, tuple[float, float]]:
    """Enqueue-to-start latency of idle workers, in ms: (p50, p99) per system.

    Probe jobs go to each system in turn; each pushes the time it started to PROBE_KEY, and
    the next is enqueued only after that plus a pause of 8-20 ms, so every worker is idle
    again when its next probe arrives.
    """
    r = ctx.r
    r.delete(PROBE_KEY)
    rng = random.Random(12345)  # the same pauses in every run
    values: dict[str, list[float]] = {s.name: [] for s, _ in pairs}
    for _ in range(ctx.latency_samples):
        for system, workers in pairs:
            sent = time.time()
            system.probe()
            reply = r.blpop([PROBE_KEY], timeout=10)
            if reply is None:
                workers.check()
                raise BenchError(f"a {system.name} probe job did not start within 10 s")
            values[system.name].append((float(reply[1]) - sent) * 1000.0)
            time.sleep(rng.uniform(0.008, 0.020))
    return {name: percentiles(v) for name, v in values.items()}


def repetition(ctx: Context, systems: Sequence[System], with_ceiling: bool, rep: int) -> Figures:
    """Every figure once."""
    labqueue = next((s for s in systems if isinstance(s, Labqueue)), None)
    rounds: list[Callable[[], Figures]] = [
        lambda: enqueue_round(ctx, systems, with_ceiling),
        lambda: bulk_round(ctx, labqueue, with_ceiling),
        lambda: worker_round(ctx, systems, with_ceiling, rep),
    ]
    if labqueue is not None:
        rounds.append(lambda: n_worker_round(ctx, labqueue))
    out: Figures = defaultdict(dict)
    for run in rounds:
        for name, figures in run().items():
            out[name].update(figures)
    return out


def collect(ctx: Context, systems: Sequence[System], with_ceiling: bool, repeat: int) -> Any:
    """system -> metric -> one value per repetition."""
    samples: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for rep in range(1, repeat + 1):
        print(f"  repetition {rep}/{repeat} ...", file=sys.stderr, flush=True)
        for name, figures in repetition(ctx, systems, with_ceiling, rep).items():
            for metric, value in figures.items():
                samples[name][metric].append(value)
    order = ["redis", *(s.name for s in systems)]
    return {name: dict(samples[name]) for name in order if name in samples}
