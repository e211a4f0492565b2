"""The talk's graphs, drawn from a run's files (the runner and the notebooks share them).

    from loadtests import plots, results
    run = results.load_run("results/reference")
    plots.latency_over_time(run)       # 1. every request's latency over time, sync / deferred
    plots.throughput(run)              # 2. achieved vs offered, both modes
    plots.queue_depth(run)             # 3. the deferred queues filling and draining
    plots.latency_vs_load(run)         # 4. median and tail per step, both modes: the headline
    plots.open_vs_closed(run)          # 5. sync, open loop vs closed loop (coordinated omission)
    plots.when_it_happened(run)        # 6. per order: answer, email, ERP after the click
    plots.queue_latency(run)           # 7. the oldest waiting job's age per queue, and depth
    plots.pause_demo(run)              # 8. the store paused: open vs closed loop
    plots.erp_capacity(run)            # 9. an ERP that serves K at once: workers vs limit
    plots.save_all(run)                # them all as PNGs in the run's directory

Each function returns its matplotlib Figure. Sizes and fonts are for a projector.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from .plot_deferred import has_ages, has_orders, queue_latency, when_it_happened
from .plot_erpcap import erp_capacity, has_capacity
from .plot_latency import latency_over_time, latency_vs_load, step_tails
from .plot_pause import has_pause, pause_demo
from .plot_queues import queue_depth
from .plotstyle import (
    COLORS,
    capacity_label,
    projector,
    sync_capacity,
)
from .results import Run, ScenarioResult
from .summary import step_summaries

__all__ = [
    "FILES",
    "erp_capacity",
    "has_ages",
    "has_capacity",
    "has_orders",
    "has_pause",
    "latency_over_time",
    "latency_vs_load",
    "open_vs_closed",
    "pause_demo",
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
    "pause_demo": "8-coordinated-omission.png",  #: only when the run has pause, pause-closed
    "erp_capacity": "9-erp-capacity.png",  #: only when the run has the capacity scenarios
}


def _open_loop(run: Run, names: tuple[str, ...]) -> list[ScenarioResult]:
    return [run.scenarios[n] for n in names if n in run.scenarios]


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


def open_vs_closed(run: Run, open_name: str = "sync", closed_name: str = "sync-closed") -> Figure:
    """Graph 5: each step's tail (what its sample supports) against achieved throughput,
    sync checkout, open loop vs closed loop.

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
            tails = step_tails(res)  # the tail each step's sample supports
            x = [st.achieved for st in steps]
            y = [t[2] for t in tails]
            ax.plot(x, y, marker="o", markersize=10, color=color, label=label)
            below = name == closed_name  # closed-loop labels under their points, open above
            for i, (st, tail, xi, yi) in enumerate(zip(steps, tails, x, y, strict=True)):
                drop = -10 - 20 * (i % 2)  # closed-loop points crowd: stagger their labels
                ax.annotate(
                    f"{st.offered:g} {unit} ({tail[1]})",
                    (xi, yi),
                    xytext=(0, drop) if below else (6, 6),
                    textcoords="offset points",
                    va="top" if below else "bottom",
                    ha="center" if below else "left",
                    fontsize=12,
                    color=color,
                    annotation_clip=False,
                )
        right = max([line.get_xdata().max() for line in ax.get_lines()], default=1.0)
        ax.set_xlim(0, float(right) * 1.3)
        ax.set_xlabel("achieved throughput (successful answers/s)")
        ax.set_ylabel("tail latency (s)")
        ax.set_title("Same store, two workload models: a closed loop cannot build the queue")
        ax.set_ylim(bottom=-0.1 * ax.get_ylim()[1])
        ax.text(0.01, 0.8, "tail: p99 where a step has 100 requests or more, else p90",
                transform=ax.transAxes, ha="left", fontsize=12, color="gray")  # fmt: skip
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
        "pause_demo": pause_demo,
        "erp_capacity": erp_capacity,
    }
    no_open_loop = not {"sync", "deferred"} & set(run.scenarios)  # a capacity-only run, say
    skip = {
        "latency_over_time": no_open_loop,
        "throughput": no_open_loop,
        "queue_depth": no_open_loop,
        "latency_vs_load": no_open_loop,
        "open_vs_closed": "sync-closed" not in run.scenarios,
        "when_it_happened": not has_orders(run),
        "queue_latency": not has_ages(run),
        "pause_demo": not has_pause(run),
        "erp_capacity": not has_capacity(run),
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
