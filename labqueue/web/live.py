"""A live view for notebooks: queue depths, the oldest waiting job's age per queue and the
processed rate, redrawn while jobs drain.

    from labqueue.web import live
    view = live.start(r)          # a chart under the cell, redrawn every second
    ...                           # enqueue, run workers: watch the queues fill and drain
    view.mark("2 workers start")  # a labelled vertical line at this moment
    live.stop()                   # (or view.stop()) the last picture stays

The numbers come from :func:`labqueue.stats.snapshot` and
:func:`labqueue.stats.oldest_ages` (one more round trip for all queues) on ``connection``
(default :func:`labqueue.connect`), or, with ``api="http://127.0.0.1:5678"``, from a running
monitor's JSON API (``/api/stats``), the same data the monitor's page shows.

No browser and no Flask needed: the chart is a matplotlib figure rendered to PNG (Agg) and
shown in an ``ipywidgets.Image`` (or a display handle when ipywidgets is missing). Outside
a notebook nothing is displayed, but sampling and ``view.png()`` work the same (tests use
that). A Redis error does not stop the view: it shows the error and keeps trying.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from ..keys import DEFAULT_NAMESPACE
from ..stats import Snapshot, oldest_ages, snapshot
from .history import History

COLORS = ["#4f6bed", "#16a394", "#e8833a", "#d6457a", "#8a63d2", "#3a9ad9", "#c9a227", "#5b8c3a"]
#: Text size of the chart, in points: it must read from the back of a meetup room.
FONT_SIZE = 14

#: The numbers of one look, and each queue's oldest-job age (seconds; None: unknown).
Look = tuple[Snapshot, dict[str, float | None]]
#: What the view samples: a look, or a bare snapshot (then no ages are drawn).
Source = Callable[[], Look | Snapshot]


def from_connection(connection: Any = None, namespace: str = DEFAULT_NAMESPACE) -> Source:
    """Snapshots read straight from Redis."""
    if connection is None:
        from ..connection import connect

        connection = connect()

    def read() -> Look:
        snap = snapshot(connection, namespace)
        return snap, oldest_ages(connection, snap.queues, namespace)

    return read


def from_api(base_url: str, timeout: float = 5.0) -> Source:
    """Snapshots from a running monitor's ``/api/stats``."""
    url = base_url.rstrip("/") + "/api/stats"

    def read() -> Look:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            data = json.load(resp)
        snap = Snapshot(
            data["time"],
            data["queues"],
            data["processed"],
            data["failed"],
            data["failed_store"],
            data["delayed"],
        )
        return snap, data.get("oldest_age") or {}

    return read


class LiveView:
    """Samples every ``interval`` seconds and redraws the last ``window`` seconds."""

    def __init__(self, source: Source, interval: float = 1.0, window: float = 120.0) -> None:
        self.source = source
        self.interval = interval
        self.history = History(window=window, min_interval=min(interval, 1.0) * 0.5)
        self.frames = 0
        self.marks: list[tuple[float, str]] = []  #: (time, label) of each moment marked
        self.error: str | None = None
        self._png: bytes | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._show: Callable[[bytes, str], None] | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, display: bool = True) -> LiveView:
        """Show the view (in a notebook) and start sampling in a background thread."""
        if self.running:
            return self
        self._show = _displayer() if display else None
        self._stop.clear()
        self.tick()
        self._thread = threading.Thread(target=self._run, name="labqueue-live", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling; the last picture stays where it is."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(max(5.0, 3 * self.interval))
            self._thread = None

    def mark(self, label: str) -> None:
        """Mark this moment on the chart (a vertical line with ``label``), e.g. "2 workers
        start"; the next frame shows it."""
        self.marks.append((time.time(), label))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()

    def tick(self) -> None:
        """Take one sample and redraw (what the thread does every ``interval``)."""
        try:
            look = self.source()
            snap, ages = (look, {}) if isinstance(look, Snapshot) else look
            self.history.record(snap, ages)
            self.error = None
        except Exception as exc:  # keep going: Redis may come back
            self.error = f"{type(exc).__name__}: {exc}"
        self._png = self.render()
        self.frames += 1
        if self._show is not None:
            self._show(self._png, self.status())

    def status(self) -> str:
        samples = self.history.samples()
        if self.error:
            return f"labqueue live view: cannot read the numbers ({self.error}); retrying"
        if not samples:
            return "labqueue live view: waiting for the first sample"
        last = samples[-1]
        rate = self.history.rates(span=5 * self.interval)["processed"]
        shown = "–" if rate is None else f"{rate:.1f}"
        text = (
            f"queued {sum(last.queues.values())} · processed {last.processed} "
            f"({shown} jobs/s) · failed {last.failed}"
        )
        known = [a for a in last.ages.values() if a is not None]
        if known:
            text += f" · oldest waiting {max(known):.1f} s"
        return text

    def png(self) -> bytes:
        """The current picture as PNG bytes."""
        if self._png is None:
            self._png = self.render()
        return self._png

    def render(self) -> bytes:
        """Draw depths, oldest-job ages and the processed rate for the window, as PNG."""
        from matplotlib import rc_context
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        with rc_context({"font.size": FONT_SIZE}):
            fig = Figure(figsize=(12, 4.6), dpi=96, layout="constrained")
            FigureCanvasAgg(fig)
            axes = fig.subplots(1, 3)
            self._draw(*axes)
            buf = io.BytesIO()
            fig.savefig(buf, format="png")
        return buf.getvalue()

    def _draw(self, depth_ax: Any, age_ax: Any, rate_ax: Any) -> None:
        series = self.history.series()
        now = series["t"][-1] if series["t"] else time.time()
        ago = [t - now for t in series["t"]]
        for i, (name, values) in enumerate(series["queues"].items()):
            color = COLORS[i % len(COLORS)]
            depth_ax.plot(ago, values, label=name, color=color, lw=2.5)
            ages = [math.nan if a is None else a for a in series["ages"][name]]
            age_ax.plot(ago, ages, color=color, lw=2.5)
        _frame(depth_ax, "Queue depth", "jobs waiting", self.history.window)
        _frame(age_ax, "Oldest job waiting", "seconds", self.history.window)
        if series["queues"]:
            depth_ax.legend(loc="center left", frameon=False)
        times, done = series["t"], series["processed"]
        rates = [
            max(0, done[i] - done[i - 1]) / max(times[i] - times[i - 1], 1e-6)
            for i in range(1, len(times))
        ]
        rate_ax.plot(ago[1:], rates, color="#16a394", lw=2.5)
        rate_ax.fill_between(ago[1:], rates, color="#16a394", alpha=0.15)
        _frame(rate_ax, "Processed", "jobs per second", self.history.window)
        for ax in (depth_ax, age_ax, rate_ax):
            self._draw_marks(ax, now)

    def _draw_marks(self, ax: Any, now: float) -> None:
        """Each marked moment in the window: a dashed line, its label written up along it."""
        for at, label in self.marks:
            x = at - now
            if -self.history.window <= x <= 0:
                ax.axvline(x, color="#555", ls="--", lw=1.5)
                ax.text(
                    x,
                    0.98,
                    f"{label} ",
                    transform=ax.get_xaxis_transform(),
                    rotation=90,
                    ha="right",
                    va="top",
                    fontsize=FONT_SIZE - 2,
                    color="#333",
                )


def _frame(ax: Any, title: str, ylabel: str, window: float) -> None:
    ax.set_title(title, loc="left", fontweight="bold")
    ax.set_xlabel("seconds ago")
    ax.set_ylabel(ylabel)
    ax.set_xlim(-window, 0)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.yaxis.get_major_locator().set_params(integer=True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _displayer() -> Callable[[bytes, str], None] | None:
    """Where to show frames: an ipywidgets Image in a kernel, a display handle, or nowhere."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel"):
        return None
    try:
        import ipywidgets as widgets
    except ImportError:
        return _display_handle(display)
    label = widgets.HTML()
    image = widgets.Image(format="png")
    display(widgets.VBox([label, image]))

    def show(png: bytes, status: str) -> None:
        image.value = png
        label.value = f"<code>{_escape(status)}</code>"

    return show


def _display_handle(display: Any) -> Callable[[bytes, str], None]:
    from IPython.display import Image

    handle = display(Image(data=b""), display_id=True)

    def show(png: bytes, status: str) -> None:
        with contextlib.suppress(Exception):
            handle.update(Image(data=png))

    return show


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_current: LiveView | None = None


def start(
    connection: Any = None,
    *,
    api: str | None = None,
    interval: float = 1.0,
    window: float = 120.0,
    namespace: str = DEFAULT_NAMESPACE,
    display: bool = True,
) -> LiveView:
    """Start the live view (stopping one already running) and return it."""
    global _current
    stop()
    source = from_api(api) if api else from_connection(connection, namespace)
    _current = LiveView(source, interval, window).start(display=display)
    return _current


def stop() -> LiveView | None:
    """Stop the live view started last (if any) and return it."""
    global _current
    view, _current = _current, None
    if view is not None:
        view.stop()
    return view
