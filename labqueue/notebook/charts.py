"""The notebooks' own figures (the load-test graphs live in :mod:`loadtests.plots`).

Every figure has a title, axes labelled with units, and a legend when it has more than one
kind of mark; sizes and fonts are for a projector, like the load test's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import Patch

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType  # matplotlib 3.10+, for mypy only

STYLE: dict[RcKeyType, Any] = {
    "font.size": 14,
    "axes.titlesize": 16,
    "axes.labelsize": 14,
    "legend.fontsize": 12,
    "xtick.labelsize": 12,
    "ytick.labelsize": 12,
    "lines.linewidth": 2.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 90,
}

COLORS = {
    "local": "#1f77b4",  # database, template, enqueue: the shop's own work
    "network": "#d62728",  # a call to another service, in the request
    "worker": "#ff9896",  # the same calls, done later by a worker
    "answer": "#2ca02c",
}

#: Step names as the audience reads them, in checkout order.
STEP_LABELS = {
    "insert_order": "1. insert order",
    "insert_items": "2. insert order lines",
    "render_receipt": "3. render receipt",
    "enqueue": "enqueue 3 jobs",
    "send_email": "5. send email (SMTP)",
    "erp_record_sale": "6. ERP: record sale",
    "erp_decrease_inventory": "7. ERP: decrease stock",
}
NETWORK_STEPS = ("send_email", "erp_record_sale", "erp_decrease_inventory")


@contextmanager
def projector() -> Iterator[None]:
    """Projector sizes for the figures drawn inside. Keeps pyplot's interactive flag as the
    figures left it: the notebook backend turns it on when the first figure is made, and
    rc_context alone would switch it off again, so later figures would not show."""
    with plt.rc_context(STYLE):
        yield
        interactive = plt.isinteractive()
    plt.interactive(interactive)


def shown(fig: Figure) -> Figure:
    """Hand the figure to the notebook as the cell's value only (pyplot would show it twice)."""
    plt.close(fig)
    return fig


def _fmt_ms(ms: float) -> str:
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"


def _bar(
    ax: Any, row: int, start: float, width: float, color: str, min_width: float, hatch: str = ""
) -> None:
    drawn = max(width, min_width)
    ax.barh(row, drawn, left=start, color=color, hatch=hatch, edgecolor="white")
    ax.text(start + drawn + min_width, row, _fmt_ms(width), va="center", fontsize=11)


def _steps_in_request(timings: Mapping[str, float]) -> list[tuple[str, float, float]]:
    """(step, start ms, duration ms) for the steps the request ran, back to back."""
    order = ("insert_order", "insert_items", "render_receipt", "enqueue", *NETWORK_STEPS)
    out, at = [], 0.0
    for step in order:
        ms = float(timings.get(step, 0.0))
        if ms > 0:
            out.append((step, at, ms))
            at += ms
    return out


def _answer_line(ax: Any, total_ms: float, text_x: float) -> None:
    """The moment the shopper has the answer: a line, and a label pointing at it."""
    ax.axvline(total_ms, color=COLORS["answer"], linestyle="--", linewidth=2)
    ax.annotate(
        f"the shopper has the answer\nafter {_fmt_ms(total_ms)}",
        xy=(total_ms, 1.5),
        xytext=(text_x, 1.5),
        va="center",
        ha="center",
        color=COLORS["answer"],
        fontsize=13,
        arrowprops={"arrowstyle": "->", "color": COLORS["answer"], "linewidth": 1.5},
    )


def waterfall(
    sync_ms: Mapping[str, float],
    deferred_ms: Mapping[str, float],
    jobs: Sequence[tuple[str, float, float]] = (),
) -> Figure:
    """Where the checkout's time goes: sync (top) and deferred (bottom), one time axis.

    ``jobs``: (step, start ms, end ms) of the deferred jobs, relative to the request's start.
    """
    with projector():
        sync_rows = _steps_in_request(sync_ms)
        deferred_rows = _steps_in_request(deferred_ms)
        heights = [len(sync_rows), len(deferred_rows) + len(jobs)]
        fig, (top, bottom) = plt.subplots(
            2, 1, figsize=(12, 7.5), sharex=True, gridspec_kw={"height_ratios": heights}
        )
        end = max(sync_ms["total"], *(e for _s, _b, e in jobs), deferred_ms["total"])
        min_width = end / 250  # so a 0.2 ms step still shows as a sliver
        _draw_rows(top, sync_rows, [], min_width)
        _answer_line(top, sync_ms["total"], text_x=end * 0.5)
        top.set_title("Synchronous checkout: the shopper waits for every step", loc="left")
        order = {step: i for i, step in enumerate(STEP_LABELS)}
        jobs = sorted(jobs, key=lambda job: order.get(job[0], 99))
        _draw_rows(bottom, deferred_rows, jobs, min_width)
        _answer_line(bottom, deferred_ms["total"], text_x=end * 0.5)
        bottom.set_title(
            "Deferred checkout: the answer goes out first, workers do the slow steps", loc="left"
        )
        bottom.set_xlabel("time since the checkout request arrived (ms)")
        bottom.set_xlim(0, end * 1.12)
        handles = [
            Patch(color=COLORS["local"], label="the shop's own work (SQLite, template, Redis)"),
            Patch(color=COLORS["network"], label="a slow call, while the shopper waits"),
            Patch(color=COLORS["worker"], hatch="//", label="the same call, done by a worker"),
        ]
        fig.legend(handles=handles, loc="lower center", ncol=3, frameon=False, fontsize=11)
        fig.tight_layout(rect=(0, 0.06, 1, 1))
    return shown(fig)


def _draw_rows(
    ax: Any,
    rows: list[tuple[str, float, float]],
    jobs: list[tuple[str, float, float]],
    min_width: float,
) -> None:
    labels = []
    for i, (step, start, ms) in enumerate(rows):
        color = COLORS["network"] if step in NETWORK_STEPS else COLORS["local"]
        _bar(ax, i, start, ms, color, min_width)
        labels.append(STEP_LABELS.get(step, step))
    for j, (step, start, end) in enumerate(jobs, start=len(rows)):
        _bar(ax, j, start, end - start, COLORS["worker"], min_width, hatch="//")
        labels.append("worker: " + STEP_LABELS.get(step, step).split(". ", 1)[-1])
    ax.set_yticks(range(len(labels)), labels)
    ax.set_ylabel("checkout step")
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
