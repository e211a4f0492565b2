"""What the concurrency limits hold, for ``labqueue stats``, the monitor and ``/metrics``:
each limiter's size K, the worker ids holding its slots (with their leases), and its parked
jobs (out of their queue until a slot frees; see :mod:`labqueue.worker.limits`).

Read inside :func:`labqueue.stats.snapshot`'s two round trips: :func:`queue_reads` adds the
reads of each limiter to the second, :func:`limiters` turns the replies into records.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from .keys import Keys
from .reading import Batch, loads

#: How many parked jobs a snapshot names per limiter (it counts them all).
PEEK = 10

#: Replies :func:`queue_reads` queues per limiter.
PER_LIMITER = 3

#: A K the limits hash may hold and a reader shows: ASCII digits, at most 300 of them (str.
#: isdigit() also takes "²", which int() refuses; int() refuses 4,300 digits and more, and
#: /metrics' float() more than 308).
_SIZE = re.compile(r"[0-9]{1,300}")

#: Seconds left shown for a lease deadline of +/-inf (a zset score no labqueue worker
#: writes): kept finite, so the monitor's API stays JSON a browser parses.
FAR = 1e300


@dataclass(frozen=True)
class ParkedJob:
    """A job waiting for a slot: the queue it goes back to, its class and id."""

    queue: str
    job_class: str | None
    id: str | None


@dataclass(frozen=True)
class LimiterInfo:
    """One limiter: at most ``limit`` of its jobs run at once."""

    name: str
    limit: int | None  #: K, as the last acquire recorded it (None: unreadable)
    #: worker id -> seconds left of its lease (at most 0: expired, freed at the next sweep)
    holders: dict[str, float] = field(default_factory=dict)
    parked: int = 0  #: jobs waiting for a slot (in no queue meanwhile)
    next_parked: list[ParkedJob] = field(default_factory=list)  #: the first PEEK of them

    @property
    def running(self) -> int:
        """Slots held under a lease still running."""
        return sum(left > 0 for left in self.holders.values())


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def limiter_names(sizes: dict[Any, Any]) -> list[str]:
    """The limiters the limits hash names, sorted."""
    return sorted(_text(n) for n in sizes)


def queue_reads(batch: Batch, keys: Keys, names: list[str]) -> None:
    """Queue each limiter's reads (holders, parked count, first parked) on ``batch``."""
    for name in names:
        batch.call("zrange", keys.limit_holders(name), 0, -1, withscores=True)
        batch.call("llen", keys.limit_parked(name))
        batch.call("lrange", keys.limit_parked(name), 0, PEEK - 1)


def limiters(sizes: dict[Any, Any], replies: list[Any], now: float) -> list[LimiterInfo]:
    """Records from the limits hash (``sizes``) and :func:`queue_reads`' replies, by name."""
    names = limiter_names(sizes)
    raw = {_text(n): _text(k) for n, k in sizes.items()}
    out = []
    for i, name in enumerate(names):
        holders, parked, first = replies[PER_LIMITER * i : PER_LIMITER * i + PER_LIMITER]
        size = raw[name]
        out.append(
            LimiterInfo(
                name,
                int(size) if _SIZE.fullmatch(size) else None,
                {_text(w): _left(float(d), now) for w, d in holders},
                int(parked),
                [_parked(item) for item in first],
            )
        )
    return out


def _left(deadline: float, now: float) -> float:
    """Seconds from ``now`` to a lease ``deadline``, within +/-FAR."""
    left = round(deadline - now, 1)
    return left if math.isfinite(left) else math.copysign(FAR, left)


def _parked(item: Any) -> ParkedJob:
    try:
        rec = loads(item)
        payload = loads(rec["payload"])
        cls, job_id = payload.get("class"), payload.get("id")
        queue = rec["queue"]
    except Exception:  # not a record labqueue wrote: shown as unknown
        return ParkedJob("?", None, None)
    return ParkedJob(
        _text(queue),
        cls if isinstance(cls, str) else None,
        job_id if isinstance(job_id, str) else None,
    )
