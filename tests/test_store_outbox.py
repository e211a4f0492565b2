"""The outbox (issue 12): an order and its pending jobs are written in one SQLite
transaction, and a relay enqueues them, once, whoever dies when. On fakeredis and a real
redis-server; the process killed between commit and enqueue is a real SIGKILL here (a
store in a child process) and in tests/test_store_truth_stack.py (a gunicorn worker).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from store_shop import CART, Shop, shop_fixture  # noqa: F401 (the fixture)

import labqueue
from labqueue.demo import db, jobs, outbox
from labqueue.demo.checkout import CRASH_AFTER_COMMIT, Store, Timings
from labqueue.demo.config import StoreConfig
from labqueue.demo.errors import StepFailed
from labqueue.demo.fakeerp import FakeERP
from labqueue.demo.fakemail import FakeMail
from labqueue.demo.orderform import parse_checkout
from labqueue.keys import Keys

K = Keys()
LATER = outbox.LEASE + 1  # seconds: past the claim of a request that died


@pytest.fixture
def store(conn: Any, tmp_path: Path) -> Iterator[Store]:
    """A store on ``conn`` (fakeredis, then a real redis-server), its jobs runnable here."""
    with FakeMail(latency=0.005, seed=1) as mail, FakeERP(latency=0.005, seed=2) as erp:
        config = StoreConfig(
            db_path=str(tmp_path / "store.db"), smtp_port=mail.smtp_port, erp_url=erp.url, timeout=5
        )
        shop = Store(config, conn)
        jobs.configure(config, conn)
        try:
            yield shop
        finally:
            jobs.configure(None)
            shop.close()


def queued(conn: Any) -> int:
    return int(conn.llen(K.queue("email")) + conn.llen(K.queue("erp")))


def died_after_commit(store: Store) -> int:
    """What a request killed between its commit and its enqueue leaves: the order and its
    outbox rows, claimed by the dead request. Returns the order id."""
    payloads: dict[str, labqueue.Payload] = {}
    owner = outbox.owner_token()
    order = store._place(parse_checkout(CART), "deferred", Timings(), payloads, None, owner)
    return order.id


def work(conn: Any) -> int:
    return labqueue.Worker(["email", "erp"], conn, poll_interval=0.05).work(burst=True)


def test_a_deferred_checkout_writes_its_jobs_with_its_order_and_sends_them(shop: Shop) -> None:
    body = shop.post("deferred").get_json()
    conn = db.connect(shop.config.db_path)
    rows = conn.execute("SELECT order_id, queue, payload, status FROM outbox").fetchall()
    conn.close()
    assert sorted(r["queue"] for r in rows) == ["email", "erp", "erp"]
    assert {r["status"] for r in rows} == {"sent"} and {r["order_id"] for r in rows} == {1}
    ids = {labqueue.Payload.from_json(r["payload"]).id for r in rows}
    assert ids == set(body["jobs"].values())  # the rows are the jobs the answer names
    assert shop.client.get("/orders/1").get_json()["outbox_pending"] == 0


def test_a_request_that_died_after_its_commit_loses_no_job(conn: Any, store: Store) -> None:
    order_id = died_after_commit(store)
    assert queued(conn) == 0 and store.order(order_id).status == "queued"
    view = store.order_view(order_id)
    assert view["outbox_pending"] == 3
    assert {s["job_status"] for s in view["steps"].values()} == {"unknown"}  # not in Redis
    relay = store.relay()
    assert relay.run_once() == 0  # the dead request's claim still holds
    assert relay.run_once(time.time() + LATER) == 3 and queued(conn) == 3
    assert relay.run_once(time.time() + LATER) == 0  # sent: nothing left
    assert store.order_view(order_id)["outbox_pending"] == 0
    assert work(conn) == 3
    assert store.order(order_id).status == "complete"


def test_sending_the_same_rows_again_queues_each_job_once(conn: Any, store: Store) -> None:
    """A relay that died after enqueueing, before marking its rows sent: the next one sends
    them again, and Redis skips the jobs it knows (ENQUEUE_NEW)."""
    order_id = died_after_commit(store)
    relay = store.relay()
    rows = outbox.claim(store.db, "a relay that dies", time.time() + LATER)
    relay.send(rows)  # ...and dies here, its rows still pending
    assert queued(conn) == 3
    assert relay.run_once(time.time() + 2 * LATER) == 3  # sent again...
    assert queued(conn) == 3  # ...queued once
    assert work(conn) == 3 and store.order(order_id).status == "complete"
    relay.send(rows)  # even once they ran (their status says complete): nothing queued
    assert queued(conn) == 0


def test_relays_racing_each_other_send_each_job_once(conn: Any, store: Store) -> None:
    order_ids = [died_after_commit(store) for _ in range(20)]
    relays = [Store(store.config, conn).relay() for _ in range(4)]  # own SQLite connections
    sent: list[int] = []
    start = threading.Barrier(len(relays))

    def race(relay: outbox.Relay) -> None:
        start.wait()
        sent.append(relay.run_once(time.time() + LATER))

    threads = [threading.Thread(target=race, args=(r,)) for r in relays]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(sent) == 60 and queued(conn) == 60
    assert work(conn) == 60
    assert {store.order(i).status for i in order_ids} == {"complete"}


def test_redis_refusing_the_jobs_cancels_them_and_the_relay_sends_nothing(
    conn: Any, tmp_path: Path
) -> None:
    gone = redis.Redis(port=1, decode_responses=True)  # nothing listens on port 1
    config = StoreConfig(db_path=str(tmp_path / "store.db"), timeout=5)
    broken = Store(config, gone)
    with pytest.raises(StepFailed, match="could not enqueue"):
        broken.checkout_deferred(CART)
    assert broken.order(1).status == "failed"  # as before the outbox: the shopper got a 503
    statuses = {r[0] for r in broken.db.execute("SELECT status FROM outbox")}
    assert statuses == {"cancelled"}
    assert Store(config, conn).relay().run_once(time.time() + LATER) == 0 and queued(conn) == 0
    broken.close()


def test_enqueue_once_skips_jobs_redis_knows(conn: Any) -> None:
    q = labqueue.Queue("email", conn)
    payloads = [
        labqueue.Payload.new("Store\\Jobs\\SendReceiptEmail", [{"order_id": i}]) for i in (1, 2)
    ]
    labqueue.enqueue_together([(q, payloads[0])], once=True)
    labqueue.enqueue_together([(q, p) for p in payloads], once=True)
    labqueue.enqueue_together([(q, p) for p in payloads], once=True)
    assert [p.id for p in q.peek()] == [p.id for p in payloads]  # type: ignore[union-attr]
    labqueue.enqueue_together([(q, payloads[0])])  # without once: queued again, as before
    assert q.length == 3


@pytest.mark.slow
def test_sigkill_between_commit_and_enqueue_loses_no_order_s_jobs(
    real: redis.Redis, redis_url: str, tmp_path: Path
) -> None:
    """A store in a child process SIGKILLs itself right after its commit (the test hook);
    the relay then sends the order's jobs and a worker completes it."""
    with FakeMail(latency=0.005, seed=1) as mail, FakeERP(latency=0.005, seed=2) as erp:
        config = StoreConfig(
            db_path=str(tmp_path / "store.db"), redis_url=redis_url, smtp_port=mail.smtp_port,
            erp_url=erp.url, timeout=5,
        )  # fmt: skip
        env = {**os.environ, **config.to_env(), CRASH_AFTER_COMMIT: CART["email"]}
        script = (
            "import sys; from labqueue.demo.checkout import Store; "
            "from labqueue.demo.config import StoreConfig; "
            "Store(StoreConfig.from_env()).checkout_deferred(" + repr(CART) + "); "
            "sys.exit(3)"
        )
        child = subprocess.run([sys.executable, "-c", script], env=env, timeout=60, check=False)
        assert child.returncode == -signal.SIGKILL  # killed after the commit, before the enqueue
        store = Store(config)
        assert store.order(1).status == "queued" and queued(real) == 0
        assert store.order_view(1)["outbox_pending"] == 3
        relay = subprocess.run(
            [sys.executable, "-m", "labqueue.demo", "relay", "--once"],
            env={**os.environ, **config.to_env()}, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert relay.stdout.strip() == "relayed 0 jobs"  # within the dead request's claim
        sent = store.relay().run_once(time.time() + LATER)
        jobs.configure(config)
        try:
            assert sent == 3 and work(real) == 3
        finally:
            jobs.configure(None)
        assert store.order(1).status == "complete"
        assert requests.get(f"{mail.url}/messages?order_id=1", timeout=5).json()["count"] == 1
        assert erp.stats()["sales"] == 1 and erp.stats()["inventory_orders"] == 1
        print(f"\noutbox crash: child exit {child.returncode}, relay sent {sent}, order complete")
        store.close()
