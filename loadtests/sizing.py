"""How many queue workers a load needs: Little's law on the workers.

A job that keeps a worker busy S seconds, arriving λ times a second, keeps λ × S workers
busy on average (Little's law, L = λW, with the jobs being run as what is inside). Workers
that are busy all the time cannot absorb a burst, and at 100% the queue grows without
bound, so size for a target utilisation ρ below 1 (0.7 leaves 30% for the bursts of
Poisson arrivals and the jitter of the services)::

    workers ≥ orders/s × worker-seconds of jobs per order ÷ ρ

per queue: a worker on ``erp`` alone never helps ``email``, and a worker taking both in
strict priority order serves ``email`` first, so one shared pool starves ``erp``.

    from loadtests import results, sizing
    res = results.load_run()["backlog"]
    s = sizing.size(6.0, sizing.work_per_order(res.jobs), 0.7, "measured in backlog")
    s.workers(), s.explain()
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: The busy share the sized workers aim at.
TARGET_UTILISATION = 0.7
#: Seconds per job beyond the service's own latency (the job reads the order, connects,
#: logs): a guess used only when no run measured it.
NOMINAL_OVERHEAD = 0.05


@dataclass(frozen=True)
class Sizing:
    """Workers per queue for ``rate`` orders/s, each order costing ``work[queue]`` seconds
    of worker time on each queue, at ``utilisation``; ``source`` says where ``work`` came
    from."""

    rate: float
    work: dict[str, float]
    utilisation: float
    source: str
    orders_measured: int = 0

    def busy(self) -> dict[str, float]:
        """Workers kept busy on average: λ × S (Little's law)."""
        return {q: self.rate * s for q, s in self.work.items()}

    def workers(self) -> dict[str, int]:
        """λ × S ÷ ρ, rounded up (at least one per queue)."""
        return {q: max(1, math.ceil(b / self.utilisation - 1e-9)) for q, b in self.busy().items()}

    def total(self) -> int:
        return sum(self.workers().values())

    def explain(self) -> list[str]:
        """One line per queue: the formula with this run's numbers."""
        return [
            f"{q}: {self.rate:g} orders/s × {self.work[q]:.3f} s per order ÷ "
            f"{self.utilisation:g} = {b / self.utilisation:.2f} → {n} workers"
            for (q, b), n in zip(self.busy().items(), self.workers().values(), strict=True)
        ]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["workers"] = self.workers()
        return data


def size(
    rate: float,
    work: dict[str, float],
    utilisation: float = TARGET_UTILISATION,
    source: str = "",
    orders: int = 0,
) -> Sizing:
    if not 0 < utilisation <= 1:
        raise ValueError(f"target utilisation must be in (0, 1], not {utilisation!r}")
    return Sizing(rate, dict(work), utilisation, source, orders)


def nominal_work(email_latency: float, erp_latency: float) -> dict[str, float]:
    """Worker-seconds per order from the services' latencies: one email, two ERP calls."""
    return {
        "email": email_latency + NOMINAL_OVERHEAD,
        "erp": 2 * (erp_latency + NOMINAL_OVERHEAD),
    }


def work_per_order(jobs: Any) -> tuple[dict[str, float], int]:
    """Measured worker-seconds per order on each queue, from a jobs table (``jobs.csv``):
    every run's ``finished - started`` on the queue, over the orders the jobs belong to.
    Returns ``({queue: seconds}, orders)``; empty when there are no jobs."""
    if jobs is None or not len(jobs):
        return {}, 0
    orders = len({o for o in jobs.order_id if o})
    if not orders:
        return {}, 0
    run = jobs.finished - jobs.started
    out = {}
    for queue in sorted(set(jobs.queue)):
        mine = jobs.queue == queue
        out[str(queue)] = float(np.nansum(run[mine])) / orders
    return out, orders


#: Scenarios whose jobs a later ``sized`` scenario measures its work per order on, in order.
MEASURED_ON = ("backlog", "deferred")
#: Fewer orders than this measured: use the nominal figures instead.
MIN_ORDERS = 20


def for_scenario(
    run_dir: Path,
    ran: list[str],
    rate: float,
    utilisation: float,
    latencies: tuple[float, float],
) -> Sizing:
    """The sizing of a scenario at ``rate`` orders/s: from the work per order measured in
    this run's ``backlog`` (else ``deferred``) scenario when one ran, else the nominal
    work of ``latencies`` (email, ERP)."""
    from .results import JOB_COLUMNS, load_table

    for name in MEASURED_ON:
        if name not in ran:
            continue
        work, orders = work_per_order(load_table(run_dir / name / "jobs.csv", JOB_COLUMNS))
        if {"email", "erp"} <= set(work) and orders >= MIN_ORDERS:
            return size(rate, work, utilisation, f"measured in {name} ({orders} orders)", orders)
    nominal = nominal_work(*latencies)
    return size(rate, nominal, utilisation, "nominal: the services' latencies + 50 ms per job")
