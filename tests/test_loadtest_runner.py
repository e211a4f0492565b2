"""The runner end to end on the real stack (redis-server, fake mail and ERP, gunicorn,
labqueue workers, Locust with --processes 2), for a very short schedule; then Ctrl-C and a
component dying mid-run. Each must leave no process and no port behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import psutil
import pytest

from labqueue.embedded import find_redis_server
from loadtests import results
from loadtests.schedule import arrivals
from loadtests.shapes import Scenario

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.skipif(find_redis_server() is None, reason="needs a redis-server binary"),
]
ROOT = Path(__file__).resolve().parent.parent
MARK = "LOADTEST_SMOKE_MARK"
SHORT = [
    "--rates",
    "2,6",
    "--step-seconds",
    "2",
    "--timeout",
    "5",
    "--drain-cap",
    "40",
    "--web-workers",
    "2",
    "--queue-workers",
    "2",
]


def runner(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    """The runner, its processes marked by an environment variable they all inherit."""
    return subprocess.Popen(
        [sys.executable, "-m", "loadtests", "--results", str(tmp_path / "results"), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", MARK: str(tmp_path)},
    )


def marked_processes(tmp_path: Path) -> list[str]:
    """Processes still running that the runner of this test started (zombies aside)."""
    left = []
    for p in psutil.process_iter(["pid", "cmdline", "status"]):
        if p.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            if p.environ().get(MARK) == str(tmp_path):
                left.append(f"{p.info['pid']}: {' '.join(p.info['cmdline'] or [])[:120]}")
        except psutil.Error:
            continue
    return left


def port_open(url: str) -> bool:
    parts = urlsplit(url)
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((parts.hostname or "127.0.0.1", parts.port or 80)) == 0


def wait_gone(tmp_path: Path, timeout: float = 15.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := marked_processes(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


def assert_nothing_left(tmp_path: Path, run_dir: Path) -> None:
    assert wait_gone(tmp_path) == []
    for info_path in run_dir.glob("*/info.json"):
        target = json.loads(info_path.read_text()).get("target", {})
        for key in ("store_url", "redis_url"):
            if target.get(key):
                assert not port_open(target[key]), f"{key} {target[key]} still listening"


def test_a_short_run_writes_every_file_and_leaves_nothing(tmp_path: Path) -> None:
    proc = runner(tmp_path, "--scenarios", "sync,deferred", "--processes", "2", *SHORT)
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    latest = tmp_path / "results" / "latest"
    run_dir = latest.resolve()
    assert latest.is_symlink() and run_dir.parent == tmp_path / "results"
    assert str(run_dir) in out and "step 2/2" in out  # progress named the steps
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["partial"] is False and meta["status"] == "complete"
    assert meta["machine"]["cpu_count"] and meta["versions"]["locust"]
    assert meta["settings"]["processes"] == 2 and meta["ended"]
    graphs = ("1-latency-over-time", "2-throughput", "3-queue-depth", "4-latency-vs-load")
    for png in (*graphs, "6-when-did-it-happen", "7-queue-latency"):
        assert (run_dir / f"{png}.png").stat().st_size > 10_000
        assert f"{png}.png" in out
    assert "<scenario>/jobs.csv" in meta["files"]
    run = results.load_run(run_dir)
    for name in ("sync", "deferred"):
        check_scenario(run_dir / name, run[name])
    summary = json.loads((run_dir / "summary.json").read_text())
    deferred = summary["deferred"]
    assert deferred["all_jobs_completed"] is True
    assert deferred["jobs"]["processed"] == 3 * deferred["ok"]  # 3 jobs per order, all run
    assert deferred["jobs"]["failed"] == 0
    assert deferred["drain_seconds"] is not None
    check_jobs_and_orders(run["deferred"], deferred["ok"])
    assert run["sync"].jobs is None  # no job ran: no jobs.csv
    assert all(run["sync"].orders.erp_s <= run["sync"].orders.answered_s)  # before the answer
    assert_nothing_left(tmp_path, run_dir)


def check_jobs_and_orders(res: results.ScenarioResult, ok: int) -> None:
    """Every job the deferred checkouts enqueued has a row (recorded by the worker that ran
    it), with its enqueue, start and finish; every order its answer, email and ERP times."""
    jobs, orders = res.jobs, res.orders
    assert jobs is not None and orders is not None and res.calls is not None
    assert len(jobs) == 3 * ok and len(set(jobs.id)) == len(jobs)
    assert sorted(set(jobs.order_id)) == sorted(orders.order_id)  # the same orders
    assert all((jobs.enqueued <= jobs.started) & (jobs.started <= jobs.finished))
    assert all(jobs.finished <= res.info["ended_epoch"]) and set(jobs.outcome) == {"done"}
    assert sorted(set(jobs.queue)) == ["email", "erp"]
    assert min(jobs.enqueued) >= min(res.requests.intended)
    for key in ("answered_s", "email_s", "erp_sale_s", "erp_stock_s", "erp_s"):
        assert not any(np.isnan(getattr(orders, key))), key
    assert all(orders.answered_s < orders.email_s)  # deferred: the answer first
    assert len(res.calls) == 3 * ok and set(res.calls.result) == {"accepted", "recorded", "applied"}
    assert res.info["workers"] == {"email,erp": 2} and res.info["jobs"] == 3 * ok
    assert "age_email" in res.samples and "age_erp" in res.samples


def test_backlog_then_sized_workers_by_littles_law(tmp_path: Path) -> None:
    args = ["--scenarios", "backlog,sized", "--rates", "6", "--step-seconds", "5"]
    proc = runner(tmp_path, *args, "--timeout", "5", "--web-workers", "2", "--queue-workers", "2")
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out
    run_dir = (tmp_path / "results" / "latest").resolve()
    run = results.load_run(run_dir)
    backlog, sized = run["backlog"], run["sized"]
    sizing = sized.info["sizing"]
    assert sizing["source"].startswith("measured in backlog") and sizing["rate"] == 6.0
    assert "sizing by Little's law (measured in backlog" in out
    workers = sized.info["workers"]
    assert workers == sizing["workers"] and set(workers) == {"email", "erp"}
    assert sum(workers.values()) > 2  # more than the backlog's two shared workers
    assert {w.rsplit(":", 1)[1] for w in sized.jobs.worker} == {"email", "erp"}  # one queue each
    assert {w.rsplit(":", 1)[1] for w in backlog.jobs.worker} == {"email,erp"}
    for res in (backlog, sized):
        assert len(res.jobs) == 3 * int(res.requests.ok.sum())
    assert (run_dir / "7-queue-latency.png").stat().st_size > 10_000
    assert_nothing_left(tmp_path, run_dir)


def check_scenario(directory: Path, res: results.ScenarioResult) -> None:
    expected = [
        "scenario.json",
        "requests-0.csv",
        "requests-1.csv",
        "worker-0.json",
        "sampler.csv",
        "locust_stats.csv",
        "locust_stats_history.csv",
        "locust_stats.json",
        "info.json",
        "logs/locust.log",
        "logs/web.log",
        "logs/worker-1.log",
        "logs/mail.log",
        "logs/erp.log",
    ]
    for name in expected:
        assert (directory / name).stat().st_size > 0, name
    sc = Scenario.load(directory / "scenario.json")
    req = res.requests
    assert sorted(req.seq) == [a.seq for a in arrivals(sc)]  # every planned request, once
    assert set(req.worker) == {0, 1}  # both Locust processes sent their share
    assert all(req.ok == 1), set(req.error)
    samples = res.samples
    assert samples["t"][0] <= req.intended.min()  # the sampler ran before the first...
    assert samples["t"][-1] >= req.done.max()  # ...and after the last answer
    assert max(abs(samples["t"][1:] - samples["t"][:-1] - 0.5)) < 0.5  # every 0.5 s
    assert set(samples["web_workers"]) == {2.0}


def test_ctrl_c_stops_everything_and_keeps_a_partial_run(tmp_path: Path) -> None:
    proc = runner(tmp_path, "--scenarios", "sync,deferred", "--rates", "4", "--step-seconds", "60")
    first = tmp_path / "results"
    wait_for_glob(first, "*/sync/worker-0.json", proc)
    time.sleep(3)  # some requests done
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 130, out
    run_dir = (first / "latest").resolve()
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["partial"] is True and "interrupted" in meta["reason"]
    assert "interrupted" in out and "PARTIAL" in out
    assert (run_dir / "sync" / "requests-0.csv").stat().st_size > 200  # kept
    assert not (run_dir / "deferred").exists()
    assert_nothing_left(tmp_path, run_dir)


def wait_for_glob(root: Path, pattern: str, proc: subprocess.Popen[str]) -> Path:
    deadline = time.monotonic() + 90
    while True:
        found = list(root.glob(pattern)) if root.exists() else []
        if found:
            return found[0]
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, f"{pattern} never appeared"
        time.sleep(0.2)


def test_a_dying_component_stops_the_run_and_names_its_log(tmp_path: Path) -> None:
    proc = runner(tmp_path, "--scenarios", "deferred", "--rates", "4", "--step-seconds", "60")
    worker_info = wait_for_glob(tmp_path / "results", "*/deferred/worker-0.json", proc)
    info = json.loads((worker_info.parent / "info.json").read_text())
    os.kill(info["target"]["pids"]["web"], signal.SIGKILL)  # the store's gunicorn master
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 1, out
    run_dir = worker_info.parent.parent
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["partial"] is True
    assert "web" in meta["reason"] and "web.log" in meta["reason"]
    assert "web.log" in out
    assert_nothing_left(tmp_path, run_dir)
