"""The locustfile under the real Locust CLI, against a tiny stand-in store on loopback:
requests start at their intended times, every one is recorded once, ``--processes`` splits
the schedule without loss or overlap, and a non-loopback target is refused."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from loadtests import results
from loadtests.locust_proc import LocustProcess
from loadtests.schedule import arrivals
from loadtests.shapes import Scenario, Step, rate_steps

pytestmark = pytest.mark.slow


class FakeStore(BaseHTTPRequestHandler):
    """Answers a checkout like the store does (after ``delay`` s), 400 on a bad body."""

    delay = 0.05

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, data: dict[str, object]) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send(200, {"ok": True})

    def do_POST(self) -> None:
        order = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not order.get("items") or "@" not in order.get("email", ""):
            self._send(400, {"error": "bad order", "field": "items"})
            return
        time.sleep(self.delay)
        mode = self.path.rsplit("/", 1)[-1]
        timings = {"total": self.delay * 1000}
        self._send(
            200,
            {
                "order_id": 1,
                "mode": mode,
                "total": 1,
                "receipt_html": "",
                "timings_ms": timings,
                "jobs": [],
            },
        )


@pytest.fixture
def store() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeStore)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def run_locust(sc: Scenario, host: str, out: Path, processes: int = 1) -> int | None:
    proc = LocustProcess(sc, host, out, processes).start()
    try:
        deadline = time.monotonic() + proc.deadline() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        return proc.poll()
    finally:
        proc.stop()


def open_scenario(mode: str = "deferred") -> Scenario:
    return Scenario("t", mode, rate_steps((5.0, 10.0), 2.0), arrival="constant", timeout=5.0)


def test_every_scheduled_request_is_sent_at_its_intended_time_and_recorded(
    store: str, tmp_path: Path
) -> None:
    sc = open_scenario()
    assert run_locust(sc, store, tmp_path) == 0
    res = results.load_scenario(tmp_path)
    planned = arrivals(sc)
    req = res.requests
    assert list(req.seq) == [a.seq for a in planned]  # each once, none lost
    offsets = req.intended - res.t0
    assert offsets == pytest.approx([a.offset for a in planned], abs=1e-5)
    assert all(req.ok == 1) and set(req.status) == {200}
    assert all(req.latency_ms >= req.response_ms)
    assert all(req.sent >= req.intended)
    assert list(req.step) == [a.step for a in planned]
    for name in ("locust_stats.csv", "locust_stats_history.csv", "locust_stats.json"):
        assert (tmp_path / name).stat().st_size > 0
    stats = json.loads((tmp_path / "locust_stats.json").read_text())
    assert sum(e["num_requests"] for e in stats) == len(planned)
    assert {e["name"] for e in stats} == {"checkout/deferred"}


def test_processes_split_the_schedule_without_loss_or_overlap(store: str, tmp_path: Path) -> None:
    sc = open_scenario("sync")
    assert run_locust(sc, store, tmp_path, processes=2) == 0
    res = results.load_scenario(tmp_path)
    assert sorted(res.requests.seq) == [a.seq for a in arrivals(sc)]
    assert set(res.requests.worker) == {0, 1}
    workers = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("worker-*.json"))]
    assert [w["count"] for w in workers] == [2, 2]
    assert abs(workers[0]["t0"] - workers[1]["t0"]) < 1.0  # one schedule, one zero


def test_closed_loop_users_send_after_each_answer(store: str, tmp_path: Path) -> None:
    sc = Scenario(
        "c", "sync", (Step(2.0, users=2), Step(2.0, users=4)), loop="closed", think_time=0.2
    )
    assert run_locust(sc, store, tmp_path) == 0
    req = results.load_scenario(tmp_path).requests
    assert len(req) > 4
    assert all(req.intended == req.sent)  # no schedule: latency is the response time
    assert set(req.offered) <= {2.0, 4.0, 0.0}


def test_a_target_off_this_machine_is_refused(tmp_path: Path) -> None:
    code = run_locust(open_scenario(), "http://192.0.2.10:8000", tmp_path)
    assert code not in (0, None)
    assert not list(tmp_path.glob("requests-*.csv"))
    assert "only target loopback" in (tmp_path / "logs" / "locust.log").read_text()
