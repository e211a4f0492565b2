"""An ERP outage (issue 12): sync checkouts answer 502 while it lasts; deferred ones answer
200, their ERP jobs retry with backoff (and jitter), and drain once the ERP is back, each
sale recorded once."""

from __future__ import annotations

import random
import threading
import time

import pytest
from store_shop import Shop, shop_fixture  # noqa: F401 (the fixture)
from waiting import wait_for

import labqueue
from labqueue.delayed import delayed_jobs
from labqueue.demo import jobs

ORDERS = 8


def test_the_erp_jobs_have_retries_on_the_erps_failures_only() -> None:
    for job in (jobs.RecordSaleInERP, jobs.DecreaseInventoryInERP):
        assert job.retry_limit == 10 and job.retry_jitter == "full"
        assert job.retry_on == (jobs.StepFailed,)
    assert jobs.SendReceiptEmail.retry_limit == 0


def test_deferred_checkouts_ride_out_an_erp_outage_and_drain_after_it(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs.ERPJob, "retry_backoff", (0.2, 0.4, 0.8))  # the schedule, sped up
    shop.erp.faults.update({"error_rate": 1.0})  # the ERP goes down
    assert shop.post("sync").status_code == 502
    answers = [shop.post("deferred") for _ in range(ORDERS)]
    assert {a.status_code for a in answers} == {200}
    worker = labqueue.Worker(
        ["email", "erp"], shop.redis, poll_interval=0.02, scheduler_interval=0.05,
        rng=random.Random(5),
    )  # fmt: skip
    thread = threading.Thread(target=worker.work, daemon=True)
    thread.start()
    try:
        wait_for(lambda: shop.erp.stats()["failures"] >= 4 * ORDERS, timeout=30,
                 what="the ERP jobs to fail and retry a few times")  # fmt: skip
        retrying = delayed_jobs(shop.redis)
        assert labqueue.FailedStore(shop.redis).all() == []  # waiting to retry, not failed
        assert shop.erp_get("/sales")["count"] == 0
        recovered = time.monotonic()
        shop.erp.faults.update({"error_rate": 0.0})  # the ERP is back
        orders = [a.get_json()["order_id"] for a in answers]
        wait_for(
            lambda: all(shop.client.get(f"/orders/{i}").get_json()["status"] == "complete"
                        for i in orders),
            timeout=30, what="the orders to complete",
        )  # fmt: skip
        drained = time.monotonic() - recovered
    finally:
        worker.stop()
        thread.join(10)
    stats = shop.erp.stats()
    print(
        f"\nERP outage: {ORDERS} deferred orders answered 200, {stats['failures']} ERP calls "
        f"failed, {len(retrying)} jobs in the retry schedule when it came back, all drained "
        f"{drained:.2f} s after that"
    )
    assert retrying and all(d.attempts >= 1 for d in retrying)
    assert shop.erp_get("/sales")["count"] == ORDERS  # each once (the sync checkout's failed)
    assert stats["inventory_orders"] == ORDERS
    assert labqueue.FailedStore(shop.redis).all() == []
    view = shop.client.get(f"/orders/{orders[0]}").get_json()
    assert view["steps"]["erp_record_sale"]["attempts"] >= 2  # it failed, then succeeded
