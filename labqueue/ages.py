"""How long the oldest waiting jobs have waited: in each queue, and parked by each concurrency
limiter (out of their queue until a slot frees, see :mod:`labqueue.worker.limits`). One round
trip on Redis's clock; ``labqueue stats``, the monitor, ``/metrics`` and the load test's
sampler read it (through :func:`oldest_ages` or :func:`waiting_ages`).

A job waiting for queue ``erp`` is in ``queue:erp`` or parked by a limiter until it goes back
there: :attr:`Ages.waiting` is the age of the oldest of both, per queue.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis
from redis.client import NEVER_DECODE

from .errors import UnreadableData
from .keys import DEFAULT_NAMESPACE, Keys
from .reading import finite, loads
from .scripts import PARKED_HEADS


@dataclass(frozen=True)
class ParkedAge:
    """One limiter's parked jobs: how many, and the one parked longest."""

    count: int  #: jobs parked (0 also for a parked key of another type)
    #: seconds the longest-parked job has waited since it was enqueued (its payload's
    #: ``queue_time``); 0.0 when none is parked, None when its age is unknown
    age: float | None
    queue: str | None = None  #: the queue that job goes back to (None: none, or unreadable)


@dataclass(frozen=True)
class Ages:
    """The oldest waiting jobs' ages: at each queue's head, and parked per limiter."""

    queued: dict[str, float | None]  #: queue -> its head job's age (0.0: empty; None: unknown)
    parked: dict[str, ParkedAge]  #: limiter -> its parked jobs

    @property
    def waiting(self) -> dict[str, float | None]:
        """Queue -> the oldest job waiting for it, in the queue or parked (a limiter's parked
        jobs count for the queue its longest-parked job goes back to); None when one of them
        has an unknown age."""
        out = dict(self.queued)
        for p in self.parked.values():
            if p.queue in out and p.count:
                mine, theirs = out[p.queue], p.age
                out[p.queue] = None if mine is None or theirs is None else max(mine, theirs)
        return out


def oldest_ages(
    connection: redis.Redis, queues: Iterable[str], namespace: str = DEFAULT_NAMESPACE
) -> dict[str, float | None]:
    """Seconds the oldest job waiting for each queue has waited (its payload's ``queue_time``
    to now), whether it is at the queue's head or parked by a limiter: the figure to alert
    on, since a depth means nothing without the rate. One round trip (see
    :func:`waiting_ages`, which also gives each limiter's figure)."""
    return waiting_ages(connection, queues, namespace).waiting


def waiting_ages(
    connection: redis.Redis, queues: Iterable[str], namespace: str = DEFAULT_NAMESPACE
) -> Ages:
    """The age of the job at the head of each queue and of the longest-parked job of every
    limiter. One round trip for any number of queues and limiters (TIME, each queue's
    ``LINDEX 0`` and the read-only PARKED_HEADS script in one pipeline).

    The clock is Redis's (``TIME``, read in the same round trip), so every reader agrees
    whatever machine it runs on; ``queue_time`` is the producer's clock, so the age is as
    good as the producer's clock agrees with Redis's (an age below zero shows as 0.0).
    An empty queue is 0.0 (nothing waits). None means a job waits but its age is unknown:
    a Ruby Resque payload (no ``queue_time``), one that is not JSON, or a key that is not a
    list. A limiter's parked list is in the order jobs were parked; a job that loses its
    freed slot to another is parked again at its tail, so its head is the job parked
    longest, nearly always the one enqueued first.
    """
    keys, names = Keys(namespace), list(queues)
    with connection.pipeline(transaction=False) as pipe:
        pipe.time()
        for name in names:
            pipe.execute_command("LINDEX", keys.queue(name), 0, **{NEVER_DECODE: True})
        PARKED_HEADS.queue(pipe, (keys.limits,), (keys.limit_parked_prefix,))
        replies = pipe.execute(raise_on_error=False)
    clock = replies[0]
    if isinstance(clock, Exception):
        raise clock
    now = int(clock[0]) + int(clock[1]) / 1e6
    heads = replies[1:-1]
    queued = {name: _head_age(head, now) for name, head in zip(names, heads, strict=True)}
    return Ages(queued, _parked(replies[-1], now))


def _parked(reply: Any, now: float) -> dict[str, ParkedAge]:
    if isinstance(reply, Exception) or not isinstance(reply, list):
        return {}  # a server without Lua, say: no limiter is readable
    out = {}
    for i in range(0, len(reply) - 2, 3):
        name, count, head = reply[i : i + 3]
        name = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
        if int(count) < 0:
            out[name] = ParkedAge(0, None)
            continue
        queue, payload = _record(head)
        age = _head_age(payload, now) if head is not None else 0.0
        out[name] = ParkedAge(int(count), age, queue)
    return dict(sorted(out.items()))


def _record(item: Any) -> tuple[str | None, Any]:
    """(queue, payload) of a parked item ``{queue, payload}``; (None, b"") when it is none."""
    try:
        rec = loads(item)
        queue, payload = rec["queue"], rec["payload"]
    except (UnreadableData, TypeError, KeyError, AttributeError):
        return None, b""
    return (queue if isinstance(queue, str) else None), payload if isinstance(payload, str) else b""


def _head_age(head: Any, now: float) -> float | None:
    if head is None:
        return 0.0  # an empty queue (or no such key): nothing waits
    if isinstance(head, Exception):
        return None  # WRONGTYPE: not a queue labqueue can read
    queued = queue_time_of(head)
    if queued is None or queued <= 0 or queued - now > CLOCK_SLACK:
        return None  # no time, or none a producer's clock could have written: unknown
    return max(0.0, round(now - queued, 3))


#: How far ahead of Redis's clock a producer's ``queue_time`` may be before the age is
#: called unknown rather than 0 (a clock a little fast is normal; a day ahead is garbage).
CLOCK_SLACK = 86_400.0


def queue_time_of(raw: str | bytes) -> float | None:
    """A raw payload's ``queue_time`` (epoch s) when it is a finite number, else None."""
    try:
        data = loads(raw)
    except UnreadableData:  # not JSON, not UTF-8, nested too deep
        return None
    return finite(data.get("queue_time")) if isinstance(data, dict) else None
