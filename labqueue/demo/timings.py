"""What a checkout answers: its order, and the milliseconds each of its steps took."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

#: Every key of ``timings_ms``, always present (0.0 for a step the mode does not run).
TIMING_KEYS = (
    "insert_order",
    "insert_items",
    "render_receipt",
    "send_email",
    "erp_record_sale",
    "erp_decrease_inventory",
    "enqueue",
    "total",
)


class Timings:
    """Milliseconds per step, from the moment the object is made."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.ms: dict[str, float] = dict.fromkeys(TIMING_KEYS, 0.0)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = round((time.perf_counter() - t0) * 1000, 3)

    def finish(self) -> dict[str, float]:
        self.ms["total"] = round((time.perf_counter() - self.started) * 1000, 3)
        return self.ms


@dataclass
class CheckoutResult:
    order_id: int
    mode: str
    status: str
    total_cents: int
    receipt_html: str
    timings_ms: dict[str, float]
    jobs: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "order_id": self.order_id,
            "mode": self.mode,
            "status": self.status,
            "total": self.total_cents / 100,
            "total_cents": self.total_cents,
            "receipt_html": self.receipt_html,
            "timings_ms": self.timings_ms,
        }
        if self.mode == "deferred":
            out["jobs"] = self.jobs
        return out
