"""A live view for notebooks: queue depths and the processed rate, redrawn while jobs drain.

    from labqueue.web import live
    view = live.start(r)          # a chart under the cell, redrawn every second
    ...                           # enqueue, run workers: watch the queues fill and drain
    live.stop()                   # (or view.stop()) the last picture stays

The numbers come from :func:`labqueue.stats.snapshot` on ``connection`` (default
:func:`labqueue.connect`), or, with ``api="http://127.0.0.1:5678"``, from a running
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
import threading
import urllib.request
from collections.abc import Callable
from typing import Any

from ..keys import DEFAULT_NAMESPACE
from ..stats import Snapshot, snapshot
from .history import History

COLORS = ["#4f6bed", "#16a394", "#e8833a", "#d6457a", "#8a63d2", "#3a9ad9", "#c9a227", "#5b8c3a"]

Source = Callable[[], Snapshot]


def from_connection(connection: Any = None, namespace: str = DEFAULT_NAMESPACE) -> Source:
    """Snapshots read straight from Redis."""
    if connection is None:
        from ..connection import connect

        connection = connect()
    return lambda: snapshot(connection, namespace)


def from_api(base_url: str, timeout: float = 5.0) -> Source:
    """Snapshots from a running monitor's ``/api/stats``."""
    url = base_url.rstrip("/") + "/api/stats"

    def read() -> Snapshot:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            data = json.load(resp)
        return Snapshot(
            data["time"],
            data["queues"],
            data["processed"],
            data["failed"],
            data["failed_store"],
            data["delayed"],
        )

    return read


class LiveView:
    """Samples every ``interval`` seconds and redraws the last ``window`` seconds."""

    def __init__(self, source: Source, interval: float = 1.0, window: float = 120.0) -> None:
        self.source = source
        self.interval = interval
        self.history = History(window=window, min_interval=min(interval, 1.0) * 0.5)
        self.frames = 0
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

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()

    def tick(self) -> None:
        """Take one sample and redraw (what the thread does every ``interval``)."""
        try:
            self.history.record(self.source())
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
        return (
            f"queued {sum(last.queues.values())} · processed {last.processed} "
            f"({shown} jobs/s) · failed {last.failed}"
        )

    def png(self) -> bytes:
        """The current picture as PNG bytes."""
        if self._png is None:
            self._png = self.render()
        return self._png

    def render(self) -> bytes:
        """Draw depths (left) and the processed rate (right) for the window, as PNG."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10, 3.4), dpi=96, layout="constrained")
        FigureCanvasAgg(fig)
        depth_ax, rate_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
        series = self.history.series()
        now = series["t"][-1] if series["t"] else 0.0
        ago = [t - now for t in series["t"]]
        for i, (name, values) in enumerate(series["queues"].items()):
            depth_ax.plot(ago, values, label=name, color=COLORS[i % len(COLORS)], lw=2)
        _frame(depth_ax, "Queue depth", "jobs waiting", self.history.window)
        if series["queues"]:
            depth_ax.legend(loc="upper left", fontsize=8, frameon=False)
        times, done = series["t"], series["processed"]
        rates = [
            max(0, done[i] - done[i - 1]) / max(times[i] - times[i - 1], 1e-6)
            for i in range(1, len(times))
        ]
        rate_ax.plot(ago[1:], rates, color="#16a394", lw=2)
        rate_ax.fill_between(ago[1:], rates, color="#16a394", alpha=0.15)
        _frame(rate_ax, "Processed", "jobs per second", self.history.window)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()


def _frame(ax: Any, title: str, ylabel: str, window: float) -> None:
    ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
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
