"""The measurement helpers behind notebooks 3 and 4: omission, tails, placed orders, theory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from loadtests import lessons, omission, theory
from loadtests.plot_latency import tail_of
from loadtests.results import Requests, Run, ScenarioResult
from loadtests.shapes import Scenario, rate_steps

T0 = 1_000_000.0


def test_a_stalled_closed_loop_request_stands_for_those_its_user_did_not_send() -> None:
    when, lat = omission.corrected(np.array([0.0, 10.0]), np.array([5.0, 0.5]), interval=2.0)
    assert list(when) == [0.0, 10.0, 2.0, 4.0]  # 5 s stall: two requests never sent
    assert list(lat) == [5.0, 0.5, 3.0, 1.0]


@pytest.mark.parametrize(("n", "name"), [(5, "max"), (10, "p90"), (99, "p90"), (100, "p99")])
def test_a_step_reports_only_the_tail_its_sample_supports(n: int, name: str) -> None:
    values = np.arange(1, n + 1, dtype=float)
    got, value = tail_of(values)
    assert got == name
    assert value == (n if name == "max" else np.percentile(values, float(name[1:])))


def _requests(intended: np.ndarray, latency: np.ndarray, step: np.ndarray, ok: np.ndarray,
              server_ms: float) -> Requests:  # fmt: skip
    done = intended + latency
    return Requests({
        "intended": intended, "sent": intended, "done": done,
        "latency_ms": latency * 1000, "response_ms": latency * 1000,
        "server_ms": np.full(len(intended), server_ms), "step": step, "ok": ok,
        "status": np.where(ok == 1, 200, 0),
    })  # fmt: skip


def _fluid_run(tmp_path: Path) -> Run:
    """Two servers of 1 s each (μ = 2/s): 10 s at 2/s, then 10 s at 4/s, latency growing
    by (4 − 2) ÷ 2 = 1 s per second of the second step."""
    sc = Scenario("sync", "sync", rate_steps((2.0, 4.0), 10.0), arrival="constant")
    first = np.arange(0, 10, 0.5)
    second = np.arange(10, 20, 0.25)
    intended = np.concatenate([first, second])
    latency = np.concatenate([np.ones(len(first)), 1.0 + (second - 10.0)])
    step = np.concatenate([np.zeros(len(first), int), np.ones(len(second), int)])
    req = _requests(T0 + intended, latency, step, np.ones(len(intended), int), 1000.0)
    (tmp_path / "sync" / "logs").mkdir(parents=True)
    res = ScenarioResult("sync", sc, req, {}, T0, tmp_path / "sync")
    return Run(tmp_path, {"settings": {"web_workers": 2}, "duration_s": 42.0}, {"sync": res})


def test_the_fluid_model_and_its_measured_slope(tmp_path: Path) -> None:
    run = _fluid_run(tmp_path)
    assert theory.service_of(run).capacity == pytest.approx(2.0)
    (row,) = theory.fluid_rows(run)
    assert row.arrived == pytest.approx(4.0) and row.predicted == pytest.approx(1.0)
    assert row.measured == pytest.approx(1.0)
    assert "| 4/s | 4.00/s | 2.00 req/s | 1.00 s/s | 1.00 s/s |" in lessons.fluid_table(run)
    assert "2 web workers ÷ 1.000 s per checkout = **2.00 checkouts/s**" in lessons.run_facts(run)
    assert "no `sync-closed` scenario" in lessons.closed_table(run)  # a QUICK-like run


def test_little_used_to_infer_the_listen_backlog(tmp_path: Path) -> None:
    run = _fluid_run(tmp_path)
    first, second = theory.backlog_rows(run)
    assert first.in_store == pytest.approx(2.0) and first.in_backlog == pytest.approx(0.0)
    assert second.in_service == 2  # both servers busy
    assert second.in_store == pytest.approx(4.0 * np.mean(1.0 + np.arange(0, 10, 0.25)))


def test_timed_out_requests_the_store_answered_anyway(tmp_path: Path) -> None:
    run = _fluid_run(tmp_path)
    res = run["sync"]
    res.requests.columns["ok"][:3] = 0
    res.requests.columns["status"][:3] = 0
    assert omission.timed_out_but_placed(res) is None  # no access log: no claim
    log = [
        '127.0.0.1 "POST /checkout/sync HTTP/1.1" 200 1518 888ms',
        '127.0.0.1 "POST /checkout/sync HTTP/1.1" 502 10 88ms',
        '127.0.0.1 "POST /checkout/deferred HTTP/1.1" 200 10 8ms',
        '127.0.0.1 "GET /healthz HTTP/1.1" 200 35 1ms',
    ] + ['127.0.0.1 "POST /checkout/sync HTTP/1.1" 200 1 1ms'] * (len(res.requests) - 1)
    (res.directory / "logs" / "web-access.log").write_text("\n".join(log) + "\n")
    placed = omission.timed_out_but_placed(res)
    assert placed is not None and placed.answered_200 == len(res.requests)
    assert placed.ok_in_time == len(res.requests) - 3 and placed.placed_anyway == 3
    assert "at least **3** orders" in lessons.placed_text(run)
