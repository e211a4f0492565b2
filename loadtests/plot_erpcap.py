"""Graph 9: the ERP's capacity. One column per capacity run (K ERP workers, 4K, 4K limited
to K ERP jobs): on top, the calls inside the ERP over time (in service, and waiting in its
line), from the ERP's own log; below, the ERP jobs waiting in Redis, from the sampler: in the
``erp`` queue, and parked by the limit (out of the queue until a slot frees), stacked. Same
scales throughout, so the runs compare at a glance."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .erpcap import PARKED, QUEUE, RUNS, ErpFigures, erp_calls, figures, inside, workers_label
from .plot_deferred import QUEUE_COLORS, caption
from .plotstyle import fmt_s, projector
from .results import Run, ScenarioResult

#: Colours of the calls inside the ERP: served, and waiting in its line.
IN_SERVICE = "#2ca02c"
WAITING = "#d62728"
#: Colour of the ERP jobs the limit parked (in Redis, out of the erp queue).
PARKED_COLOR = "#8c564b"
CAPTION = (
    "The ERP serves K calls at once whatever stands in front of it: 4K workers serve hardly "
    "more calls per second than K (the titles say how many), the extra ones only wait inside "
    "the ERP (red), each call taking longer. With the limit the ERP holds K, nobody waits "
    "inside it, and the burst waits in Redis instead, parked by the limit (brown) rather "
    "than in the erp queue: visible in labqueue stats, the monitor and /metrics, holding no "
    "worker."
)
NO_RUNS = (
    "This run has no capacity scenarios with the ERP's call log. Run "
    "`python -m loadtests --scenarios capacity`."
)
#: Seconds between the points of the "inside the ERP" curves.
GRID_S = 0.1


def has_capacity(run: Run) -> bool:
    """Whether graph 9 has something to show: a capacity run with the ERP's log."""
    return any(n in run.scenarios and erp_calls(run.scenarios[n]) is not None for n in RUNS)


def _inside_panel(ax: Any, res: ScenarioResult, fig: ErpFigures, end: float) -> None:
    calls = erp_calls(res)
    if calls is None:
        ax.text(0.5, 0.5, "no ERP log", transform=ax.transAxes, ha="center", fontsize=14)
        return
    times = np.arange(0.0, end, GRID_S)
    in_service, waiting = inside(calls, res.t0, times)
    ax.stackplot(
        times, in_service, waiting, colors=(IN_SERVICE, WAITING), alpha=0.8, step="post",
        labels=("in service", "waiting inside the ERP"),
    )  # fmt: skip
    if fig.capacity:
        ax.axhline(fig.capacity, color="black", linestyle="--", linewidth=1.5)
        ax.text(end, fig.capacity, f"capacity {fig.capacity} ", ha="right", va="bottom",
                fontsize=14)  # fmt: skip
    ax.axvline(res.load_end, color="black", linewidth=1.5, linestyle=":")
    ax.set_title(
        f"{workers_label(fig)}\nERP served {fig.served_per_s:.1f} calls/s\n"
        f"wait inside it: mean {fmt_s(fig.wait_mean)}",
        fontsize=15,
    )


def _queue_panel(ax: Any, res: ScenarioResult, fig: ErpFigures) -> None:
    """The ERP jobs waiting in Redis: in the erp queue and, stacked on it, parked."""
    s = res.samples
    if QUEUE in s:
        layers = [np.nan_to_num(s[QUEUE])]
        if PARKED in s:
            layers.append(np.nan_to_num(s[PARKED]))
        ax.stackplot(
            res.rel(s["t"]), *layers, colors=(QUEUE_COLORS["erp"], PARKED_COLOR)[: len(layers)],
            labels=("in the erp queue", "parked by the limit (in Redis)")[: len(layers)],
            alpha=0.8, step="post",
        )  # fmt: skip
    ax.axvline(res.load_end, color="black", linewidth=1.5, linestyle=":")
    oldest = f"oldest job\nat worst {fmt_s(fig.age_max)}"
    if PARKED not in s and fig.limit:
        oldest = f"oldest queued job\nat worst {fmt_s(fig.age_max)}\n(parked jobs\nnot sampled)"
    # top left: the burst builds from the left, so its peak (by the end of the load) is clear
    ax.text(0.03, 0.95, oldest, transform=ax.transAxes, ha="left", va="top", fontsize=14)


def _legend(axes: Any) -> tuple[list[Any], list[str]]:
    """The legend's entries: inside the ERP (top row), then in Redis (the bottom row's
    fullest panel), each label once."""
    top_handles, top_labels = axes[0][0].get_legend_handles_labels()
    handles, labels = list(top_handles), list(top_labels)
    bottom = max((ax.get_legend_handles_labels() for ax in axes[1]), key=lambda hl: len(hl[1]))
    for handle, label in zip(*bottom, strict=True):
        if label not in labels:
            handles.append(handle)
            labels.append(label)
    return handles, labels


def _end(rows: list[ScenarioResult]) -> float:
    """Seconds after t0 the graph shows: until the last ERP call and the last sample."""
    end = max(r.load_end for r in rows)
    for res in rows:
        calls = erp_calls(res)
        if calls is not None:
            end = max(end, float(np.nanmax(calls.answered)) - res.t0)
        if "t" in res.samples and len(res.samples["t"]):
            end = max(end, float(np.nanmax(res.rel(res.samples["t"]))))
    return end + 1.0


def erp_capacity(run: Run | dict[str, ScenarioResult]) -> Figure:
    """Graph 9: inside the ERP (top) and in the Redis queue (bottom), one column per
    capacity run, on shared scales."""
    found = run.scenarios if isinstance(run, Run) else run
    rows = [found[n] for n in RUNS if n in found]
    with projector():
        fig, axes = plt.subplots(
            2, max(1, len(rows)), figsize=(12, 9), sharex=True, sharey="row", squeeze=False
        )
        if not rows or not any(erp_calls(r) is not None for r in rows):
            for ax in axes.flat:
                ax.set_axis_off()
            axes[0][0].text(0, 0.5, NO_RUNS, fontsize=16, wrap=True)
            return fig
        end = _end(rows)
        figs = [figures(res) for res in rows]
        for col, (res, f) in enumerate(zip(rows, figs, strict=True)):
            _inside_panel(axes[0][col], res, f, end)
            _queue_panel(axes[1][col], res, f)
            axes[1][col].set_xlabel("time since the\nload started (s)")
        axes[0][0].set_ylabel("calls inside\nthe ERP")
        axes[1][0].set_ylabel("ERP jobs waiting\nin Redis")
        axes[0][0].set_xlim(0, end)
        # whole seconds, a few: three narrow panels cannot hold "10.0 12.5 15.0" apart
        axes[0][0].xaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 5, 10]))
        axes[1][0].set_ylim(bottom=0)
        rate = rows[0].scenario.max_rate
        answers = " / ".join(f"{f.checkout_tail_ms:.0f}" for f in figs)
        capacity = max(f.capacity for f in figs)
        fig.suptitle(
            f"An ERP that serves {capacity} calls at once: {rate:g} checkouts/s for "
            f"{rows[0].load_end:g} s\ndeferred checkout answered in "
            f"{figs[0].checkout_tail} {answers} ms",
            fontsize=18,
        )
        foot = caption(fig, CAPTION)
        handles, labels = _legend(axes)
        legend_h = 0.5 * ((len(labels) + 1) // 2) / fig.get_figheight()
        fig.legend(handles, labels, loc="lower center", ncol=2, bbox_to_anchor=(0.5, foot),
                   frameon=False, fontsize=14)  # fmt: skip
        fig.tight_layout(rect=(0, foot + legend_h, 1, 1))
    return fig
