"""Graphs 1 and 4: latency per request over time, and per step against the offered load.

A percentile holds what its sample holds: the p99 of 30 requests is their maximum with
another name. So graph 1 draws every request (no per-second percentiles), and graph 4 and
the step tables report per step the tail the step's count supports (:func:`tail_of`)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from .plotstyle import COLORS, fmt_s, offered_line, projector, sync_capacity
from .results import Run, ScenarioResult, percentile, tail_of


def step_tails(res: ScenarioResult) -> list[tuple[float, str, float, int]]:
    """Per step: (offered, which tail, its value in s, requests in the step)."""
    req = res.requests
    out = []
    for i, step in enumerate(res.scenario.steps):
        lat = req.latency_ms[req.step == i] / 1000.0
        name, value = tail_of(lat)
        offered = step.rate if res.scenario.loop == "open" else float(step.users)
        out.append((offered, name, value, len(lat)))
    return out


def _dots(ax: Any, res: ScenarioResult, scale: float) -> None:
    req = res.requests
    t = res.rel(req.intended)
    failed = req.ok == 0
    color = COLORS[res.scenario.mode]
    ax.scatter(t[~failed], req.latency_ms[~failed] / scale, s=9, color=color, alpha=0.6,
               label=f"one request ({int((~failed).sum())} answered)")  # fmt: skip
    if failed.any():
        what = "timed out" if bool((req.status[failed] == 0).all()) else "failed"
        ax.scatter(t[failed], req.latency_ms[failed] / scale, marker="x", s=40, color="black",
                   label=f"{what} ({int(failed.sum())})", zorder=3)  # fmt: skip
    ax.axvline(res.load_end, color="black", linewidth=1.5, linestyle=":")
    ax.text(res.load_end, 1.0, "load stops", transform=ax.get_xaxis_transform(), va="bottom",
            ha="center", fontsize=12)  # fmt: skip


def _tails_text(res: ScenarioResult, unit_ms: bool) -> str:
    parts = []
    for offered, name, value, _n in step_tails(res):
        shown = f"{value * 1000:.0f} ms" if unit_ms else fmt_s(value)
        parts.append(f"{offered:g}/s: {name} {shown}")
    return "per step: " + ", ".join(parts)


def latency_over_time(run: Run, names: tuple[str, ...] = ("sync", "deferred")) -> Figure:
    """Graph 1: every request's latency (from its intended start) against when it was meant
    to start; sync on top, deferred below on its own scale (milliseconds)."""
    results = [run.scenarios[n] for n in names if n in run.scenarios]
    with projector():
        fig, axes = plt.subplots(len(results) or 1, 1, figsize=(12, 4.6 * max(1, len(results))),
                                 sharex=True, squeeze=False)  # fmt: skip
        for ax, res in zip(axes[:, 0], results, strict=False):
            ms = res.scenario.mode == "deferred"
            _dots(ax, res, 1.0 if ms else 1000.0)
            twin = offered_line(ax, res)
            if res.scenario.mode == "sync" and res.scenario.timeout:
                ax.axhline(res.scenario.timeout, color="gray", linewidth=1, linestyle="-.")
                ax.text(0, res.scenario.timeout, f" client timeout {res.scenario.timeout:g} s",
                        va="bottom", fontsize=12, color="gray")  # fmt: skip
            ax.set_ylabel("latency (ms)" if ms else "latency (s)")
            ax.set_ylim(bottom=0)
            own = " (its own scale: milliseconds)" if ms else ""
            ax.set_title(f"{res.scenario.mode} checkout{own}\n{_tails_text(res, ms)}",
                         loc="left", fontsize=14)  # fmt: skip
            h1, l1 = ax.get_legend_handles_labels()
            h2, l2 = twin.get_legend_handles_labels()
            ax.legend(h1 + h2, l1 + l2, loc="upper left", bbox_to_anchor=(0, 0.92), fontsize=11)
        axes[-1, 0].set_xlabel("when the request was meant to start (s since the load started)")
        fig.suptitle("Every checkout's latency, from its intended start", fontsize=19)
        fig.tight_layout()
    return fig


def latency_vs_load(run: Run, names: tuple[str, ...] = ("sync", "deferred")) -> Figure:
    """Graph 4: per step, the median and the tail its sample supports, against the offered
    load; log latency axis so the deferred line shows."""
    with projector():
        fig, ax = plt.subplots(figsize=(12, 7.5))
        for res in (run.scenarios[n] for n in names if n in run.scenarios):
            tails = step_tails(res)
            x = [t[0] for t in tails]
            req = res.requests
            p50 = [percentile(req.latency_ms[req.step == i], 50) / 1000 for i in range(len(x))]
            color, mode = COLORS[res.scenario.mode], res.scenario.mode
            ax.plot(x, p50, "-o", markersize=9, color=color, label=f"{mode} median")
            ax.plot(x, [t[2] for t in tails], "--o", markersize=9, color=color,
                    label=f"{mode} tail: p99 (≥ 100 requests) or p90")  # fmt: skip
            for offered, name, value, n in tails:
                ax.annotate(f"{name} of {n}", (offered, value), xytext=(6, 6), fontsize=11,
                            textcoords="offset points", color=color)  # fmt: skip
        capacity = sync_capacity(run)
        if capacity:
            ax.axvline(capacity, color="gray", linestyle=":", linewidth=1.5)
            ax.text(capacity, 0.03, f" sync capacity {capacity:.2f}/s",
                    transform=ax.get_xaxis_transform(), fontsize=12)  # fmt: skip
            step = (
                run.scenarios["sync"].scenario.steps[0].duration if "sync" in run.scenarios else 0
            )
            ax.text(0.99, 0.5, f"past capacity, latency depends on\nthe step length ({step:g} s) "
                    "and the\nbacklog carried from the step before", transform=ax.transAxes,
                    ha="right", fontsize=12, color=COLORS["sync"])  # fmt: skip
        ax.set_yscale("log")
        ax.set_xlabel("offered load (checkouts/s)")
        ax.set_ylabel("latency from intended start (s, log scale)")
        ax.set_title("Checkout latency vs load: sync hits a wall, deferred stays flat")
        ax.set_xlim(left=0)
        ax.legend(loc="upper left", fontsize=12)
        fig.tight_layout()
    return fig
