"""The store's errors, under a root of their own.

StoreError                anything the toy store raises
├── BadInput              a checkout body the store refuses (answer 400, nothing written)
├── BadSetting            a setting the store or a fake cannot honour (also labqueue's
│                         ConfigurationError, as any bad setting is)
├── StepFailed            the mail server or the ERP failed a step (answer 502 in sync mode),
│                         or Redis refused the jobs (step "enqueue", answer 503)
└── OrderNotFound         no order with that id

The store is an application built on labqueue, not a part of it: its errors are not
:class:`labqueue.LabqueueError` (but for a bad setting), so ``except LabqueueError``
around an enqueue catches labqueue's failures only, as it would in any other application.
"""

from __future__ import annotations

import reprlib
from typing import Any

from labqueue.errors import ConfigurationError

#: Characters of a client's value shown back in an error, before "…".
MAX_ECHO = 80

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict = 2, 4, 4
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = MAX_ECHO


def shown(value: Any) -> str:
    """``value`` as Python shows it, cut to MAX_ECHO characters and "…": never a 10 MB field
    echoed whole, never a deep structure walked to its end, never a raw control character."""
    if isinstance(value, str):
        text = repr(value[: MAX_ECHO + 1])
    else:
        try:
            text = _REPR.repr(value)
        except ValueError:  # an int beyond Python's digit limit
            text = f"<{type(value).__name__} too large to show>"
    return text if len(text) <= MAX_ECHO else text[:MAX_ECHO] + "…"


def field_name(key: Any) -> str:
    """A client's key as the ``field`` of an answer: as sent when it is short, printable and
    not empty, else as :func:`shown` shows it (``''``, ``'a\\nb'``, cut)."""
    if isinstance(key, str) and key and key.isprintable() and len(key) <= MAX_ECHO:
        return key
    return shown(key)


class StoreError(Exception):
    """The root of the toy store's errors."""


class BadSetting(StoreError, ConfigurationError):
    """A setting the store or a fake service cannot honour; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class BadInput(StoreError):
    """A checkout request the store refuses; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class StepFailed(StoreError):
    """A slow step (``send_email``, ``erp_record_sale``, ``erp_decrease_inventory``) failed."""

    def __init__(self, step: str, cause: str, order_id: int | None = None) -> None:
        super().__init__(f"{step} failed for order {order_id}: {cause}")
        self.step = step
        self.cause = cause
        self.order_id = order_id
        #: per-step timings of the checkout it broke (sync path), for the 502 answer
        self.timings_ms: dict[str, float] = {}


class OrderNotFound(StoreError):
    """No order has that id."""
