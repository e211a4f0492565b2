"""The deferred side, measured: graph 6, when each order's email and ERP calls really
happened (a dot per order), and graph 7, queue latency (the oldest waiting job's age per
queue, beside the depth). Both need a run recorded with jobs.csv / orders.csv and the
sampler's ``age_`` columns; an older run gets a figure that says so."""

from __future__ import annotations

import textwrap
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from .plotstyle import fmt_s, projector
from .results import Run, ScenarioResult
from .summary import drain_seconds, oldest_age_max

#: One colour per thing that happens to an order, the same in both panels; the answer is
#: drawn last, hollow, so a sync answer shows around the ERP dot it follows by milliseconds.
SERIES = (
    ("email_s", "receipt email accepted", "#ff7f0e", "^"),
    ("erp_s", "ERP: sale and stock recorded", "#2ca02c", "s"),
    ("answered_s", "the shopper's answer", "#222222", "o"),
)
#: Each queue's colour (graph 3 uses the same).
QUEUE_COLORS = {"email": "#6baed6", "erp": "#fd8d3c"}
#: The sentence under each graph.
CAPTIONS = {
    "when_it_happened": "A deferred checkout answers at once, but its email and its ERP calls "
    "wait for a queue worker: when orders arrive faster than the workers finish them, the ERP "
    "hears of each sale later and later.",
    "queue_latency": "A depth alone says little (300 jobs are a second's work for 300 workers, "
    "a minute's for 4): the oldest waiting job's age is how late the work runs, and the "
    "figure to alert on. Dotted: the load stops.",
}
NO_ORDERS = (
    "This run has no orders.csv: it was recorded before the load test kept when each "
    "email and ERP call happened. Run `make loadtest` again."
)
NO_AGES = (
    "This run did not sample the oldest waiting job's age (it was recorded before the "
    "sampler did). Run `make loadtest` again."
)
#: Where the log scale of graph 6 starts (s): below the fastest answer.
FLOOR_S = 1e-3


def _seconds(value: float, _pos: Any = None) -> str:
    if value < 1:
        return f"{value * 1000:g} ms"
    return f"{value:g} s"


def caption(fig: Figure, text: str, width: int = 105) -> float:
    """A sentence at the foot of the figure saying what to see (the PNG travels without the
    notebook); returns the share of the figure's height it takes, to keep clear."""
    wrapped = textwrap.fill(text, width)
    fig.text(0.01, 0.01, wrapped, ha="left", va="bottom", fontsize=14)
    lines = wrapped.count("\n") + 1
    return (lines * 14 * 1.3 / 72 + 0.2) / fig.get_figheight()


def _no_data(fig: Figure, ax: Any, what: str) -> Figure:
    ax.set_axis_off()
    ax.text(
        0.5, 0.5, what, transform=ax.transAxes, ha="center", va="center", fontsize=16, wrap=True
    )
    return fig


def _steps(ax: Any, res: ScenarioResult) -> None:
    """Step boundaries and their rates along the top, the end of the load dotted."""
    for (start, _end), step in zip(res.scenario.step_bounds(), res.scenario.steps, strict=True):
        ax.axvline(start, color="gray", linewidth=0.8, alpha=0.5)
        what = f"{step.rate:g} req/s" if res.scenario.loop == "open" else f"{step.users} users"
        ax.text(
            start, 1.0, f" {what}", transform=ax.get_xaxis_transform(), va="bottom", fontsize=14
        )
    ax.axvline(res.load_end, color="black", linewidth=1.5, linestyle=":")


def _order_panel(ax: Any, res: ScenarioResult) -> float:
    """Dots per order; returns the largest time plotted (s)."""
    orders = res.orders
    assert orders is not None
    x = res.rel(orders.intended)
    top = FLOOR_S
    for key, label, color, marker in SERIES:
        y = getattr(orders, key)
        shown = ~np.isnan(y)
        if key == "answered_s":
            shown &= orders.ok == 1
            ax.scatter(
                x[shown],
                np.maximum(y[shown], FLOOR_S),
                s=36,
                marker=marker,
                facecolors="none",
                edgecolors=color,
                linewidths=1,
                label=label,
            )
        else:
            ax.scatter(
                x[shown],
                np.maximum(y[shown], FLOOR_S),
                s=14,
                color=color,
                marker=marker,
                alpha=0.6,
                linewidths=0,
                label=label,
            )
        if shown.any():
            top = max(top, float(np.nanmax(y)))
    failed = orders.ok == 0
    if failed.any():
        ax.scatter(
            x[failed],
            orders.answered_s[failed],
            marker="x",
            s=30,
            color="black",
            label="no good answer (timed out or failed)",
        )
        top = max(top, float(np.nanmax(orders.answered_s[failed])))
    _steps(ax, res)
    erp = orders.erp_s
    worst = float(np.nanmax(erp)) if np.isfinite(erp).any() else float("nan")
    never = int(np.isnan(erp).sum())
    late = f"ERP done at worst {fmt_s(worst)} after the click" if np.isfinite(worst) else "no ERP"
    never_text = f" ({never} never)" if never else ""
    ax.set_title(f"{res.scenario.mode} checkout\n{late}{never_text}", fontsize=16, pad=26)
    ax.set_xlabel("intended start of the checkout\n(s since the load started)")
    return top


def has_orders(run: Run, names: tuple[str, ...] = ("sync", "deferred")) -> bool:
    """Whether graph 6 has something to show (runs before orders.csv have not)."""
    return any(run.scenarios[n].orders is not None for n in names if n in run.scenarios)


def has_ages(run: Run, names: tuple[str, ...] = ("deferred", "backlog", "sized")) -> bool:
    """Whether graph 7 has something to show (runs before the sampler read ages have not)."""
    return any(
        any(k.startswith("age_") for k in run.scenarios[n].samples)
        for n in names
        if n in run.scenarios
    )


def when_it_happened(run: Run, names: tuple[str, ...] = ("sync", "deferred")) -> Figure:
    """Graph 6: for every order, when the shopper got the answer, when the receipt email
    was accepted and when the ERP had the sale and the stock change, in seconds after the
    checkout's intended start (log scale): sync and deferred side by side."""
    chosen = [run.scenarios[n] for n in names if n in run.scenarios]
    with_orders = [r for r in chosen if r.orders is not None and len(r.orders)]
    with projector():
        fig, axes = plt.subplots(
            1, max(1, len(with_orders)), figsize=(12, 8), sharey=True, squeeze=False
        )
        if not with_orders:
            return _no_data(fig, axes[0][0], NO_ORDERS)
        top = max(_order_panel(ax, res) for ax, res in zip(axes[0], with_orders, strict=True))
        ax0 = axes[0][0]
        ax0.set_yscale("log")
        ax0.set_ylim(FLOOR_S * 0.8, top * 1.6)
        ax0.yaxis.set_major_formatter(FuncFormatter(_seconds))
        ax0.set_ylabel("time after the intended start\n(log scale)")
        legend = {}
        for ax in axes[0]:
            for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                legend.setdefault(lab, h)
        order = [SERIES[-1][1], *(label for _, label, _, _ in SERIES[:-1])]  # the answer first
        labels = sorted(legend, key=lambda lab: order.index(lab) if lab in order else 9)
        handles = [legend[lab] for lab in labels]
        fig.suptitle("When did it really happen? One dot per order", fontsize=20)
        foot = caption(fig, CAPTIONS["when_it_happened"])
        legend_h = 0.8 / fig.get_figheight()
        fig.legend(
            handles,
            labels,
            loc="lower center",
            ncol=2,
            markerscale=2,
            bbox_to_anchor=(0.5, foot),
            frameon=False,
        )
        fig.tight_layout(rect=(0, foot + legend_h, 1, 1))
    return fig


def workers_text(info: dict[str, Any]) -> str:
    """``4 workers, each on email then erp`` or ``workers: 4 on email, 5 on erp``."""
    workers = info.get("workers") or {}
    if len(workers) == 1 and "," in next(iter(workers)):
        queues, n = next(iter(workers.items()))
        return f"{n} workers, each on {queues.replace(',', ' then ')}"
    sized = ", sized by Little's law" if info.get("sizing") else ""
    return "workers: " + (", ".join(f"{n} on {q}" for q, n in workers.items()) or "?") + sized


def _row(sub: Any, res: ScenarioResult) -> tuple[Any, Any]:
    """One scenario: its depth and its oldest job's age per queue, under a heading."""
    ax_depth, ax_age = sub.subplots(1, 2)
    s = res.samples
    t = res.rel(s["t"])
    for q, color in QUEUE_COLORS.items():
        if f"queue_{q}" in s:
            ax_depth.plot(t, s[f"queue_{q}"], color=color, label=f"queue '{q}'")
        if f"age_{q}" in s:
            ax_age.plot(t, s[f"age_{q}"], color=color, label=f"queue '{q}'")
    for ax in (ax_depth, ax_age):
        ax.axvline(res.load_end, color="black", linewidth=1.5, linestyle=":")
    rates = "→".join(f"{st.rate:g}" for st in res.scenario.steps)
    worst = oldest_age_max(res) or {}
    queue, age = max(worst.items(), key=lambda kv: kv[1], default=("-", float("nan")))
    drain = drain_seconds(res)
    drained = "" if drain is None else f", all done {drain:.0f} s after the load"
    sub.suptitle(
        f"{res.name}: {rates} req/s, {workers_text(res.info)}\n"
        f"oldest waiting job at worst {fmt_s(age)} (on {queue}){drained}",
        x=0.01,
        ha="left",
        fontsize=15,
    )
    ax_depth.set_ylabel("jobs waiting")
    ax_age.set_ylabel("oldest waiting\njob's age (s)")
    return ax_depth, ax_age


def _same_scales(axes: list[tuple[Any, Any]]) -> None:
    """Every row on the same time axis and, per column, the same height (so a flat row is
    flat next to one that grew)."""
    left = min(min(ax.get_xlim()[0] for ax in pair) for pair in axes)
    right = max(max(ax.get_xlim()[1] for ax in pair) for pair in axes)
    for col in (0, 1):
        top = max(pair[col].get_ylim()[1] for pair in axes)
        for pair in axes:
            pair[col].set_ylim(0, top)
            pair[col].set_xlim(left, right)
    for pair in axes[:-1]:
        for ax in pair:
            ax.tick_params(labelbottom=False)
    for ax in axes[-1]:
        ax.set_xlabel("time since the load started (s)")


def queue_latency(run: Run, names: tuple[str, ...] = ("deferred", "backlog", "sized")) -> Figure:
    """Graph 7: per queue, jobs waiting (left) and how long the oldest of them has waited
    (right), one row per deferred scenario, on shared scales."""
    rows = [
        run.scenarios[n]
        for n in names
        if n in run.scenarios and any(k.startswith("age_") for k in run.scenarios[n].samples)
    ]
    with projector():
        fig = plt.figure(figsize=(12, 2.0 + 3.6 * max(1, len(rows))), layout="constrained")
        if not rows:
            return _no_data(fig, fig.add_subplot(), NO_AGES)
        fig.suptitle("Queue latency: how long the oldest waiting job has waited", fontsize=20)
        foot = caption(fig, CAPTIONS["queue_latency"])
        fig.get_layout_engine().set(rect=(0, foot, 1, 1 - foot))  # type: ignore[union-attr]
        subs = fig.subfigures(len(rows), 1, squeeze=False)[:, 0]
        axes = [_row(sub, res) for sub, res in zip(subs, rows, strict=True)]
        _same_scales(axes)
        axes[0][1].legend(loc="upper left")
    return fig
