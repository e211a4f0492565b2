"""Graph 3: the deferred checkout's queues filling while arrivals outrun the workers, and
draining after the load stops (jobs waiting per queue; jobs enqueued vs processed)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .plotstyle import COLORS, offered_line, projector
from .results import Run, ScenarioResult
from .summary import drain_seconds


def queue_depth(run: Run, name: str = "deferred") -> Figure:
    """Graph 3: jobs waiting (top) and jobs enqueued vs processed (bottom) over time."""
    with projector():
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 9.5), sharex=True)
        res = run.scenarios.get(name)
        if res is None or not res.samples:
            top.text(
                0.5, 0.5, f"no sampler data for {name!r}", transform=top.transAxes, ha="center"
            )
            return fig
        _queue_panel(top, res)
        _jobs_panel(bottom, res)
        _mark_drain(top, bottom, res)
        fig.tight_layout()
    return fig


def _queue_panel(ax: Any, res: ScenarioResult) -> None:
    s = res.samples
    t = res.rel(s["t"])
    queues = sorted(k for k in s if k.startswith("queue_"))
    if queues:
        ax.stackplot(
            t,
            *[s[k] for k in queues],
            step="post",
            alpha=0.7,
            colors=["#6baed6", "#fd8d3c", "#74c476", "#9e9ac8"][: len(queues)],
            labels=[f"waiting on queue '{k[6:]}'" for k in queues],
        )
    else:
        ax.fill_between(t, s["queued"], step="post", alpha=0.7, label="jobs waiting")
    ax.set_ylabel("jobs waiting")
    ax.set_ylim(bottom=0, top=max(10.0, float(np.nanmax(s["queued"]))) * 1.15)
    ax.set_title(
        f"Deferred checkout: the queues absorb the burst, then drain "
        f"(at most {int(np.nanmax(s['queued']))} jobs waiting)"
    )
    twin = offered_line(ax, res)
    handles, labels = ax.get_legend_handles_labels()
    h2, l2 = twin.get_legend_handles_labels()
    ax.legend(handles + h2, labels + l2, loc="upper left")


def _jobs_panel(ax: Any, res: ScenarioResult) -> None:
    s = res.samples
    t = res.rel(s["t"])
    ax.plot(t, s["enqueued"], color=COLORS["enqueued"], label="jobs enqueued (by the web)")
    ax.plot(t, s["processed"], color=COLORS["processed"], label="jobs processed (by workers)")
    if np.nanmax(s["failed"]) > 0:
        ax.plot(t, s["failed"], color=COLORS["failed"], label="jobs failed")
    ax.set_ylabel("jobs since start")
    ax.set_xlabel("time since load started (s)")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left")


def _mark_drain(top: Any, bottom: Any, res: ScenarioResult) -> None:
    for ax in (top, bottom):
        ax.axvline(res.load_end, color="black", linewidth=1.5, linestyle=":")
    top.text(
        res.load_end,
        0.98,
        "load stops ",
        transform=top.get_xaxis_transform(),
        va="top",
        ha="right",
        fontsize=13,
    )
    drain = drain_seconds(res)
    if drain:
        at = res.load_end + drain
        for ax in (top, bottom):
            ax.axvline(at, color=COLORS["processed"], linewidth=1.5, linestyle=":")
        top.text(
            at,
            0.98,
            f"all jobs done\n{drain:.0f} s later ",
            ha="right",
            va="top",
            transform=top.get_xaxis_transform(),
            fontsize=13,
            color=COLORS["processed"],
        )
