"""The toy store's checkout, in-process: the Flask app on real fake services (SMTP and HTTP
on loopback), fakeredis for the queues, and an in-process worker for the deferred jobs."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from redis.backoff import NoBackoff
from redis.retry import Retry
from store_shop import CART, CART_TOTAL, Shop, shop_fixture  # noqa: F401 (the fixture)

import labqueue
from labqueue.demo import jobs
from labqueue.demo.app import create_app
from labqueue.demo.catalog import INITIAL_STOCK
from labqueue.demo.checkout import TIMING_KEYS
from labqueue.demo.config import StoreConfig


def test_sync_checkout_writes_the_order_sends_the_mail_and_tells_the_erp(shop: Shop) -> None:
    resp = shop.post("sync")
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    order_id = body["order_id"]
    assert body["mode"] == "sync" and body["status"] == "complete"
    assert body["total_cents"] == CART_TOTAL and body["total"] == CART_TOTAL / 100
    assert f"#{order_id}" in body["receipt_html"] and "Wooden train set" in body["receipt_html"]
    assert set(body["timings_ms"]) == set(TIMING_KEYS)
    assert body["timings_ms"]["send_email"] > 0 and body["timings_ms"]["enqueue"] == 0
    assert "jobs" not in body
    assert (shop.rows("order"), shop.rows("order_product")) == (1, 2)

    [message] = shop.messages(order_id)
    assert message["to"] == ["shopper@example.com"]
    assert message["html"].strip() == body["receipt_html"].strip()
    sale = shop.erp_get(f"/sales/{order_id}")
    assert sale["total_cents"] == CART_TOTAL
    stock = shop.erp_get("/inventory")["inventory"]
    assert (stock["SKU-1"], stock["SKU-4"]) == (INITIAL_STOCK - 2, INITIAL_STOCK - 1)

    view = shop.client.get(f"/orders/{order_id}").get_json()
    assert view["status"] == "complete"
    assert {s["status"] for s in view["steps"].values()} == {"done"}


def test_deferred_checkout_answers_first_and_the_jobs_do_the_rest(shop: Shop) -> None:
    resp = shop.post("deferred")
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    order_id = body["order_id"]
    assert body["mode"] == "deferred" and body["status"] == "queued"
    assert set(body["jobs"]) == {"send_email", "erp_record_sale", "erp_decrease_inventory"}
    assert body["timings_ms"]["send_email"] == 0 and body["timings_ms"]["enqueue"] > 0
    assert (shop.rows("order"), shop.rows("order_product")) == (1, 2)
    assert labqueue.Queue("email", shop.redis).length == 1
    assert labqueue.Queue("erp", shop.redis).length == 2
    assert shop.messages() == [] and shop.erp_get("/sales")["count"] == 0
    view = shop.client.get(f"/orders/{order_id}").get_json()
    assert view["status"] == "queued"
    assert {s["job_status"] for s in view["steps"].values()} == {"waiting"}

    assert shop.work() == 3

    [message] = shop.messages(order_id)
    assert message["html"].strip() == body["receipt_html"].strip()  # the job re-renders it
    assert shop.erp_get(f"/sales/{order_id}")["total_cents"] == CART_TOTAL
    assert shop.erp_get("/inventory")["inventory"]["SKU-1"] == INITIAL_STOCK - 2
    view = shop.client.get(f"/orders/{order_id}").get_json()
    assert view["status"] == "complete"
    for name, step in view["steps"].items():
        assert (step["status"], step["job_status"], step["job_id"]) == (
            "done",
            "complete",
            body["jobs"][name],
        )


BAD_BODIES = [
    pytest.param(b"{not json", "body", id="not-json"),
    pytest.param(b"", "body", id="empty-body"),
    pytest.param(b"[1, 2]", "body", id="json-array"),
    pytest.param({"items": CART["items"]}, "email", id="missing-email"),
    pytest.param({**CART, "email": "not-an-address"}, "email", id="bad-email"),
    pytest.param({**CART, "email": "a b@c.d"}, "email", id="email-with-space"),
    pytest.param({**CART, "email": 42}, "email", id="email-not-string"),
    pytest.param({"email": "a@b.c"}, "items", id="missing-items"),
    pytest.param({"email": "a@b.c", "items": []}, "items", id="empty-items"),
    pytest.param({"email": "a@b.c", "items": "SKU-1"}, "items", id="items-not-list"),
    pytest.param({"email": "a@b.c", "items": ["SKU-1"]}, "items[0]", id="item-not-object"),
    pytest.param({"email": "a@b.c", "items": [{"qty": 1}]}, "items[0].sku", id="missing-sku"),
    pytest.param(
        {"email": "a@b.c", "items": [{"sku": "SKU-1", "qty": 1}, {"sku": "SKU-99", "qty": 1}]},
        "items[1].sku",
        id="unknown-sku",
    ),
    pytest.param({"email": "a@b.c", "items": [{"sku": "SKU-1"}]}, "items[0].qty", id="missing-qty"),
    pytest.param(
        {"email": "a@b.c", "items": [{"sku": "SKU-1", "qty": 0}]}, "items[0].qty", id="qty-zero"
    ),
    pytest.param(
        {"email": "a@b.c", "items": [{"sku": "SKU-1", "qty": -3}]},
        "items[0].qty",
        id="qty-negative",
    ),
    pytest.param(
        {"email": "a@b.c", "items": [{"sku": "SKU-1", "qty": 1.5}]}, "items[0].qty", id="qty-float"
    ),
    pytest.param(
        {"email": "a@b.c", "items": [{"sku": "SKU-1", "qty": "2"}]}, "items[0].qty", id="qty-string"
    ),
    pytest.param(
        {"email": "a@b.c", "items": [{"sku": "SKU-1", "qty": True}]}, "items[0].qty", id="qty-bool"
    ),
]


@pytest.mark.parametrize("mode", ["sync", "deferred"])
@pytest.mark.parametrize(("body", "field"), BAD_BODIES)
def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(
    shop: Shop, mode: str, body: Any, field: str
) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    resp = shop.client.post(
        f"/checkout/{mode}", data=data, headers={"Content-Type": "application/json"}
    )
    assert resp.status_code == 400
    answer = resp.get_json()
    assert answer["field"] == field and answer["error"]
    assert [shop.rows(t) for t in ("order", "order_product", "order_step")] == [0, 0, 0]
    assert labqueue.queues(shop.redis) == []
    assert shop.mail.mailbox.received == 0 and shop.erp_get("/stats")["calls"]["sales"] == 0


def test_sync_checkout_when_the_mail_server_fails_is_a_502_and_the_order_is_failed(
    shop: Shop,
) -> None:
    shop.mail.faults.update({"error_rate": 1.0})
    resp = shop.post("sync")
    assert resp.status_code == 502
    body = resp.get_json()
    assert body["step"] == "send_email" and "451" in body["cause"]
    view = shop.client.get(f"/orders/{body['order_id']}").get_json()
    assert view["status"] == "failed"
    assert [s["status"] for s in view["steps"].values()] == ["failed", "skipped", "skipped"]
    assert "451" in view["steps"]["send_email"]["error"]
    assert shop.erp_get("/stats")["calls"] == {"sales": 0, "inventory": 0}


def test_sync_checkout_when_the_erp_fails_is_a_502_naming_the_erp(shop: Shop) -> None:
    resp = requests.post(f"{shop.erp.url}/config", json={"error_rate": 1.0}, timeout=5)
    assert resp.json()["error_rate"] == 1.0
    resp = shop.post("sync")
    assert resp.status_code == 502
    body = resp.get_json()
    assert body["step"] == "erp_record_sale" and "503" in body["cause"]
    assert body["timings_ms"]["send_email"] > 0
    assert len(shop.messages(body["order_id"])) == 1
    view = shop.client.get(f"/orders/{body['order_id']}").get_json()
    assert view["status"] == "failed"
    assert [s["status"] for s in view["steps"].values()] == ["done", "failed", "skipped"]


def test_a_failing_deferred_job_lands_in_the_failed_store_and_a_retry_completes_it(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    # once its retries are spent (here: none; the retries are tests/test_store_outage.py's)
    monkeypatch.setattr(jobs.ERPJob, "retry_limit", 0)
    shop.erp.faults.update({"error_rate": 1.0})
    order_id = shop.post("deferred").get_json()["order_id"]
    assert shop.work() == 3
    failed = labqueue.FailedStore(shop.redis).all()
    assert sorted(f.job_class for f in failed) == [
        "Store\\Jobs\\DecreaseInventoryInERP",
        "Store\\Jobs\\RecordSaleInERP",
    ]
    assert all(f.exception == "StepFailed" and "503" in f.error for f in failed)
    view = shop.client.get(f"/orders/{order_id}").get_json()
    assert view["status"] == "queued"
    assert [s["status"] for s in view["steps"].values()] == ["done", "failed", "failed"]
    assert [s["job_status"] for s in view["steps"].values()] == ["complete", "failed", "failed"]

    shop.erp.faults.update({"error_rate": 0.0})
    assert labqueue.FailedStore(shop.redis).requeue(None) == 2
    assert shop.work() == 2
    view = shop.client.get(f"/orders/{order_id}").get_json()
    assert view["status"] == "complete"
    assert [s["attempts"] for s in view["steps"].values()] == [1, 2, 2]
    assert shop.erp_get("/inventory")["inventory"]["SKU-1"] == INITIAL_STOCK - 2


@pytest.mark.parametrize(
    "job", [jobs.SendReceiptEmail, jobs.RecordSaleInERP, jobs.DecreaseInventoryInERP]
)
def test_each_job_run_twice_acts_once(shop: Shop, job: type[jobs.StoreJob]) -> None:
    order_id = shop.post("deferred").get_json()["order_id"]
    queue = labqueue.Queue(
        shop.config.email_queue if job.step == "send_email" else "erp", shop.redis
    )
    queue.clear()
    labqueue.Queue("email" if queue.name == "erp" else "erp", shop.redis).clear()
    ids = [queue.enqueue(job, order_id=order_id) for _ in range(2)]
    assert shop.work() == 2
    assert all(
        labqueue.get_status(shop.redis, i).status is labqueue.JobStatus.COMPLETE for i in ids
    )

    emails = shop.messages(order_id)
    sales = shop.erp_get("/sales")["count"]
    stock = shop.erp_get("/inventory")["inventory"]["SKU-1"]
    if job is jobs.SendReceiptEmail:
        assert (len(emails), sales, stock) == (1, 0, INITIAL_STOCK)
    elif job is jobs.RecordSaleInERP:
        assert (len(emails), sales, stock) == (0, 1, INITIAL_STOCK)
    else:
        assert (len(emails), sales, stock) == (0, 0, INITIAL_STOCK - 2)
    if job is not jobs.SendReceiptEmail:
        assert shop.erp_get("/stats")["duplicates"] == 1


def test_a_job_for_an_unknown_order_or_without_an_order_id_fails_clearly(shop: Shop) -> None:
    q = labqueue.Queue("erp", shop.redis)
    q.enqueue(jobs.RecordSaleInERP, order_id=404)
    q.enqueue(jobs.RecordSaleInERP, order="x")
    assert shop.work() == 2
    errors = sorted(f.error for f in labqueue.FailedStore(shop.redis).all())
    assert "no order 404" in errors[1]
    assert "needs args {'order_id': int}" in errors[0]


def test_orders_products_and_health(shop: Shop) -> None:
    assert shop.client.get("/orders/12345").status_code == 404
    assert shop.client.get("/orders/12345").get_json()["error"] == "no order 12345"
    products = shop.client.get("/products").get_json()["products"]
    assert [p["sku"] for p in products] == [f"SKU-{i}" for i in range(1, 21)]
    health = shop.client.get("/healthz")
    assert health.status_code == 200 and health.get_json() == {
        "ok": True,
        "db": "ok",
        "redis": "ok",
    }
    assert shop.client.get("/checkout/sync").status_code == 405


def test_a_deferred_checkout_without_redis_is_a_503_and_the_order_is_failed(
    tmp_path: Path,
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    gone = redis.Redis(port=port, retry=Retry(NoBackoff(), 0), decode_responses=True)
    config = StoreConfig(db_path=str(tmp_path / "store.db"), timeout=5)
    app = create_app(config, redis_client=gone)  # starts although Redis is not there
    client = app.test_client()
    resp = client.post("/checkout/deferred", json=CART)
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["step"] == "enqueue" and "could not enqueue" in body["cause"]
    view = client.get(f"/orders/{body['order_id']}").get_json()
    assert view["status"] == "failed"
    assert {s["status"] for s in view["steps"].values()} == {"failed"}
    health = client.get("/healthz")
    assert health.status_code == 503 and health.get_json()["redis"].startswith("ConnectionError")
    app.extensions["store"].close()
