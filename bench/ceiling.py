"""The ceiling: raw redis-py commands on the same server, with a typical job's payload.

LPUSH and LMOVE at one round trip per command (what a queue needs at least per enqueue and
per fetch), and LPUSH pipelined (what a bulk enqueue can reach at most).
"""

from __future__ import annotations

import time

from .common import RAW_DST, RAW_SRC, Context, batched_rate, sample_payload


def measure(ctx: Context) -> dict[str, float]:
    """One repetition: the three rates, and the Redis memory a bare payload takes."""
    r = ctx.flush()
    payload, n = sample_payload(), ctx.jobs
    before = ctx.used_memory()
    start = time.perf_counter()
    for _ in range(n):
        r.lpush(RAW_SRC, payload)
    lpush = n / (time.perf_counter() - start)
    memory = (ctx.used_memory() - before) / n

    start = time.perf_counter()
    for _ in range(n):
        r.lmove(RAW_SRC, RAW_DST, "LEFT", "RIGHT")
    lmove = n / (time.perf_counter() - start)

    def pipelined() -> None:
        with r.pipeline(transaction=False) as pipe:
            for _ in range(n):
                pipe.lpush(RAW_SRC, payload)
            pipe.execute()

    rate = batched_rate(n, lambda: r.delete(RAW_SRC, RAW_DST), pipelined)
    return {
        "lpush_rate": lpush,
        "lmove_rate": lmove,
        "lpush_pipelined_rate": rate,
        "memory_per_job_bytes": memory,
    }
