"""The store's errors, under a root of their own.

StoreError                anything the toy store raises
├── BadInput              a checkout body the store refuses (answer 400, nothing written)
├── StepFailed            the mail server or the ERP failed a step (answer 502 in sync mode),
│                         or Redis refused the jobs (step "enqueue", answer 503)
└── OrderNotFound         no order with that id

The store is an application built on labqueue, not a part of it: its errors are not
:class:`labqueue.LabqueueError`, so ``except LabqueueError`` around an enqueue catches
labqueue's failures only, as it would in any other application.
"""

from __future__ import annotations


class StoreError(Exception):
    """The root of the toy store's errors."""


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
