"""The talk's graphs, drawn from a run's files (the runner and the notebooks share them).

    from loadtests import plots, results
    run = results.load_run("results/reference")
    plots.latency_over_time(run)       # 1. p50/p95/p99 per second, offered rate, sync | deferred
    plots.throughput(run)              # 2. achieved vs offered, both modes
    plots.queue_depth(run)             # 3. the deferred queues filling and draining
    plots.latency_vs_load(run)         # 4. p50 and p99 per step, both modes: the headline
    plots.open_vs_closed(run)          # 5. sync, open loop vs closed loop (coordinated omission)
    plots.when_it_happened(run)        # 6. per order: answer, email, ERP after the click
    plots.queue_latency(run)           # 7. the oldest waiting job's age per queue, and depth
    plots.save_all(run)                # them all as PNGs in the run's directory

Each function returns its matplotlib Figure. Sizes and fonts are for a projector.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .plot_deferred import has_ages, has_orders, queue_latency, when_it_happened
from .plot_queues import queue_depth
from .plotstyle import (
    COLORS,
    capacity_label,
    fmt_s,
    offered_line,
    projector,
    sync_capacity,
)
from .results import Run, ScenarioResult, per_bin
from .summary import step_summaries

__all__ = [
    "FILES",
    "has_ages",
    "has_orders",
    "latency_over_time",
    "latency_vs_load",
    "open_vs_closed",
    "projector",
    "queue_depth",
    "queue_latency",
    "save_all",
    "sync_capacity",
    "throughput",
    "when_it_happened",
]

FILES = {
    "latency_over_time": "1-latency-over-time.png",
    "throughput": "2-throughput.png",
    "queue_depth": "3-queue-depth.png",
    "latency_vs_load": "4-latency-vs-load.png",
    "open_vs_closed": "5-open-vs-closed-loop.png",  #: only when the run has sync-closed
    "when_it_happened": "6-when-did-it-happen.png",  #: only when the run has orders.csv
    "queue_latency": "7-queue-latency.png",  #: only when the sampler read the ages
}


def _open_loop(run: Run, names: tuple[str, ...]) -> list[ScenarioResult]:
    return [run.scenarios[n] for n in names if n in run.scenarios]


def _latency_panel(ax: Any, res: ScenarioResult, timeout_s: float) -> None:
    req = res.requests
    t = res.rel(req.intended)
    bins = per_bin(t, req.latency_ms / 1000.0)
    for q in ("p50", "p95", "p99"):
        ax.plot(bins["t"] + 0.5, bins[q], color=COLORS[q], label=q)
    failed = req.ok == 0
    if failed.any():
        timed_out = bool((req.status[failed] == 0).all())
        what = "timed out" if timed_out else "failed"
        ax.scatter(
            t[failed],
            req.latency_ms[failed] / 1000.0,
            marker="x",
            s=30,
            color="black",
            alpha=0.6,
            label=f"{what} ({int(failed.sum())} requests)",
            zorder=3,
        )
    ax.axvline(res.load_end, color="black", linewidth=1.5, linestyle=":")
    ax.text(
        res.load_end,
        1.0,
        " load stops",
        transform=ax.get_xaxis_transform(),
        va="top",
        ha="left",
        fontsize=12,
    )
    worst = np.nanmax(bins["p99"]) if len(bins["p99"]) else float("nan")
    ax.set_title(f"{res.scenario.mode} checkout (worst p99 per second: {fmt_s(worst)})")
    ax.set_xlabel("time since load started (s)")
    if res.scenario.mode == "sync" and timeout_s:
        ax.axhline(timeout_s, color="gray", linewidth=1, linestyle="-.")
        ax.text(
            0, timeout_s, f" client timeout {timeout_s:g} s", va="bottom", fontsize=12, color="gray"
        )


def _note_if_flat(ax: Any, twin: Any, res: ScenarioResult) -> None:
    """A line too close to the floor to read at the shared scale gets its figures in words."""
    lat = res.requests.latency_ms
    if not len(lat):
        return
    p50, p99 = np.nanpercentile(lat, 50) / 1000, np.nanpercentile(lat, 99) / 1000
    if p99 < 0.05 * ax.get_ylim()[1]:
        text = f"flat along the floor:\np50 {fmt_s(p50)}, p99 {fmt_s(p99)}\nat every step"
        twin.text(
            0.55,
            0.45,
            text,
            transform=twin.transAxes,
            zorder=10,
            ha="center",
            fontsize=17,
            color=COLORS[res.scenario.mode],
            bbox={"facecolor": "white", "edgecolor": COLORS[res.scenario.mode]},
        )


def latency_over_time(run: Run, names: tuple[str, ...] = ("sync", "deferred")) -> Figure:
    """Graph 1: latency (from the intended start) per second, sync and deferred side by side."""
    results = _open_loop(run, names)
    with projector():
        fig, axes = plt.subplots(
            1, max(1, len(results)), figsize=(17, 6.5), sharey=True, squeeze=False
        )
        twins = []
        for ax, res in zip(axes[0], results, strict=False):
            _latency_panel(ax, res, res.scenario.timeout)
            twins.append(offered_line(ax, res))
            handles, labels = ax.get_legend_handles_labels()
            h2, l2 = twins[-1].get_legend_handles_labels()
            ax.legend(handles + h2, labels + l2, loc="upper left", bbox_to_anchor=(0, 0.93))
        axes[0][0].set_ylabel("latency (s), from intended start")
        axes[0][0].set_ylim(bottom=0)
        for ax, twin, res in zip(axes[0], twins, results, strict=False):
            _note_if_flat(ax, twin, res)
        fig.suptitle("Latency per second as offered load steps up", fontsize=20)
        fig.tight_layout()
    return fig


def throughput(run: Run, names: tuple[str, ...] = ("sync", "deferred")) -> Figure:
    """Graph 2: good answers per second against offered requests per second, per step."""
    results = _open_loop(run, names)
    with projector():
        fig, ax = plt.subplots(figsize=(10, 7))
        top = 1.0
        for res in results:
            steps = step_summaries(res)
            x = [s.offered for s in steps]
            y = [s.achieved for s in steps]
            top = max(top, *x, *y)
            ax.plot(
                x,
                y,
                marker="o",
                markersize=10,
                color=COLORS[res.scenario.mode],
                label=f"{res.scenario.mode} checkout",
            )
        ax.plot(
            [0, top],
            [0, top],
            color="gray",
            linestyle="--",
            linewidth=1.5,
            label="achieved = offered",
        )
        if results and results[0].scenario.arrival == "poisson":
            steps = step_summaries(results[0])
            ax.scatter(
                [st.offered for st in steps],
                [st.arrived for st in steps],
                marker="_",
                s=900,
                linewidths=3,
                color="black",
                zorder=4,
                label="arrived (Poisson: around the rate)",
            )
        capacity = sync_capacity(run)
        if capacity:
            top = max(top, capacity)
            ax.axhline(capacity, color=COLORS["sync"], linestyle=":", linewidth=1.5)
            ax.text(
                top,
                capacity - 0.07 * top,
                capacity_label(run, capacity),
                va="top",
                ha="right",
                fontsize=13,
                color=COLORS["sync"],
            )
        ax.set_xlim(0, top * 1.08)
        ax.set_ylim(0, top * 1.08)
        ax.set_xlabel("offered load (requests/s)")
        ax.set_ylabel("achieved (successful answers/s)")
        ax.set_title("Throughput: what the store served vs what was asked")
        ax.legend(loc="upper left")
        fig.tight_layout()
    return fig


def _mark_unreliable(ax: Any, steps: list[Any]) -> None:
    """Ring the points of steps where Locust itself was short of CPU."""
    bad = [st for st in steps if st.unreliable]
    if bad:
        ax.scatter(
            [st.offered for st in bad],
            [st.p99_ms / 1000.0 for st in bad],
            s=400,
            facecolors="none",
            edgecolors="black",
            linewidths=2,
            zorder=4,
            label="unreliable: Locust CPU > 90%",
        )


def latency_vs_load(run: Run, names: tuple[str, ...] = ("sync", "deferred")) -> Figure:
    """Graph 4: p50 and p99 latency per step against offered load, both modes."""
    with projector():
        fig, ax = plt.subplots(figsize=(12, 7.5))
        for res in _open_loop(run, names):
            steps = step_summaries(res)
            x = [s.offered for s in steps]
            color = COLORS[res.scenario.mode]
            for q, style in (("p50", "-"), ("p99", "--")):
                y = [getattr(s, f"{q}_ms") / 1000.0 for s in steps]
                ax.plot(
                    x,
                    y,
                    style,
                    marker="o",
                    markersize=9,
                    color=color,
                    label=f"{res.scenario.mode} {q}",
                )
            _mark_unreliable(ax, steps)
            for st in steps:
                if st.timeouts:
                    ax.annotate(
                        f"{st.timeouts} of {st.sent} timed out\n(p99 capped there)",
                        (st.offered, st.p99_ms / 1000.0),
                        xytext=(-15, 0),
                        textcoords="offset points",
                        ha="right",
                        va="center",
                        fontsize=12,
                        color=color,
                    )
            worst = max((s.p99_ms for s in steps), default=float("nan"))
            if res.scenario.mode == "deferred":
                ax.annotate(
                    f"deferred: p99 ≤ {fmt_s(worst / 1000)} at every step",
                    (x[-1], 0),
                    xytext=(0, 30),
                    textcoords="offset points",
                    ha="right",
                    fontsize=13,
                    color=color,
                )
        capacity = sync_capacity(run)
        if capacity:
            ax.axvline(capacity, color="gray", linestyle=":", linewidth=1.5)
            ax.text(
                capacity,
                0.97,
                f" sync capacity ≈ {capacity:.1f}/s",
                transform=ax.get_xaxis_transform(),
                va="top",
                fontsize=12,
            )
        ax.set_xlabel("offered load (requests/s)")
        ax.set_ylabel("latency (s), from intended start")
        ax.set_title("Checkout latency vs load: sync hits a wall, deferred stays flat")
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left")
        fig.tight_layout()
    return fig


def open_vs_closed(run: Run, open_name: str = "sync", closed_name: str = "sync-closed") -> Figure:
    """Graph 5: p99 against achieved throughput, sync checkout, open loop vs closed loop.

    Closed-loop users wait for each answer before sending again, so they never push the
    store past its capacity and never see the queue that shoppers arriving on their own
    schedule (open loop) wait in."""
    with projector():
        fig, ax = plt.subplots(figsize=(12, 7.5))
        for name, color, label, unit in (
            (open_name, COLORS["sync"], "open loop: arrivals on a schedule", "req/s"),
            (closed_name, COLORS["closed"], "closed loop: users wait, think 1 s", "users"),
        ):
            res = run.scenarios.get(name)
            if res is None:
                continue
            steps = step_summaries(res)
            x = [st.achieved for st in steps]
            y = [st.p99_ms / 1000.0 for st in steps]
            ax.plot(x, y, marker="o", markersize=10, color=color, label=f"{label} (p99)")
            below = name == closed_name  # closed-loop labels under their points, open above
            for st, xi, yi in zip(steps, x, y, strict=True):
                ax.annotate(
                    f"{st.offered:g} {unit}",
                    (xi, yi),
                    xytext=(6, -8 if below else 6),
                    textcoords="offset points",
                    va="top" if below else "bottom",
                    fontsize=12,
                    color=color,
                )
        right = max([line.get_xdata().max() for line in ax.get_lines()], default=1.0)
        ax.set_xlim(0, float(right) * 1.2)
        ax.set_xlabel("achieved throughput (successful answers/s)")
        ax.set_ylabel("p99 latency (s)")
        ax.set_title("Same store, two load generators: the closed loop hides the queue")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left")
        fig.tight_layout()
    return fig


def save_all(run: Run, directory: Path | None = None) -> list[Path]:
    """Draw the graphs into ``directory`` (default: the run's); returns the files."""
    directory = Path(directory or run.directory)
    out = []
    drawers = {
        "latency_over_time": latency_over_time,
        "throughput": throughput,
        "queue_depth": queue_depth,
        "latency_vs_load": latency_vs_load,
        "open_vs_closed": open_vs_closed,
        "when_it_happened": when_it_happened,
        "queue_latency": queue_latency,
    }
    skip = {
        "open_vs_closed": "sync-closed" not in run.scenarios,
        "when_it_happened": not has_orders(run),
        "queue_latency": not has_ages(run),
    }
    for key, filename in FILES.items():
        if skip.get(key):
            continue
        fig = drawers[key](run)
        path = directory / filename
        fig.savefig(path)
        plt.close(fig)
        out.append(path)
    return out
