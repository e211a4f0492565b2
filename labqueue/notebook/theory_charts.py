"""Notebook 4's figures: Little's law, Erlang C against the measurements, the hockey stick.

(Open vs closed loop is the load test's own graph 5, :func:`loadtests.plots.open_vs_closed`.)

They take plain numbers and numpy arrays (the notebook reads them from a load-test run), so
nothing here depends on how the run was stored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from . import queueing
from .charts import projector, shown

SYNC, DEFERRED, THEORY, ARRIVED = "#d62728", "#1f77b4", "#555555", "#9467bd"


@dataclass(frozen=True)
class StepPoint:
    """One step of a run: what was offered, what came back."""

    offered: float  #: the realised arrival rate λ in the step, req/s
    achieved: float  #: good answers per second
    mean_s: float  #: mean latency, seconds
    p50_s: float
    p99_s: float


def drain_estimate(
    t: np.ndarray,
    departed: np.ndarray,
    waiting: np.ndarray,
    load_end: float,
    jobs: dict[str, tuple[np.ndarray, np.ndarray]],
    window: float = 3.0,
) -> Figure:
    """The FIFO drain-time estimate (jobs waiting ÷ jobs finished per second, over the last
    ``window`` s) against each job's real time from enqueued to finished, per queue
    (``jobs``: queue -> (enqueued, time in the system), seconds since the load started)."""
    with projector():
        fig, ax = plt.subplots(figsize=(12, 7))
        colors = {"email": "#2ca02c", "erp": "#ff7f0e"}
        for queue, (when, took) in jobs.items():
            ax.scatter(when, took, s=8, alpha=0.5, color=colors.get(queue, DEFERRED),
                       label=f"real: one `{queue}` job, enqueued → finished")  # fmt: skip
        out_rate = queueing.rate(t, departed, window)
        with np.errstate(divide="ignore", invalid="ignore"):
            estimate = np.where(out_rate > 0, waiting / out_rate, np.nan)
        ax.plot(t, estimate, color=THEORY, linestyle="--",
                label=f"estimate: jobs waiting ÷ jobs done per s (last {window:g} s)")  # fmt: skip
        ax.axvline(load_end, color="black", linestyle=":", linewidth=1.5)
        ax.text(load_end, 0.97, " load stops", transform=ax.get_xaxis_transform(), va="top")
        ax.set_ylim(bottom=0)
        ax.set_xlabel("when the job was enqueued (s since the load started)")
        ax.set_ylabel("time in the system (s)")
        ax.set_title("The FIFO drain-time estimate vs each job's real time", loc="left")
        ax.legend(loc="upper left", markerscale=3)
        fig.tight_layout()
    return shown(fig)


def erlang_vs_measured(
    service: float, workers: int, cs2: float, points: Sequence[StepPoint], top_rate: float
) -> Figure:
    """M/M/c and M/G/c mean latency against offered load, with the measured sync steps."""
    cap = queueing.capacity(service, workers)
    with projector():
        fig, ax = plt.subplots(figsize=(12, 7))
        lam = np.linspace(0.01, cap * 0.995, 400)
        mmc = [queueing.mmc_latency(x, service, workers) for x in lam]
        mgc = [queueing.mmc_latency(x, service, workers, cs2) for x in lam]
        ax.plot(lam, mmc, color=THEORY, linestyle="--", label="M/M/c, exponential service")
        ax.plot(lam, mgc, color=THEORY, label=f"M/G/c, our service (cs² = {cs2:.2f})")
        ceiling = service * 8  # past this the y axis would squash the interesting part
        under = [p for p in points if p.offered < cap]
        over = [p for p in points if p.offered >= cap]
        ax.plot(
            [p.offered for p in under],
            [p.mean_s for p in under],
            "o",
            color=SYNC,
            markersize=11,
            label="measured mean, below capacity",
        )
        ax.plot(
            [p.offered for p in over],
            [min(p.mean_s, ceiling * 0.97) for p in over],
            "^",
            color=SYNC,
            markersize=11,
            markerfacecolor="white",
            markeredgewidth=2,
            label="measured mean, past capacity",
        )
        for p in over:
            if p.mean_s > ceiling * 0.97:
                ax.annotate(f"{p.mean_s:.0f} s ↑", (p.offered, ceiling * 0.97), xytext=(0, -24),
                            textcoords="offset points", ha="center", color=SYNC)  # fmt: skip
        ax.axvline(cap, color=SYNC, linestyle=":", linewidth=1.5)
        ax.text(cap, 0.5, f" capacity\n {workers} ÷ {service:.3f} s\n = {cap:.2f}/s",
                transform=ax.get_xaxis_transform(), va="center", color=SYNC)  # fmt: skip
        ax.set_ylim(0, ceiling)
        ax.set_xlim(0, max(top_rate, cap) * 1.05)
        ax.set_xlabel("arrival rate λ (checkouts/s), as realised in each step")
        ax.set_ylabel("mean latency (s)")
        ax.set_title(
            f"Synchronous checkout as a queue: {workers} web workers, {service:.2f} s each",
            loc="left",
        )
        ax.legend(loc="upper left")
        fig.tight_layout()
    return shown(fig)


def hockey_stick(service: float, workers: Sequence[int], cs2: float, top_rate: float) -> Figure:
    """Mean latency against arrival rate for several worker counts."""
    with projector():
        fig, ax = plt.subplots(figsize=(12, 6.5))
        for c in workers:
            cap = queueing.capacity(service, c)
            lam = np.linspace(0.01, min(cap * 0.999, top_rate), 400)
            w = [queueing.mmc_latency(x, service, c, cs2) for x in lam]
            (line,) = ax.plot(lam, w, label=f"{c} workers (capacity {cap:.1f}/s)")
            if cap < top_rate:
                ax.axvline(cap, color=line.get_color(), linestyle=":", linewidth=1.2)
        ax.set_ylim(0, service * 8)
        ax.set_xlim(0, top_rate)
        ax.set_xlabel("arrival rate (checkouts/s)")
        ax.set_ylabel("mean latency (s)")
        ax.set_title(f"The hockey stick: M/G/c, {service:.2f} s per checkout", loc="left")
        ax.legend(loc="upper right")
        fig.tight_layout()
    return shown(fig)


def one_point(rate: float, workers: int, service: float, cs2: float, top_rate: float) -> Figure:
    """For the sliders: the curve for ``workers`` and where ``rate`` puts you on it."""
    fig = hockey_stick(service, [workers], cs2, top_rate)
    ax = fig.axes[0]
    w = queueing.mmc_latency(rate, service, workers, cs2)
    util = rate * service / workers
    if math.isinf(w):
        text = f"{rate:.1f}/s asks {util:.0%} of {workers} workers' time: the queue grows forever"
        ax.axvline(rate, color="black")
    else:
        text = f"{rate:.1f}/s keeps {workers} workers {util:.0%} busy: mean latency {w:.2f} s"
        ax.plot([rate], [min(w, service * 8)], "o", color="black", markersize=12)
    box = {"facecolor": "white", "alpha": 0.9, "edgecolor": "none"}
    ax.text(0.02, 0.95, text, transform=ax.transAxes, va="top", fontsize=14, bbox=box)
    return fig


def service_time(scenario: Any) -> tuple[float, float]:
    """Mean service time (s) and its squared coefficient of variation, from the checkout
    time the store itself measured (``server_ms``) for the good answers of the first step,
    where the load was lightest."""
    req = scenario.requests
    chosen = req.server_ms[(req.step == 0) & (req.ok == 1)] / 1000.0
    chosen = chosen[~np.isnan(chosen)]
    mean = float(np.mean(chosen))
    return mean, float(np.var(chosen) / mean**2)


def step_points(scenario: Any, summaries: Sequence[Any]) -> list[StepPoint]:
    """One StepPoint per step of a scenario, at the arrival rate the step realised (Poisson
    arrivals vary around the nominal rate), from its requests and its step summaries."""
    req = scenario.requests
    points = []
    for s in summaries:
        latency = req.latency_ms[req.step == s.step] / 1000.0
        mean = float(np.nanmean(latency)) if len(latency) else math.nan
        points.append(StepPoint(s.arrived, s.achieved, mean, s.p50_ms / 1000, s.p99_ms / 1000))
    return points
