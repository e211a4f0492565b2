"""Notebook 5's figures: an ERP outage seen from the shopper and from the queue, and
retries with and without jitter. Projector sizes, as :mod:`.charts`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .charts import projector, shown

OUTAGE_COLOR = "#d62728"
OK_COLOR = "#2ca02c"


def _shade(ax: plt.Axes, outage: tuple[float, float], label: str | None = None) -> None:
    ax.axvspan(*outage, color=OUTAGE_COLOR, alpha=0.12, label=label)


def outage_chart(
    answers: Mapping[str, Sequence[tuple[float, int]]],
    jobs: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    outage: tuple[float, float],
) -> Figure:
    """Top: one dot per checkout answer (``answers``: endpoint -> [(seconds, HTTP status)]),
    one row per endpoint and status. Bottom: ERP jobs over time (``jobs``: label -> (times,
    counts)). The outage (start, end seconds) shaded on both."""
    with projector():
        fig, (top, bottom) = plt.subplots(
            2, 1, figsize=(12, 8), sharex=True, gridspec_kw={"height_ratios": [1, 1.6]}
        )
        rows: list[str] = []
        for endpoint, points in answers.items():
            for status in sorted({s for _, s in points}):
                rows.append(f"{endpoint}: {status}")
                xs = [t for t, s in points if s == status]
                color = OK_COLOR if status < 400 else OUTAGE_COLOR
                top.plot(xs, [len(rows) - 1] * len(xs), "o", color=color, markersize=6)
        top.set_yticks(range(len(rows)), rows)
        top.set_ylim(-0.6, len(rows) - 0.4)
        top.invert_yaxis()
        top.grid(axis="y", visible=False)
        top.set_ylabel("HTTP answer")
        top.set_title("What the shopper got: one dot per checkout", loc="left")
        _shade(top, outage)
        for label, (times, counts) in jobs.items():
            bottom.plot(times, counts, label=label)
        _shade(bottom, outage, label="the ERP answers every call with an error")
        bottom.set_ylabel("ERP jobs")
        bottom.set_xlabel("time since the first checkout (s)")
        bottom.set_title("The deferred checkouts' ERP jobs", loc="left")
        bottom.legend(loc="upper right", frameon=False)
        fig.tight_layout()
    return shown(fig)


def retry_histogram(
    runs: Mapping[str, Sequence[float]], bin_s: float = 1.0, title: str = ""
) -> Figure:
    """Retry calls per second over time, one panel per variant (``runs``: label -> the
    retries' times, in seconds since the first calls failed together)."""
    with projector():
        fig, axes = plt.subplots(1, len(runs), figsize=(12, 4.8), sharey=True, squeeze=False)
        end = max((max(ts) for ts in runs.values() if ts), default=0.0) + bin_s
        edges = np.arange(0.0, end + bin_s, bin_s)
        for ax, (label, times) in zip(axes[0], runs.items(), strict=True):
            counts, _ = np.histogram(times, bins=edges)
            ax.bar(edges[:-1], counts, width=bin_s, align="edge", edgecolor="white")
            ax.set_title(f"{label}: at most {counts.max()} in one second", loc="left")
            ax.set_xlabel("time since they all failed (s)")
        axes[0][0].set_ylabel("retries per second")
        if title:
            fig.suptitle(title, fontsize=16)
        fig.tight_layout()
    return shown(fig)
