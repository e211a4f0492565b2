"""Formatting for the pages: times, durations and payload excerpts (Jinja filters)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from ..payload import dumps
from ..reading import epoch
from ..reading import finite as finite_number


def utc(ts: Any) -> str:
    """``2026-11-29 10:45:15 UTC`` (an em dash when unknown; a value no calendar has, as
    it is)."""
    if ts is None:
        return "—"
    seconds = epoch(ts)
    if seconds is None:
        return f"{str(ts)[:40]} (no calendar date)"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: Any) -> str:
    """``4s``, ``3m 12s``, ``2h 05m``, ``3d 4h`` (an em dash for what is no duration)."""
    finite = finite_number(seconds)
    if finite is None:
        return "—"
    s = int(abs(finite))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def relative(ts: Any, now: float | None = None) -> str:
    """``3m 12s ago`` or ``in 5s`` (nothing for what is no time)."""
    finite = finite_number(ts)
    if finite is None:
        return ""
    delta = (time.time() if now is None else now) - finite
    return f"{duration(delta)} ago" if delta >= 0 else f"in {duration(delta)}"


def short_json(value: Any, limit: int = 120) -> str:
    """Compact JSON, cut to ``limit`` characters."""
    text = value if isinstance(value, str) else dumps(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def clip(text: str, limit: int = 100_000) -> str:
    """``text``, cut to ``limit`` characters with a note of how many more there are."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


def pretty_json(value: Any) -> str:
    import json

    if isinstance(value, str):
        return clip(value)
    return clip(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False))


def thousands(n: Any) -> str:
    if n is None:
        return "—"
    return f"{n:,}" if isinstance(n, int | float) else str(n)


def age(seconds: Any) -> str:
    """An oldest-job age as the overview shows it: ``0.0 s``, ``12.4 s``, ``3m 12s``;
    ``unknown`` for None (a job waits whose enqueue time is not known)."""
    finite = finite_number(seconds)
    if finite is None:
        return "unknown"
    return f"{finite:.1f} s" if finite < 60 else duration(finite)


FILTERS = {
    "age": age,
    "utc": utc,
    "duration": duration,
    "relative": relative,
    "short_json": short_json,
    "pretty_json": pretty_json,
    "thousands": thousands,
    "clip": clip,
}
