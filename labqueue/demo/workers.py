"""The store's queue workers: their command line, and the checks of how many and how.

    worker_argv("email,erp", job_events=None, threads=1)   # labqueue worker --queues ...
    check_workers_per_queue({"email": 1, "erp": 5}, "email,erp")
    check_worker_options(threads=4, erp_limit=2)             # StackError, one line, if not

The stack (:mod:`.stack`) and the load test's runner use them; the ERP limit reaches the
workers as ``STORE_ERP_LIMIT`` (:mod:`.config`), read by :mod:`.jobs` at import.
"""

from __future__ import annotations

from collections.abc import Mapping

from labqueue.procs import worker_command

from .config import MAX_THREADS, check_erp_limit
from .errors import BadSetting
from .procs import StackError

JOBS_MODULE = "labqueue.demo.jobs"


def worker_argv(queues: str, job_events: str | None = None, threads: int = 1) -> list[str]:
    """A store worker's command line (``--threads`` only past 1: today's command as it was)."""
    return worker_command(
        queues=queues,
        imports=[JOBS_MODULE],
        job_events=job_events,
        threads=threads if threads > 1 else None,
    )


def check_worker_options(threads: int, erp_limit: int | None) -> None:
    """StackError, one line, for a number of threads or an ERP limit out of range."""
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_THREADS:
        raise StackError(f"queue threads must be a whole number 1-{MAX_THREADS}, got {threads!r}")
    if erp_limit is not None:
        try:
            check_erp_limit(erp_limit)
        except BadSetting as exc:
            raise StackError(str(exc)) from None


def check_workers_per_queue(plan: Mapping[str, int], queues: str) -> dict[str, int]:
    """``{"email": 1, "erp": 5}``: every queue of ``queues`` named once, counts >= 0, one
    worker at least; StackError naming what is wrong otherwise."""
    known = [q for q in queues.split(",") if q]
    unknown = sorted(set(plan) - set(known))
    if unknown:
        raise StackError(f"workers per queue: unknown queue {unknown[0]!r}; queues: {known}")
    missing = [q for q in known if q not in plan]
    if missing:
        raise StackError(f"workers per queue: no worker would take queue {missing[0]!r}")
    bad = [q for q, n in plan.items() if isinstance(n, bool) or not isinstance(n, int) or n < 0]
    if bad:
        raise StackError(f"workers per queue: {bad[0]}={plan[bad[0]]!r} is not a count >= 0")
    if not sum(plan.values()):
        raise StackError("workers per queue: at least one worker is needed")
    return {q: plan[q] for q in known}
