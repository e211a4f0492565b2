"""Graph 8: the store paused for a few seconds, seen by an open loop and by a closed loop.

One dot per request: hollow, latency from when it was sent (what a closed-loop tool
records); filled, from when it was meant to start (the open loop's schedule; for the closed
loop, the requests its users would have sent had they not been stuck waiting, see
:func:`loadtests.omission.corrected`)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from .omission import pause_figures_of, pause_series, pause_window
from .plotstyle import COLORS, fmt_s, projector
from .results import Run

NAMES = ("pause", "pause-closed")
TITLES = {
    "open": "open loop: requests keep arriving on their schedule",
    "closed": "closed loop: each user waits for its answer before sending again",
}


def has_pause(run: Run) -> bool:
    return all(n in run.scenarios for n in NAMES)


def _panel(ax: Any, run: Run, name: str) -> None:
    res = run.scenarios[name]
    s = pause_series(res)
    f = pause_figures_of(res)
    color = COLORS["sync"] if res.scenario.loop == "open" else COLORS["closed"]
    tail, value = f.intended_tail
    meant = f"from the intended start: {f.intended} requests, {tail} {fmt_s(value)}"
    ax.scatter(s["intended"], s["from_intended"], s=28, color=color, alpha=0.8, label=meant)
    tail, value = f.send_tail
    got = f"from the send: {f.requests} requests, {tail} {fmt_s(value)}"
    ax.scatter(s["sent"], s["from_send"], s=70, facecolors="none", edgecolors="black",
               linewidths=1.2, label=got)  # fmt: skip
    window = pause_window(res)
    if window:
        ax.axvspan(*window, color="gray", alpha=0.2, label=f"store paused ({f.pause_s:.1f} s)")
    ax.set_title(TITLES[res.scenario.loop], loc="left", fontsize=16)
    ax.set_ylabel("latency (s)")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper right", fontsize=12)


def pause_demo(run: Run) -> Figure:
    """Graph 8: open loop (top) and closed loop (bottom) through the same pause."""
    with projector():
        fig, axes = plt.subplots(2, 1, figsize=(12, 9), sharex=True, sharey=True)
        for ax, name in zip(axes, NAMES, strict=True):
            _panel(ax, run, name)
        axes[1].set_xlabel("seconds since the load started (when sent / meant to start)")
        fig.suptitle("The store stops for a few seconds: who sees it?", fontsize=19)
        fig.tight_layout()
    return fig
