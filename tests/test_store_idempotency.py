"""``Idempotency-Key`` on both checkouts (issue 12): a retry never places a second order.

In-process (the Flask app, fakeredis, real fake services); the same under concurrent
retries against gunicorn is tests/test_store_truth_stack.py.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

import pytest
from store_shop import CART, Shop, shop_fixture  # noqa: F401 (the fixture)

from labqueue.demo import db, idempotency

MODES = ["sync", "deferred"]


def post(shop: Shop, mode: str, key: str | None, body: Any = CART) -> Any:
    headers = {} if key is None else {"Idempotency-Key": key}
    return shop.client.post(f"/checkout/{mode}", json=body, headers=headers)


@pytest.mark.parametrize("mode", MODES)
def test_the_same_key_gets_the_first_answer_and_no_second_order(shop: Shop, mode: str) -> None:
    first = post(shop, mode, "order-7f3a")
    assert first.status_code == 200 and idempotency.REPLAYED not in first.headers
    again = [post(shop, mode, "order-7f3a") for _ in range(3)]
    assert all(r.status_code == 200 for r in again)
    assert all(r.get_data() == first.get_data() for r in again)  # byte for byte, timings too
    assert all(r.headers[idempotency.REPLAYED] == "true" for r in again)
    assert shop.rows("order") == 1 and shop.rows("idempotency_key") == 1
    other = post(shop, mode, "order-8b1c")  # another key: another order
    assert other.get_json()["order_id"] == first.get_json()["order_id"] + 1
    assert post(shop, mode, None).get_json()["order_id"] == first.get_json()["order_id"] + 2
    if mode == "deferred":
        assert shop.work() == 9  # three orders, three jobs each: none for the replays


def test_a_failed_orders_answer_is_given_again_even_once_the_erp_is_back(shop: Shop) -> None:
    shop.erp.faults.update({"error_rate": 1.0})
    first = post(shop, "sync", "k-502")
    assert first.status_code == 502
    shop.erp.faults.update({"error_rate": 0.0})
    again = post(shop, "sync", "k-502")
    assert (again.status_code, again.get_data()) == (502, first.get_data())
    assert shop.rows("order") == 1 and shop.erp.stats()["sales"] == 0


@pytest.mark.parametrize("mode", MODES)
def test_a_key_reused_for_another_request_is_a_422_naming_it(shop: Shop, mode: str) -> None:
    first = post(shop, mode, "shared-key")
    other_mode = "deferred" if mode == "sync" else "sync"
    cases = [
        (mode, {**CART, "email": "someone.else@example.com"}),
        (mode, {**CART, "items": [{"sku": "SKU-1", "qty": 3}]}),
        (other_mode, CART),
    ]
    before = shop.written()
    for where, body in cases:
        resp = post(shop, where, "shared-key", body)
        assert resp.status_code == 422, resp.get_json()
        answer = resp.get_json()
        assert answer["field"] == "Idempotency-Key" and "shared-key" in answer["error"]
        assert f"order {first.get_json()['order_id']}" in answer["error"]
    assert shop.written() == before


BAD_KEYS = [
    pytest.param("", id="empty"),
    pytest.param("a" * 256, id="too-long"),
    pytest.param("two words", id="space"),
    pytest.param("schlüssel", id="not-ascii"),
    pytest.param('quote"d', id="quote"),
    pytest.param("semi;colon", id="semicolon"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("key", BAD_KEYS)
def test_a_malformed_key_is_a_400_naming_the_header_and_writes_nothing(
    shop: Shop, mode: str, key: str
) -> None:
    before = shop.written()
    resp = shop.client.post(
        f"/checkout/{mode}",
        json=CART,
        headers=[("Idempotency-Key", key.encode().decode("latin-1"))],
    )
    assert resp.status_code == 400
    assert resp.get_json()["field"] == "Idempotency-Key"
    assert shop.written() == before


def test_the_header_twice_is_a_400_and_a_key_at_the_limit_works(shop: Shop) -> None:
    twice = [("Idempotency-Key", "a"), ("Idempotency-Key", "b")]
    resp = shop.client.post("/checkout/sync", json=CART, headers=twice)
    assert resp.status_code == 400 and resp.get_json()["field"] == "Idempotency-Key"
    longest = "A-z0_9.:~+/=" * 21 + "abc"
    assert len(longest) == 255
    assert post(shop, "sync", longest).status_code == 200


def test_a_refused_request_leaves_its_key_free(shop: Shop) -> None:
    bad = post(shop, "deferred", "k-1", {**CART, "items": [{"sku": "SKU-99", "qty": 1}]})
    assert bad.status_code == 400 and bad.get_json()["field"] == "items[0].sku"
    assert shop.rows("idempotency_key") == 0
    assert post(shop, "deferred", "k-1").status_code == 200


def key_row(shop: Shop, key: str, owner: str, order_id: int) -> None:
    """A key whose first request is still under way (no answer yet), held by ``owner``."""
    conn = db.connect(shop.config.db_path)
    with db.transaction(conn):
        conn.execute(
            "INSERT INTO idempotency_key (key, mode, fingerprint, order_id, owner, created_at) "
            "SELECT ?, 'deferred', fingerprint, ?, ?, ? FROM idempotency_key WHERE key = 'seed'",
            (key, order_id, owner, time.time()),
        )
    conn.close()


def test_a_retry_while_the_first_is_under_way_waits_then_409s(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    order_id = post(shop, "deferred", "seed").get_json()["order_id"]
    key_row(shop, "busy", f"{socket.gethostname()}:{os.getpid()}", order_id)  # alive: us
    monkeypatch.setattr(idempotency, "WAIT", 0.3)
    started = time.monotonic()
    resp = post(shop, "deferred", "busy")
    assert time.monotonic() - started >= 0.3
    assert resp.status_code == 409 and resp.headers["Retry-After"] == "1"
    answer = resp.get_json()
    assert answer["field"] == "Idempotency-Key" and answer["order_id"] == order_id

    def answer_late() -> None:  # the first request answers meanwhile: that answer is replayed
        conn = db.connect(shop.config.db_path)
        idempotency.remember(conn, "busy", 200, '{"late": true}')
        conn.close()

    threading.Timer(0.2, answer_late).start()
    monkeypatch.setattr(idempotency, "WAIT", 5.0)
    resp = post(shop, "deferred", "busy")
    assert (resp.status_code, resp.get_json()) == (200, {"late": True})
    assert shop.rows("order") == 1


def test_a_key_whose_request_died_answers_with_the_order_as_it_is(shop: Shop) -> None:
    order_id = post(shop, "deferred", "seed").get_json()["order_id"]
    key_row(shop, "orphan", f"{socket.gethostname()}:999999999", order_id)  # no such process
    resp = post(shop, "deferred", "orphan")
    assert resp.status_code == 200 and resp.headers[idempotency.REPLAYED] == "true"
    view = resp.get_json()
    assert view["order_id"] == order_id and view["status"] == "queued" and "steps" in view
    assert shop.rows("order") == 1


@pytest.mark.parametrize("mode", MODES)
def test_concurrent_retries_with_one_key_place_one_order(shop: Shop, mode: str) -> None:
    app = shop.client.application
    answers: list[Any] = []
    lock = threading.Lock()

    def retry() -> None:
        resp = app.test_client().post(
            f"/checkout/{mode}", json=CART, headers={"Idempotency-Key": "storm"}
        )
        with lock:
            answers.append((resp.status_code, resp.get_data()))

    threads = [threading.Thread(target=retry) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(answers) == 12 and {status for status, _ in answers} == {200}
    assert len({body for _, body in answers}) == 1  # all the first answer
    assert shop.rows("order") == 1 and shop.rows("idempotency_key") == 1
