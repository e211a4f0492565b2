"""The fluid model of a capacity run's burst, against what the run measured.

While ERP jobs arrive at λ per second (counted from the run's own ``jobs.csv``: one job on
the ``erp`` queue is one ERP call) and the ERP serves μ per second (the calls/s the capacity
table shows), the backlog in Redis grows at λ - μ: its peak is about (λ - μ) × the burst's
length, and it drains in about peak ÷ μ once the burst ends.

    model = fluid.model(res, erpcap.figures(res))
    print(fluid.sentence([model, ...]))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .erpcap import ErpFigures
from .results import ScenarioResult


@dataclass(frozen=True)
class Fluid:
    """One run's burst: the fluid model's peak and drain next to the measured ones."""

    name: str
    arrivals_per_s: float  #: λ, ERP jobs enqueued per second over the burst
    served_per_s: float  #: μ, ERP calls answered per second (the table's)
    burst: float  #: s from the first ERP job's enqueue to the last one's
    peak: float  #: the model's most jobs waiting in Redis, (λ - μ) × burst
    drain: float  #: the model's s after the load stopped until the backlog is gone
    measured_peak: float  #: the most ERP jobs waiting in Redis (queue + parked)
    measured_drain: float  #: the summary's drain, s after the load stopped (nan: none)


def predict(lam: float, mu: float, burst: float, after: float) -> tuple[float, float]:
    """(peak, drain): the backlog at the burst's end, and how long after the load stopped
    (``after`` s past the burst's last arrival) it is gone; no backlog when λ ≤ μ."""
    peak = max(lam - mu, 0.0) * burst
    return peak, max(peak / mu - after, 0.0)


def model(res: ScenarioResult, fig: ErpFigures) -> Fluid | None:
    """The fluid model of ``res``'s burst (None: the run kept no jobs.csv, or under two ERP
    jobs)."""
    jobs = res.jobs
    if jobs is None or not len(jobs):
        return None
    erp = jobs.where(jobs.columns["queue"] == "erp")
    return of_arrivals(res.rel(np.asarray(erp.columns["enqueued"], dtype=float)),
                       res.load_end, fig)  # fmt: skip


def of_arrivals(enqueued: np.ndarray, load_end: float, fig: ErpFigures) -> Fluid | None:
    """The fluid model of ERP jobs enqueued at ``enqueued`` (s after t0), the load stopping
    at ``load_end``, served at ``fig``'s calls/s (None: under two arrivals)."""
    if len(enqueued) < 2:
        return None
    first, last = float(np.min(enqueued)), float(np.max(enqueued))
    burst = last - first
    lam = (len(enqueued) - 1) / burst  # the arrivals after the first, over the burst
    peak, drain = predict(lam, fig.served_per_s, burst, load_end - last)
    measured = float("nan") if fig.drain is None else float(fig.drain)
    return Fluid(fig.name, lam, fig.served_per_s, burst, peak, drain, fig.waiting_max, measured)


def sentence(models: list[Fluid]) -> str:
    """How close the fluid model came, one run a clause (Markdown)."""
    if not models:
        return ""
    parts = [
        f"{m.name} (λ {m.arrivals_per_s:.1f}, μ {m.served_per_s:.1f} jobs/s over "
        f"{m.burst:.1f} s): predicted a peak of {m.peak:.0f} jobs and a {m.drain:.1f} s drain; "
        f"measured {m.measured_peak:.0f} and {m.measured_drain:.1f} s"
        for m in models
    ]
    return "**The fluid model of the burst:** " + "; ".join(parts) + "."
