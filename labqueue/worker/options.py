"""A worker's settings, checked before it starts: queues, intervals, threads."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ConfigurationError
from ..payload import check_queue_name


def parse_queues(queues: str | Sequence[str]) -> list[str]:
    """``"high,default"`` or ``["high", "default"]`` -> names in priority order; ``*`` alone."""
    names = [q.strip() for q in queues.split(",")] if isinstance(queues, str) else list(queues)
    if names == ["*"]:
        return names
    if not names:
        raise ConfigurationError("a worker needs at least one queue (or '*' for all)")
    return [check_queue_name(n) for n in names]


def check_intervals(poll: float, heartbeat: float, scheduler: float | None) -> None:
    for name, value in (("poll", poll), ("heartbeat", heartbeat), ("scheduler", scheduler)):
        if value is not None and not (isinstance(value, int | float) and value > 0):
            raise ConfigurationError(f"{name}_interval must be seconds > 0, not {value!r}")


#: Most worker threads one process may run (a sanity bound, not a tuning advice).
MAX_THREADS = 1024


def check_threads(threads: object, fork: bool) -> int:
    """``threads``: a whole number from 1 to MAX_THREADS; with ``fork`` only 1."""
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_THREADS:
        raise ConfigurationError(
            f"threads must be a whole number from 1 to {MAX_THREADS}, not {threads!r}"
        )
    if fork and threads > 1:
        raise ConfigurationError(
            "--fork cannot run with --threads > 1 (forking a process that runs threads is "
            "unsafe); for isolated jobs use --fork --concurrency N, for slow I/O --threads N"
        )
    return threads
