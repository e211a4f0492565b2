"""The ceiling: raw redis-py commands on the same server, with a typical job's payload.

LPUSH and LMOVE at one round trip per command (what a queue needs at least per enqueue and
per fetch), and LPUSH pipelined (what a bulk enqueue can reach at most). The rounds time
each next to what it is the ceiling of.
"""

from __future__ import annotations

from typing import Any

from .names import RAW_DST, RAW_SRC


def lpush(r: Any, payload: str, n: int) -> None:
    """``n`` LPUSHes, one round trip each."""
    for _ in range(n):
        r.lpush(RAW_SRC, payload)


def fill(r: Any, payload: str, n: int) -> None:
    """A fresh source list of ``n`` payloads for :func:`lmove` (untimed)."""
    r.delete(RAW_SRC, RAW_DST)
    pipelined(r, payload, n)


def lmove(r: Any, n: int) -> None:
    """``n`` LMOVEs from the source list, one round trip each (what a fetch needs at least)."""
    for _ in range(n):
        r.lmove(RAW_SRC, RAW_DST, "LEFT", "RIGHT")


def pipelined(r: Any, payload: str, n: int) -> None:
    """``n`` LPUSHes in one pipeline."""
    with r.pipeline(transaction=False) as pipe:
        for _ in range(n):
            pipe.lpush(RAW_SRC, payload)
        pipe.execute()
