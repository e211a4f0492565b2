"""Shared looks of the graphs: projector-sized fonts, colours, and small drawing helpers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from .results import Run, ScenarioResult

COLORS = {
    "sync": "#d62728",
    "deferred": "#1f77b4",
    "closed": "#9467bd",
    "p50": "#2ca02c",
    "p95": "#ff7f0e",
    "p99": "#d62728",
    "offered": "#555555",
    "enqueued": "#9467bd",
    "processed": "#2ca02c",
    "failed": "#d62728",
}
STYLE = {
    "font.size": 15,
    "axes.titlesize": 18,
    "axes.labelsize": 16,
    "legend.fontsize": 13,
    "xtick.labelsize": 14,
    "ytick.labelsize": 14,
    "lines.linewidth": 2.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "savefig.bbox": "tight",
}


@contextmanager
def projector() -> Iterator[None]:
    """Projector sizes for the figures drawn inside, keeping pyplot's interactive flag as the
    figures left it: a notebook backend turns it on at the first figure, and rc_context alone
    would switch it off again, so a notebook's later figures would not show."""
    with plt.rc_context(STYLE):
        yield
        interactive = plt.isinteractive()
    plt.interactive(interactive)


def offered_line(ax: Any, res: ScenarioResult) -> Any:
    """The offered load as a step line on a right-hand axis."""
    twin = ax.twinx()
    bounds = res.scenario.step_bounds()
    xs = [b[0] for b in bounds] + [bounds[-1][1]]
    ys = [s.rate if res.scenario.loop == "open" else s.users for s in res.scenario.steps]
    twin.step(
        xs,
        [*ys, ys[-1]],
        where="post",
        color=COLORS["offered"],
        linestyle="--",
        linewidth=2,
        label="offered load",
    )
    unit = "req/s" if res.scenario.loop == "open" else "users"
    twin.set_ylabel(f"offered load ({unit})", color=COLORS["offered"])
    twin.set_ylim(0, max(ys) * 1.15)
    twin.grid(False)
    return twin


def fmt_s(seconds: float) -> str:
    if np.isnan(seconds):
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def capacity_label(run: Run, capacity: float) -> str:
    workers = (run.meta.get("settings") or {}).get("web_workers")
    seconds = workers / capacity if workers else float("nan")
    return f"sync capacity = {workers} web workers ÷ {seconds:.3f} s = {capacity:.2f}/s"


def mean_service_s(res: ScenarioResult) -> float | None:
    """The sync checkout's mean service time (s) at the lowest step, where nothing queued:
    the store's own measure (``server_ms``), else the client's response time."""
    req = res.requests
    first = (req.step == 0) & (req.ok == 1)
    for column in (req.server_ms, req.response_ms):
        chosen = column[first]
        chosen = chosen[~np.isnan(chosen)]
        if len(chosen):
            return float(np.mean(chosen)) / 1000.0
    return None


def sync_capacity(run: Run) -> float | None:
    """c ÷ mean service time: web workers ÷ the sync checkout's mean time at the lowest
    step (checkouts/s). The one capacity figure the graphs, notebooks and README use."""
    res = run.scenarios.get("sync")
    workers = (run.meta.get("settings") or {}).get("web_workers")
    if res is None or not workers or not len(res.requests):
        return None
    seconds = mean_service_s(res)
    return workers / seconds if seconds else None
