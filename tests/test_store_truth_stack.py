"""Issue 12's store behaviours on the real stack: gunicorn's four workers, the outbox relay
process, labqueue workers, a real redis-server.

- N concurrent retries with one Idempotency-Key place exactly one order (both checkouts).
- A gunicorn worker SIGKILLed between the order's commit and its enqueue (the test hook)
  loses no job: the relay sends them, the workers complete the order, and the client's retry
  with its key gets that order back, not a second one.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from waiting import wait_for

from labqueue.demo import db
from labqueue.demo.checkout import CRASH_AFTER_COMMIT
from labqueue.demo.stack import Stack
from labqueue.embedded import find_redis_server

pytestmark = [
    pytest.mark.slow,  # the whole store: Redis, mail, ERP, gunicorn, relay, workers
    pytest.mark.skipif(
        find_redis_server() is None and not os.environ.get("CI"), reason="no redis-server binary"
    ),
]

CART = {"email": "shopper@example.com", "items": [{"sku": "SKU-3", "qty": 1}]}
DOOMED = "crash-after-commit@example.com"
RETRIES = 24


def orders(stack: Stack) -> int:
    conn = db.connect(stack.config.db_path)
    try:
        return db.count_rows(conn, "order")
    finally:
        conn.close()


def storm(url: str, key: str, body: Any = CART) -> list[tuple[int, bytes]]:
    """RETRIES requests with one key, all released at the same instant."""
    answers: list[tuple[int, bytes]] = []
    start, lock = threading.Barrier(RETRIES), threading.Lock()

    def send() -> None:
        start.wait()
        resp = requests.post(url, json=body, headers={"Idempotency-Key": key}, timeout=60)
        with lock:
            answers.append((resp.status_code, resp.content))

    threads = [threading.Thread(target=send) for _ in range(RETRIES)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    return answers


def status_of(stack: Stack, order_id: int) -> str:
    resp = requests.get(f"{stack.store_url}/orders/{order_id}", timeout=10).json()
    return str(resp["status"])


def test_one_key_one_order_under_concurrent_retries_and_a_crash_after_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CRASH_AFTER_COMMIT, DOOMED)  # every gunicorn worker inherits the hook
    with Stack(email_latency=0.01, erp_latency=0.01, web_workers=4, queue_workers=2,
               log_dir=tmp_path / "logs") as s:  # fmt: skip
        for n, mode in enumerate(("sync", "deferred"), start=1):
            answers = storm(f"{s.store_url}/checkout/{mode}", f"storm-{mode}")
            assert len(answers) == RETRIES and {code for code, _ in answers} == {200}, answers
            assert len({body for _, body in answers}) == 1  # every retry: the first answer
            assert orders(s) == n  # one order per key, whatever the concurrency
        wait_for(lambda: status_of(s, 2) == "complete", timeout=30, what="the deferred order")
        assert requests.get(f"{s.erp_url}/sales", timeout=5).json()["count"] == 2

        doomed = {**CART, "email": DOOMED}
        crashed_at = time.monotonic()
        with pytest.raises(requests.ConnectionError):  # its gunicorn worker died mid-request
            requests.post(f"{s.store_url}/checkout/deferred", json=doomed,
                          headers={"Idempotency-Key": "doomed-1"}, timeout=30)  # fmt: skip
        assert orders(s) == 3 and status_of(s, 3) == "queued"  # committed, jobs not enqueued
        wait_for(lambda: status_of(s, 3) == "complete", timeout=60,
                 what="the relay to send the dead request's jobs")  # fmt: skip
        recovered = time.monotonic() - crashed_at
        retry = requests.post(f"{s.store_url}/checkout/deferred", json=doomed,
                              headers={"Idempotency-Key": "doomed-1"}, timeout=30)  # fmt: skip
        assert retry.status_code == 200 and retry.headers["Idempotent-Replayed"] == "true"
        assert retry.json()["order_id"] == 3 and retry.json()["status"] == "complete"
        assert orders(s) == 3  # the retry placed no second order
        mails = requests.get(f"{s.mail_url}/messages?order_id=3", timeout=5).json()
        assert mails["count"] == 1
        relay_log = (s.log_dir / "relay.log").read_text()
        assert "enqueued 3 jobs of orders [3]" in relay_log, relay_log
        after = requests.post(f"{s.store_url}/checkout/deferred", json=CART, timeout=30)
        assert after.status_code == 200  # gunicorn replaced its worker
        print(
            f"\n{RETRIES} concurrent retries per key: 1 order each (sync, deferred); a worker "
            f"SIGKILLed after its commit: order complete {recovered:.1f} s later via the relay"
        )
