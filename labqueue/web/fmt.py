"""Formatting for the pages: times, durations and payload excerpts (Jinja filters)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from ..payload import dumps


def utc(ts: float | None) -> str:
    """``2026-11-29 10:45:15 UTC`` (or an em dash when unknown)."""
    if ts is None:
        return "—"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float | None) -> str:
    """``4s``, ``3m 12s``, ``2h 05m``, ``3d 4h``."""
    if seconds is None:
        return "—"
    s = int(abs(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def relative(ts: float | None, now: float | None = None) -> str:
    """``3m 12s ago`` or ``in 5s``."""
    if ts is None:
        return ""
    delta = (time.time() if now is None else now) - ts
    return f"{duration(delta)} ago" if delta >= 0 else f"in {duration(delta)}"


def short_json(value: Any, limit: int = 120) -> str:
    """Compact JSON, cut to ``limit`` characters."""
    text = value if isinstance(value, str) else dumps(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def pretty_json(value: Any) -> str:
    import json

    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def thousands(n: int | float | None) -> str:
    if n is None:
        return "—"
    return f"{n:,}"


FILTERS = {
    "utc": utc,
    "duration": duration,
    "relative": relative,
    "short_json": short_json,
    "pretty_json": pretty_json,
    "thousands": thousands,
}
