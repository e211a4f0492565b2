"""The monitor's settings: each checked before it is used, so one the monitor cannot honour
(NaN, an infinity, a negative, an absurd size, a word) is refused in one line naming it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigurationError
from ..reading import printable

#: What each number setting may be: (whole number?, lowest, highest, unit).
LIMITS: dict[str, tuple[bool, float, float, str]] = {
    "LABQUEUE_PER_PAGE": (True, 1, 500, "rows"),
    "LABQUEUE_STALE_AFTER": (False, 0.1, 30 * 86400, "seconds"),
    "LABQUEUE_REFRESH_MS": (True, 100, 3_600_000, "ms"),
    "LABQUEUE_HISTORY_SECONDS": (False, 1, 86400, "seconds"),
}


def _number(value: Any) -> float | None:
    """``value`` as a float (a number, or its text), or None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value) if not isinstance(value, str) or len(value) < 40 else None
    except (ValueError, OverflowError):
        return None


def check_number(name: str, value: Any, whole: bool, low: float, high: float, unit: str) -> Any:
    """``value`` if it is a number the monitor can honour (an int when ``whole``), else a
    ConfigurationError naming ``name``."""
    number = _number(value)
    if (
        number is None
        or not math.isfinite(number)
        or not low <= number <= high
        or (whole and not number.is_integer())
    ):
        kind = "a whole number" if whole else "a number"
        shown = printable(repr(value)[:60])
        raise ConfigurationError(
            f"{name} must be {kind} from {low:g} to {high:g} {unit}, not {shown}"
        )
    return int(number) if whole else number


def check_settings(
    config: Mapping[str, Any], names: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The monitor's number settings, checked and as numbers, and its namespace checked;
    ``names`` tells a setting by the name its user gave it (``--per-page``)."""
    names = names or {}
    checked = {k: check_number(names.get(k, k), config[k], *v) for k, v in LIMITS.items()}
    namespace = config["LABQUEUE_NAMESPACE"]
    if not isinstance(namespace, str) or not namespace:
        name = names.get("LABQUEUE_NAMESPACE", "LABQUEUE_NAMESPACE")
        shown = printable(repr(namespace)[:60])
        raise ConfigurationError(f"{name} must be a key prefix such as resque, not {shown}")
    return checked
