"""The timestamp formats Resque writes, one function each (see resque-vectors.json)."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime


def _utc(ts: float | None) -> datetime:
    return datetime.fromtimestamp(time.time() if ts is None else ts, UTC)


#: The last second run_at formatted, and its text: a worker asks once per job.
_run_at_cache: tuple[int, str] = (-1, "")


def run_at(ts: float | None = None) -> str:
    """``2026-11-29T10:45:15Z``: a busy worker's ``run_at`` (formatted once per second)."""
    global _run_at_cache
    second = math.floor(time.time() if ts is None else ts)
    cached = _run_at_cache
    if cached[0] != second:
        cached = _run_at_cache = (second, _utc(second).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return cached[1]


def started(ts: float | None = None) -> str:
    """``2026-11-29 10:45:15 +0000``: ``worker:ID:started``."""
    return _utc(ts).strftime("%Y-%m-%d %H:%M:%S +0000")


def heartbeat(ts: float | None = None) -> str:
    """``2026-11-29T10:45:15+00:00``: the heartbeat hash."""
    return _utc(ts).replace(microsecond=0).isoformat()


def failed_at(ts: float | None = None) -> str:
    """``2026/11/29 10:45:17 UTC``: a failure record's ``failed_at``."""
    return _utc(ts).strftime("%Y/%m/%d %H:%M:%S UTC")


def parse(text: str) -> float | None:
    """Seconds since the epoch for any of the formats above (None if unreadable)."""
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M:%S %z", "%Y/%m/%d %H:%M:%S UTC"):
        try:
            parsed = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return parsed.replace(tzinfo=parsed.tzinfo or UTC).timestamp()
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None
