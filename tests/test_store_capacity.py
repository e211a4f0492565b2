"""The fake ERP's capacity (at most K calls in service, the rest waiting inside it in
order), and the store's knobs for its workers: threads and a limit on the ERP jobs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from labqueue.demo import jobs
from labqueue.demo.__main__ import main as store_main
from labqueue.demo.capacity import Gate
from labqueue.demo.config import ERP_LIMIT_ENV, erp_limit_from_env
from labqueue.demo.errors import BadSetting
from labqueue.demo.fakeerp import FakeERP
from labqueue.demo.services import FakeServices
from labqueue.demo.stack import Stack, StackError
from labqueue.demo.workers import worker_argv
from labqueue.embedded import find_redis_server

SALE = {"order_id": 1, "email": "a@b.c", "total_cents": 100, "items": [{"sku": "SKU-1", "qty": 1}]}


# -- the gate --------------------------------------------------------------------------
def crowd(gate: Gate, n: int, hold: float) -> list[tuple[int, float, float, int]]:
    """n threads arriving 10 ms apart, each holding a slot ``hold`` s: (who, arrived,
    started, in service then), in the order they started."""
    seen: list[tuple[int, float, float, int]] = []
    lock = threading.Lock()

    def call(who: int) -> None:
        arrived = time.time()
        with gate.serve() as visit:
            with lock:
                seen.append((who, arrived, visit.started, visit.in_service))
            time.sleep(hold)

    threads = []
    for who in range(n):
        threads.append(threading.Thread(target=call, args=(who,)))
        threads[-1].start()
        time.sleep(0.01)
    for t in threads:
        t.join(10)
    return seen


def test_the_gate_serves_at_most_k_in_arrival_order() -> None:
    gate = Gate(2)
    seen = crowd(gate, 6, 0.1)
    assert [who for who, *_ in seen] == list(range(6))  # first come, first served
    assert max(n for *_, n in seen) == 2
    waits = [started - arrived for _, arrived, started, _ in seen]
    assert max(waits[:2]) < 0.05 and min(waits[2:]) > 0.05  # the third on waited its turn
    assert gate.to_json() == {"capacity": 2, "in_service": 0, "waiting": 0}


def test_an_unlimited_gate_lets_everyone_in_and_counts_them() -> None:
    seen = crowd(Gate(0), 5, 0.2)
    assert max(started - arrived for _, arrived, started, _ in seen) < 0.05
    assert [n for *_, n in seen] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2", 10**6])
def test_a_capacity_that_is_no_count_is_refused(bad: Any) -> None:
    with pytest.raises(BadSetting, match="capacity must be a whole number"):
        Gate(bad)
    with pytest.raises(BadSetting):
        FakeERP(capacity=bad)


# -- the ERP behind it -----------------------------------------------------------------
@pytest.fixture
def slow_erp() -> Iterator[FakeERP]:
    with FakeERP(latency=0.2, jitter=0.0, seed=3, capacity=2) as service:
        yield service


def call_at_once(url: str, bodies: list[tuple[str, dict[str, Any]]]) -> list[int]:
    """POST every body from its own thread at once; the status codes, in order."""
    codes = [0] * len(bodies)

    def post(i: int, path: str, body: dict[str, Any]) -> None:
        codes[i] = requests.post(url + path, json=body, timeout=10).status_code

    threads = [threading.Thread(target=post, args=(i, *b)) for i, b in enumerate(bodies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    return codes


def test_callers_past_the_capacity_wait_inside_the_erp_and_its_log_shows_it(
    slow_erp: FakeERP,
) -> None:
    bodies = [("/sales", {**SALE, "order_id": i}) for i in range(1, 5)]
    bodies += [("/inventory/decrease", {**SALE, "order_id": i}) for i in range(1, 5)]
    started = time.time()
    assert sorted(call_at_once(slow_erp.url, bodies)) == [200] * 4 + [201] * 4
    took = time.time() - started
    assert 0.75 < took < 2.0  # 8 calls of 0.2 s, 2 at a time: 4 rounds
    calls = requests.get(f"{slow_erp.url}/calls", timeout=5).json()["calls"]
    assert len(calls) == 8
    received = [c["received"] for c in calls]
    assert max(received) - min(received) < 0.3  # all arrived at once: held by the ERP, not
    #                                             by its listen backlog (received is on arrival)
    assert max(c["in_service"] for c in calls) == 2
    waits = sorted(c["started"] - c["received"] for c in calls)
    assert waits[1] < 0.05 and waits[-1] > 0.5  # the last waited three rounds
    for c in calls:
        assert c["received"] <= c["started"] < c["answered"]
        assert c["answered"] - c["started"] == pytest.approx(0.2, abs=0.05)
    stats = requests.get(f"{slow_erp.url}/stats", timeout=5).json()
    assert stats["capacity"] == {"capacity": 2, "in_service": 0, "waiting": 0}


def test_a_failing_call_holds_its_slot_and_is_logged_with_its_wait() -> None:
    with FakeERP(latency=0.1, jitter=0.0, error_rate=1.0, capacity=1) as erp:
        codes = call_at_once(erp.url, [("/sales", {**SALE, "order_id": i}) for i in (1, 2)])
        assert codes == [503, 503]
        calls = requests.get(f"{erp.url}/calls", timeout=5).json()["calls"]
        assert [c["result"] for c in calls] == ["failed", "failed"]
        assert calls[1]["started"] >= calls[0]["answered"] - 0.01  # one at a time


def test_without_a_capacity_the_erp_answers_exactly_as_before() -> None:
    with FakeERP(latency=0.0, seed=3) as erp:
        assert requests.post(f"{erp.url}/sales", json=SALE, timeout=5).json() == {
            "order_id": 1,
            "recorded": True,
            "duplicate": False,
        }
        (call,) = requests.get(f"{erp.url}/calls", timeout=5).json()["calls"]
        assert set(call) == {"call", "order_id", "to", "received", "answered", "result"}
        stats = requests.get(f"{erp.url}/stats", timeout=5).json()
        assert set(stats) == {
            "calls", "failures", "duplicates", "sales", "inventory_orders", "faults"
        }  # fmt: skip


def test_fake_services_in_processes_pass_the_capacity_on(tmp_path: Path) -> None:
    with FakeServices(erp_latency=0.0, in_process=False, erp_capacity=3, log_dir=tmp_path) as f:
        stats = requests.get(f"{f.erp_url}/stats", timeout=5).json()
        assert stats["capacity"]["capacity"] == 3
    assert "--capacity 3" in (tmp_path / "erp.log").read_text()


# -- the command line ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["erp", "--capacity", "-1"], "--capacity"),
        (["erp", "--capacity", "two"], "--capacity"),
        (["up", "--erp-capacity", "-2"], "--erp-capacity"),
        (["up", "--queue-threads", "0"], "--queue-threads"),
        (["up", "--queue-threads", "1000"], "--queue-threads"),
        (["up", "--erp-limit", "0"], "--erp-limit"),
        (["up", "--erp-limit", "x"], "--erp-limit"),
    ],
)
def test_bad_capacity_threads_and_limits_are_one_line_errors(args: list[str], says: str) -> None:
    result = CliRunner().invoke(store_main, args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], result.output


def test_the_options_are_documented_in_the_help() -> None:
    up = CliRunner().invoke(store_main, ["up", "--help"]).output
    assert all(o in up for o in ("--erp-capacity", "--queue-threads", "--erp-limit"))
    assert "--capacity" in CliRunner().invoke(store_main, ["erp", "--help"]).output


# -- the workers' options --------------------------------------------------------------
def test_the_worker_command_gets_threads_only_past_one() -> None:
    one = worker_argv("email,erp")
    assert "--threads" not in one and one == worker_argv("email,erp", threads=1)
    four = worker_argv("erp", threads=4)
    assert four[four.index("--threads") + 1] == "4"


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"queue_threads": 0}, "queue threads must be a whole number 1-64"),
        ({"queue_threads": True}, "queue threads must be"),
        ({"erp_limit": 0}, "the ERP limit must be a whole number of jobs >= 1"),
        ({"erp_limit": -3}, "the ERP limit must be"),
        ({"erp_capacity": -1}, "capacity must be a whole number"),
    ],
)
def test_the_stack_refuses_bad_worker_options_before_starting(
    options: dict[str, Any], says: str
) -> None:
    with pytest.raises((StackError, BadSetting), match=says):
        Stack(**options)


def test_the_erp_limit_comes_from_the_environment() -> None:
    assert erp_limit_from_env({}) is None and erp_limit_from_env({ERP_LIMIT_ENV: " "}) is None
    assert erp_limit_from_env({ERP_LIMIT_ENV: "3"}) == 3
    for bad in ("0", "-1", "two", "1.5"):
        with pytest.raises(BadSetting, match=f"{ERP_LIMIT_ENV} must be a whole number"):
            erp_limit_from_env({ERP_LIMIT_ENV: bad})


def import_jobs_with(limit: str) -> subprocess.CompletedProcess[str]:
    code = (
        "import json; from labqueue.demo import jobs as j\n"
        "print(json.dumps([[getattr(c, 'max_concurrency', None), getattr(c, 'limiter', None)] "
        "for c in "
        "(j.RecordSaleInERP, j.DecreaseInventoryInERP, j.SendReceiptEmail)]))"
    )
    env = {**os.environ, ERP_LIMIT_ENV: limit}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


def test_every_worker_process_reads_the_same_limit_at_import() -> None:
    """What each store worker does at `--import labqueue.demo.jobs`: both ERP classes share
    the limiter 'erp' with K slots; the email job is not limited."""
    limited = import_jobs_with("2")
    assert limited.returncode == 0, limited.stderr
    sale, stock, email = json.loads(limited.stdout)
    assert sale == stock == [2, "erp"] and email[0] is None  # the email job is not limited
    free = import_jobs_with("")
    assert json.loads(free.stdout)[:2] == [[None, None], [None, None]]
    bad = import_jobs_with("0")
    assert bad.returncode != 0 and f"{ERP_LIMIT_ENV} must be a whole number" in bad.stderr


def test_limit_erp_changes_both_erp_classes_in_this_process() -> None:
    try:
        jobs.limit_erp(3)
        for cls in (jobs.RecordSaleInERP, jobs.DecreaseInventoryInERP):
            assert (cls.max_concurrency, cls.limiter) == (3, "erp")
        with pytest.raises(BadSetting):
            jobs.limit_erp(0)
    finally:
        jobs.limit_erp(None)
    assert jobs.RecordSaleInERP.max_concurrency is None


@pytest.mark.slow
@pytest.mark.skipif(find_redis_server() is None, reason="no redis-server binary")
def test_the_stack_hands_every_worker_the_limit_and_the_erp_its_capacity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same STORE_ERP_LIMIT in the environment every worker is started with (what
    jobs.py reads at import; /proc cannot show it once the worker sets its title), empty
    without a limit whatever our own environment says; the capacity on the ERP."""
    monkeypatch.setattr("labqueue.demo.stack.check_worker_options", lambda *a: None)
    monkeypatch.setenv(ERP_LIMIT_ENV, "7")  # ours: not what a stack without a limit passes on
    fast = {"email_latency": 0.01, "erp_latency": 0.01, "web_workers": 1}
    with Stack(queue_workers=2, erp_limit=3, erp_capacity=4, log_dir=tmp_path / "a", **fast) as s:
        assert [w.env.get(ERP_LIMIT_ENV) for w in s.workers] == ["3", "3"]
        assert all(w.alive for w in s.workers)  # each imported jobs.py with it, and runs
        stats = requests.get(f"{s.erp_url}/stats", timeout=5).json()
        assert stats["capacity"]["capacity"] == 4
        assert "at most 3 at once (STORE_ERP_LIMIT)" in s.describe()
    with Stack(queue_workers=1, log_dir=tmp_path / "b", **fast) as s:
        assert [w.env.get(ERP_LIMIT_ENV) for w in s.workers] == [""]
        assert "capacity" not in requests.get(f"{s.erp_url}/stats", timeout=5).json()


# -- the whole store, once the threads and limiter branches are in -------------------------
CART = {"email": "shopper@example.com", "items": [{"sku": "SKU-3", "qty": 1}]}


@pytest.mark.slow
@pytest.mark.skipif(find_redis_server() is None, reason="no redis-server binary")
def test_threaded_workers_with_the_erp_limit_keep_callers_out_of_the_erp(tmp_path: Path) -> None:
    """4 ERP workers (2 processes x 2 threads) in front of an ERP that serves 2 at once,
    limited to 2 ERP jobs: every order completes, and no ERP call waits inside the ERP."""
    with Stack(
        email_latency=0.01, erp_latency=0.1, jitter=0.0, web_workers=2, log_dir=tmp_path,
        workers_per_queue={"email": 1, "erp": 2}, queue_threads=2, erp_capacity=2, erp_limit=2,
    ) as s:  # fmt: skip
        assert "--threads 2" in s.describe() and "at most 2 calls at once" in s.describe()
        for _ in range(8):
            resp = requests.post(f"{s.store_url}/checkout/deferred", json=CART, timeout=30)
            assert resp.json()["status"] == "queued"
        deadline = time.time() + 60
        calls: list[dict[str, Any]] = []
        while time.time() < deadline and len(calls) < 16:
            calls = requests.get(f"{s.erp_url}/calls", timeout=5).json()["calls"]
            time.sleep(0.2)
    assert len(calls) == 16 and {c["result"] for c in calls} <= {"recorded", "applied"}
    assert max(c["in_service"] for c in calls) <= 2
    assert max(c["started"] - c["received"] for c in calls) < 0.05
