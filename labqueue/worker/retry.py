"""Retries, as resque-retry does them: per job class, a limit and a backoff schedule.

    @labqueue.job("Shop::SyncOrder")
    class SyncOrder(labqueue.Job):
        retry_limit = 5                       # retries after the first failure (0: none)
        retry_backoff = (0, 60, 600, 3600)    # seconds before retry 1, 2, 3...; the last repeats
        retry_on = (ConnectionError,)         # which exceptions are worth a retry
        retry_jitter = "full"                 # the default; "equal", or None: the exact schedule

A failed run with retries left goes to the delayed schedule (see :mod:`labqueue.delayed`),
due after its backoff, with the same id and ``attempts`` (failed runs so far) in the payload;
a zero backoff puts it straight back at the tail of its queue. Only when the retries are spent
does the failed store get it, once, with ``attempts`` in the failure record. Leaving the
worker's in-progress hash and entering the schedule is one Lua script, so a crash in between
cannot lose the job or retry it twice.

Jitter. Jobs that fail together (the ERP went down under all of them) would, on a fixed
schedule, all retry in the same second and hit the recovering service as one herd. So a
retry's delay is drawn at random below its schedule entry ``d`` (the schedule says how long
to wait *at most*; which entry, and that the last repeats, is resque-retry's rule as before):

- ``"full"`` (the default): uniform in ``[0, d]``, AWS's "full jitter" (Marc Brooker,
  "Exponential Backoff And Jitter", 2015) and Celery's ``retry_jitter=True``. Of the simple
  schemes it spreads a herd the most, and so makes the fewest calls to a struggling service
  and finishes soonest; the price is that a retry may come much earlier than ``d``.
- ``"equal"``: uniform in ``[d/2, d]``: never sooner than half the entry, spread over half.
- ``None``: exactly ``d``, resque-retry's behaviour (its multiplicands 1.0..1.0).

A zero entry stays zero (nothing to spread: resque-retry's default schedule retries the first
time at once, herd and all). The draw comes from the worker's ``random.Random`` (pass a
seeded one, ``Worker(rng=random.Random(7))``, for a repeatable run).
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass
from functools import partial
from typing import Any

import redis

from ..badkeys import heal
from ..errors import BadKey, JobCrashed, JobRaised, PayloadError
from ..jobs import DEFAULT_BACKOFF, RETRY_JITTERS
from ..keys import Keys
from ..payload import ATTEMPTS_FIELD, QUEUE_FIELD, SCHEDULED_FOR_FIELD, Payload
from ..scripts import RETRY


@dataclass(frozen=True)
class RetryPlan:
    """The next run of a failed job: its new payload, and when (None = at once)."""

    job_id: str | None
    queue: str
    raw: str
    attempt: int  #: failed runs so far, this one included
    due: float | None


def attempts_of(payload: Payload) -> int:
    """Failed runs recorded in ``payload`` (0 for a fresh job)."""
    value = payload.extra.get(ATTEMPTS_FIELD)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def retry_limit(job_class: Any) -> int:
    limit = getattr(job_class, "retry_limit", 0)
    return limit if isinstance(limit, int) and limit > 0 else 0


def backoff(job_class: Any, attempt: int) -> float:
    """The schedule's entry for retry number ``attempt`` (1-based; the last entry repeats): the
    most it waits, before jitter (:func:`retry_delay`)."""
    schedule = tuple(getattr(job_class, "retry_backoff", DEFAULT_BACKOFF)) or (0,)
    delay = float(schedule[min(attempt, len(schedule)) - 1])
    return delay if math.isfinite(delay) and delay > 0 else 0.0


#: Draws jitter when the worker was given no generator of its own.
_RANDOM = random.Random()


def jittered(delay: float, mode: str | None, rng: random.Random | None = None) -> float:
    """``delay`` (a schedule entry, seconds) with ``mode``'s jitter drawn from ``rng``."""
    if delay <= 0 or mode is None:
        return delay
    draw = (rng or _RANDOM).random()
    return delay * draw if mode != "equal" else delay / 2 * (1 + draw)


def retry_delay(job_class: Any, attempt: int, rng: random.Random | None = None) -> float:
    """Seconds before retry ``attempt``: its schedule entry with the class's jitter."""
    mode = getattr(job_class, "retry_jitter", "full")
    ok = mode in RETRY_JITTERS and not isinstance(mode, bool)
    return jittered(backoff(job_class, attempt), mode if ok else "full", rng)


def retryable(job_class: Any, exc: BaseException) -> bool:
    """Is ``exc`` one of the job class's ``retry_on``? (For a job that raised in a child
    process, ``--fork``, by the names of the original exception's classes.)"""
    if isinstance(exc, JobCrashed) and exc.final:  # crash-looped: another run crashes again
        return False
    kinds = tuple(getattr(job_class, "retry_on", (Exception,)))
    if isinstance(exc, JobRaised):
        return any(kind.__name__ in exc.lineage for kind in kinds)
    return isinstance(exc, kinds)


def plan(
    job_class: Any,
    payload: Payload | None,
    queue: str,
    exc: BaseException,
    now: float,
    rng: random.Random | None = None,
) -> RetryPlan | None:
    """How to run the failed job again, or None when it has no retries (left) for ``exc``
    (jitter drawn from ``rng``)."""
    if job_class is None or payload is None or not retry_limit(job_class):
        return None
    if not retryable(job_class, exc):
        return None
    attempt = attempts_of(payload) + 1
    if attempt > retry_limit(job_class):
        return None
    delay = retry_delay(job_class, attempt, rng)
    due = now + delay if delay > 0 else None
    extra = {**payload.extra, ATTEMPTS_FIELD: attempt}
    if due is not None:
        extra.update({QUEUE_FIELD: queue, SCHEDULED_FOR_FIELD: due})
    try:
        raw = dataclasses.replace(payload, extra=extra).to_json()
    except PayloadError:  # readable here, not writable as JSON (NaN from another producer)
        return None
    return RetryPlan(payload.id, queue, raw, attempt, due)


def record_extra(job_class: Any, payload: Payload | None) -> dict[str, Any]:
    """What a failure record adds for a job that has retries: how many runs failed."""
    if payload is None or not (retry_limit(job_class) or attempts_of(payload)):
        return {}
    return {ATTEMPTS_FIELD: attempts_of(payload) + 1}


class Retrier:
    """:data:`~labqueue.scripts.RETRY` for one connection and namespace."""

    def __init__(self, connection: redis.Redis, keys: Keys) -> None:
        self.connection = connection
        self.keys = keys

    def finish(self, worker_id: str, retry: RetryPlan, status: str) -> int:
        """Let go of ``worker_id``'s job and schedule ``retry`` (``status``: its waiting
        status JSON); 1 if the job was still ours."""
        k = self.keys
        second = "" if retry.due is None else str(math.floor(retry.due))
        status = status if retry.job_id else ""
        keys = (
            k.inprogress(worker_id),
            k.worker(worker_id),
            k.stat("failed"),
            k.stat("failed", worker_id),
            k.status(retry.job_id or "-"),
            k.delayed_schedule,
            k.delayed(int(second or 0)),
            k.queues,
            k.queue(retry.queue),
        )
        args = (status, retry.raw, second, k.wakeup_channel, retry.queue)
        try:
            return int(RETRY.call(self.connection, keys, args))
        except BadKey as bad:  # moved aside, then the retry again (nothing was written)
            again = partial(RETRY.call, self.connection, keys, args)
            return int(heal(bad, again, self.connection, k, worker_id))
