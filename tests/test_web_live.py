"""The notebooks' live view: one call starts it, one stops it, and it follows the queues."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import fakeredis
import pytest
from werkzeug.serving import make_server

import labqueue
from labqueue.stats import Snapshot
from labqueue.web import create_app, live


@pytest.fixture
def r() -> Any:
    return fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)


@pytest.fixture(autouse=True)
def no_view_left() -> Iterator[None]:
    yield
    live.stop()
    assert not any(t.name == "labqueue-live" for t in threading.enumerate())


def until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_start_follows_the_queues_and_stop_ends_it(r: Any) -> None:
    view = live.start(r, interval=0.1, display=False)
    assert view.running and view.frames >= 1
    labqueue.Queue("email", r).enqueue_many("X", [{"n": i} for i in range(7)])
    until(lambda: any(s.queues.get("email") == 7 for s in view.history.samples()))
    r.set("resque:stat:processed", 40)
    until(lambda: view.history.samples()[-1].processed == 40)
    assert view.status().startswith("queued 7 · processed 40")
    assert live.stop() is view and not view.running
    frames = view.frames
    time.sleep(0.3)
    assert view.frames == frames, "a stopped view draws no more"
    assert view.png().startswith(b"\x89PNG\r\n\x1a\n")


def test_starting_again_replaces_the_running_view(r: Any) -> None:
    first = live.start(r, interval=0.1, display=False)
    second = live.start(r, interval=0.1, display=False)
    assert not first.running and second.running
    assert live.stop() is second and live.stop() is None


def test_a_failing_source_shows_the_error_and_keeps_trying() -> None:
    calls = {"n": 0}

    def flaky() -> Snapshot:
        calls["n"] += 1
        if calls["n"] < 3:
            raise ConnectionError("redis went away")
        return Snapshot(time.time(), {"q": 1}, 0, 0, 0, 0)

    view = live.LiveView(flaky, interval=0.05).start(display=False)
    try:
        assert "redis went away" in view.status()
        until(lambda: view.error is None and len(view.history) > 0)
        assert view.status().startswith("queued 1")
    finally:
        view.stop()


def test_from_api_reads_a_running_monitor(r: Any) -> None:
    labqueue.Queue("erp", r).enqueue("X", a=1)
    r.set("resque:stat:processed", 5)
    server = make_server("127.0.0.1", 0, create_app(r), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        snap, ages = live.from_api(f"http://127.0.0.1:{server.server_port}/")()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
    assert snap.queues == {"erp": 1} and snap.processed == 5
    assert 0.0 <= ages["erp"] < 5.0


def test_the_picture_has_both_panels(r: Any) -> None:
    view = live.LiveView(live.from_connection(r), interval=0.1)
    for depth in (3, 2, 0):
        r.delete("resque:queue:q")
        if depth:
            r.rpush("resque:queue:q", *["{}"] * depth)
        r.sadd("resque:queues", "q")
        view.tick()
        time.sleep(0.06)
    png = view.png()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    series = view.history.series()
    assert series["queues"]["q"] == [3, 2, 0]
    assert series["ages"]["q"] == [None, None, 0.0], "'{}' has no queue_time: age unknown"


def test_oldest_age_follows_a_draining_backlog_and_marks_are_drawn(r: Any) -> None:
    view = live.LiveView(live.from_connection(r), interval=0.1)
    old = {"class": "X", "args": [{}], "queue_time": time.time() - 30}
    r.rpush("resque:queue:erp", json.dumps(old), json.dumps({**old, "queue_time": time.time()}))
    r.sadd("resque:queues", "erp")
    view.tick()
    view.mark("2 workers start")
    r.lpop("resque:queue:erp")  # the old job is taken: the next one is young
    time.sleep(0.06)
    view.tick()
    ages = view.history.series()["ages"]["erp"]
    assert 30.0 <= ages[0] < 35.0 and ages[1] < 5.0
    assert view.status().endswith(f"oldest waiting {ages[1]:.1f} s")
    assert [label for _, label in view.marks] == ["2 workers start"]
    marked = view.render()
    view.marks.clear()
    assert view.render() != marked, "the mark is drawn"


def test_a_bare_snapshot_source_still_works() -> None:
    view = live.LiveView(lambda: Snapshot(time.time(), {"q": 4}, 0, 0, 0, 0), interval=0.1)
    view.tick()
    assert view.error is None and view.history.series()["ages"] == {"q": [None]}


def test_importable_without_flask_or_a_browser() -> None:
    code = (
        "import sys; sys.modules['flask'] = None; "
        "from labqueue.web import live; print(live.start.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "start"


@pytest.mark.slow
def test_in_a_notebook_kernel_it_shows_a_widget_and_stops() -> None:
    """Run the two calls in a real Jupyter kernel: a widget appears, frames are drawn."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    cells = [
        "import fakeredis, labqueue, time\n"
        "from labqueue.web import live\n"
        "r = fakeredis.FakeRedis(decode_responses=True)\n"
        "view = live.start(r, interval=0.2)",
        "labqueue.Queue('email', r).enqueue_many('X', [{'n': i} for i in range(5)])\n"
        "time.sleep(1.0)\n"
        "live.stop()\n"
        "assert not view.running and view.frames >= 3, view.frames\n"
        "print('depths', [s.queues.get('email', 0) for s in view.history.samples()][-1])",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    first, second = nb.cells[0].outputs, nb.cells[1].outputs
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in first)
    assert [o["text"] for o in second if o.get("name") == "stdout"] == ["depths 5\n"]
