"""Poison jobs: a job that kills the worker running it is failed, not run forever.

A job whose run ends the worker's process (``os._exit``, a segfault in a C extension, the
kernel's OOM killer, SIGKILL) never reaches FINISH: it stays in the dead worker's
in-progress hash until a live worker (or the worker's supervisor, or the worker itself
restarted with the same id) releases it, back to the *head* of its queue. Left there, the
next worker takes it at once and dies too, and so on: a crash loop that also stalls every
job behind it.

So :data:`~labqueue.scripts.RELEASE` counts each such death in the payload itself: its first
field becomes ``"crashes": N`` (spliced into the text: the rest stays byte for byte, and a
Ruby payload without an id counts the same way, with no key to name it). The worker that
fetches a job whose count has reached its limit fails it into the failed store, as
``JobCrashed`` ("the job crashed its worker N times"), instead of running it, and goes on
with the rest of the queue. The limit is the job class's ``crash_limit``, else the fetching
worker's (``Worker(crash_limit=...)``, :data:`DEFAULT_CRASH_LIMIT`; None: no cap). A crash
capped job is never retried, whatever its class's retries; ``labqueue failed requeue`` gives
it a fresh count. Sidekiq Pro's super_fetch does the same with its poison-pill rule.

What is counted is the death of a worker while the job was in its hands, which a healthy job
can also meet (a worker SIGKILLed by an operator or a deploy): K such deaths in a row under
one job are what a poison job looks like, rarely what bad luck does.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError, JobCrashed
from ..payload import CRASHES_FIELD, Payload

#: How many worker deaths a job may cause before it is failed instead of run again.
DEFAULT_CRASH_LIMIT = 3


def check_limit(limit: Any) -> int | None:
    """A worker's ``crash_limit``: a whole number >= 1, or None (no cap)."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ConfigurationError(f"crash_limit must be a whole number >= 1 or None, not {limit!r}")
    return limit


def crashes_of(payload: Payload) -> int:
    """How many workers died running this job so far (0 for a job that never crashed one)."""
    value = payload.extra.get(CRASHES_FIELD)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def limit_for(job_class: Any, default: int | None) -> int | None:
    """The job class's ``crash_limit`` if it sets one, else the worker's ``default``."""
    limit = getattr(job_class, "crash_limit", None)
    own = isinstance(limit, int) and not isinstance(limit, bool) and limit > 0
    return limit if own else default


def check(payload: Payload, job_class: Any, default: int | None) -> None:
    """Raise the final JobCrashed when ``payload`` has crashed as many workers as allowed."""
    count, limit = crashes_of(payload), limit_for(job_class, default)
    if limit is not None and count >= limit:
        raise JobCrashed(
            f"the job crashed its worker {count} time{'s' if count != 1 else ''} (the process "
            "running it died each time: "
            f"os._exit, a segfault, an OOM kill or SIGKILL; limit {limit}): not run again",
            final=True,
        )
