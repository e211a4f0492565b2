"""The fake mail server and the fake ERP: real loopback services with seeded faults."""

from __future__ import annotations

import smtplib
import socket
import statistics
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from labqueue.demo.__main__ import main as store_main
from labqueue.demo.catalog import INITIAL_STOCK
from labqueue.demo.errors import StoreError
from labqueue.demo.fakeerp import FakeERP
from labqueue.demo.fakemail import FakeMail
from labqueue.demo.netfake import Faults
from labqueue.errors import ConfigurationError, LabqueueError


def test_faults_are_reproducible_from_the_seed_and_centred_on_the_latency() -> None:
    first, second = Faults(0.25, 0.2, 0.3, seed=7), Faults(0.25, 0.2, 0.3, seed=7)
    draws = [first.draw() for _ in range(2000)]
    assert draws == [second.draw() for _ in range(2000)]
    assert draws != [Faults(0.25, 0.2, 0.3, seed=8).draw() for _ in range(2000)]
    delays = [d for d, _ in draws]
    assert min(delays) > 0
    assert 0.24 < statistics.mean(delays) < 0.26
    assert 0.04 < statistics.stdev(delays) < 0.06  # jitter 0.2 of 0.25 s
    assert 0.27 < sum(f for _, f in draws) / len(draws) < 0.33


def test_faults_without_jitter_or_errors_are_exact() -> None:
    faults = Faults(0.1, jitter=0.0, error_rate=0.0)
    assert {faults.draw() for _ in range(50)} == {(0.1, False)}
    faults.update({"error_rate": 1.0, "latency": 0})
    assert {faults.draw() for _ in range(50)} == {(0.0, True)}


@pytest.mark.parametrize(
    "changes",
    [{"error_rate": 1.5}, {"latency": -1}, {"latency": "slow"}, {"speed": 2}],
)
def test_bad_fault_settings_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Faults().update(changes)


# -- the ERP ---------------------------------------------------------------------------
@pytest.fixture
def erp() -> Iterator[FakeERP]:
    with FakeERP(latency=0.002, seed=3) as service:
        yield service


SALE = {"order_id": 7, "email": "a@b.c", "total_cents": 1098, "items": [{"sku": "SKU-1", "qty": 2}]}


def post(url: str, body: Any) -> requests.Response:
    return requests.post(url, json=body, timeout=5)


def test_the_erp_records_a_sale_once_per_order_id(erp: FakeERP) -> None:
    first = post(f"{erp.url}/sales", SALE)
    again = post(f"{erp.url}/sales", {**SALE, "total_cents": 1})
    assert (first.status_code, first.json()["recorded"]) == (201, True)
    assert (again.status_code, again.json()["duplicate"]) == (200, True)
    sales = requests.get(f"{erp.url}/sales", timeout=5).json()
    assert (sales["count"], sales["revenue_cents"]) == (1, 1098)
    assert requests.get(f"{erp.url}/sales/7", timeout=5).json()["total_cents"] == 1098
    assert requests.get(f"{erp.url}/sales?order_id=8", timeout=5).json()["count"] == 0
    stats = requests.get(f"{erp.url}/stats", timeout=5).json()
    assert (stats["calls"]["sales"], stats["duplicates"], stats["sales"]) == (2, 1, 1)


def test_the_erp_decreases_inventory_once_per_order_id(erp: FakeERP) -> None:
    body = {"order_id": 9, "items": [{"sku": "SKU-2", "qty": 3}, {"sku": "SKU-5", "qty": 1}]}
    first = post(f"{erp.url}/inventory/decrease", body).json()
    again = post(f"{erp.url}/inventory/decrease", body).json()
    assert first["applied"] and first["levels"] == {
        "SKU-2": INITIAL_STOCK - 3,
        "SKU-5": INITIAL_STOCK - 1,
    }
    assert again == {"order_id": 9, "applied": False, "duplicate": True}
    stock = requests.get(f"{erp.url}/inventory", timeout=5).json()
    assert stock["inventory"]["SKU-2"] == INITIAL_STOCK - 3 and stock["orders_applied"] == 1
    assert post(f"{erp.url}/reset", {}).json() == {"reset": True}
    assert (
        requests.get(f"{erp.url}/inventory", timeout=5).json()["inventory"]["SKU-2"]
        == INITIAL_STOCK
    )


@pytest.mark.parametrize(
    "body",
    [
        None,
        {"items": SALE["items"]},
        {**SALE, "order_id": True},
        {**SALE, "order_id": "7"},
        {**SALE, "items": []},
        {**SALE, "items": [{"sku": "SKU-1", "qty": 0}]},
        {**SALE, "items": [{"qty": 1}]},
    ],
)
def test_the_erp_refuses_bad_calls_with_a_400(erp: FakeERP, body: Any) -> None:
    resp = post(f"{erp.url}/sales", body)
    assert resp.status_code == 400 and resp.json()["error"]
    assert erp.sales == {}


def test_a_failing_erp_answers_503_and_records_nothing(erp: FakeERP) -> None:
    assert post(f"{erp.url}/config", {"error_rate": 1.0}).json()["error_rate"] == 1.0
    resp = post(f"{erp.url}/sales", SALE)
    assert resp.status_code == 503 and "simulated" in resp.json()["error"]
    assert post(f"{erp.url}/inventory/decrease", SALE).status_code == 503
    stats = requests.get(f"{erp.url}/stats", timeout=5).json()
    assert (stats["failures"], stats["sales"], stats["inventory_orders"]) == (2, 0, 0)


def test_the_erp_api_answers_json_for_unknown_paths_and_methods(erp: FakeERP) -> None:
    assert requests.get(f"{erp.url}/healthz", timeout=5).json() == {
        "ok": True,
        "service": "fakeerp",
    }
    missing = requests.get(f"{erp.url}/nope", timeout=5)
    assert missing.status_code == 404 and "POST /sales" in missing.json()["endpoints"]
    assert requests.delete(f"{erp.url}/sales", timeout=5).status_code == 405
    assert requests.get(f"{erp.url}/sales/99", timeout=5).status_code == 404
    bad_json = requests.post(f"{erp.url}/sales", data=b"{", timeout=5)
    assert bad_json.status_code == 400
    assert post(f"{erp.url}/config", {"error_rate": 3}).status_code == 400


# -- the mail server -------------------------------------------------------------------
@pytest.fixture
def mail() -> Iterator[FakeMail]:
    with FakeMail(latency=0.002, seed=4) as service:
        yield service


def receipt(order_id: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"] = "shop@toystore.test", "shopper@example.com"
    msg["Subject"], msg["X-Order-Id"] = f"Receipt {order_id}", str(order_id)
    msg.set_content("plain")
    msg.add_alternative(f"<p>order {order_id}</p>", subtype="html")
    return msg


def send(mail: FakeMail, msg: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", mail.smtp_port, local_hostname="test", timeout=5) as smtp:
        smtp.send_message(msg)


def test_the_mail_server_keeps_what_it_received_and_shows_it(mail: FakeMail) -> None:
    send(mail, receipt(1))
    send(mail, receipt(2))
    listing = requests.get(f"{mail.url}/messages", timeout=5).json()
    assert listing["count"] == 2
    first = listing["messages"][0]
    assert (first["id"], first["order_id"], first["subject"]) == (1, 1, "Receipt 1")
    assert first["to"] == ["shopper@example.com"] and first["html"].strip() == "<p>order 1</p>"
    only_two = requests.get(f"{mail.url}/messages?order_id=2", timeout=5).json()
    assert [m["order_id"] for m in only_two["messages"]] == [2]
    assert requests.get(f"{mail.url}/messages/2", timeout=5).json()["subject"] == "Receipt 2"
    assert requests.get(f"{mail.url}/messages/3", timeout=5).status_code == 404
    assert requests.get(f"{mail.url}/messages?order_id=x", timeout=5).status_code == 400
    assert requests.delete(f"{mail.url}/messages", timeout=5).json() == {"deleted": 2}
    assert requests.get(f"{mail.url}/stats", timeout=5).json()["received"] == 0


def test_a_failing_mail_server_answers_451_and_keeps_nothing(mail: FakeMail) -> None:
    assert post(f"{mail.url}/config", {"error_rate": 1.0}).json()["error_rate"] == 1.0
    with pytest.raises(smtplib.SMTPDataError) as info:
        send(mail, receipt(1))
    assert info.value.smtp_code == 451
    stats = requests.get(f"{mail.url}/stats", timeout=5).json()
    assert (stats["received"], stats["refused"]) == (0, 1)


def test_the_store_command_tells_its_errors_in_one_line() -> None:
    assert not issubclass(StoreError, LabqueueError)  # the store's own, handled all the same
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(store_main, ["erp", "--port", str(port)])
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"Error: cannot listen on 127.0.0.1:{port} for fakeerp")
    assert len(result.output.splitlines()) == 1 and "Traceback" not in result.output
    usage = CliRunner().invoke(store_main, ["erp", "--error-rate", "2"])
    assert usage.exit_code == 2 and "--error-rate" in usage.output
    assert len(usage.output.splitlines()) == 1 and "Usage:" not in usage.output


# -- the call logs: when each call really happened --------------------------------------
def test_the_erp_logs_every_call_with_its_order_time_and_result(erp: FakeERP) -> None:
    post(f"{erp.url}/sales", SALE)
    post(f"{erp.url}/sales", SALE)
    post(f"{erp.url}/inventory/decrease", {"order_id": 7, "items": [{"sku": "SKU-1", "qty": 1}]})
    post(f"{erp.url}/sales", {"order_id": 0})  # refused before it is a call: not logged
    post(f"{erp.url}/config", {"error_rate": 1.0})
    post(f"{erp.url}/sales", {**SALE, "order_id": 8})
    log = requests.get(f"{erp.url}/calls", timeout=5).json()
    calls = log["calls"]
    assert [(c["call"], c["order_id"], c["result"]) for c in calls] == [
        ("sales", 7, "recorded"),
        ("sales", 7, "duplicate"),
        ("inventory", 7, "applied"),
        ("sales", 8, "failed"),
    ]
    assert calls[0]["to"] == "a@b.c" and calls[2]["to"] is None
    assert all(c["received"] <= c["answered"] for c in calls)
    assert [c["answered"] for c in calls] == sorted(c["answered"] for c in calls)
    assert (log["total"], log["first"], log["next"]) == (4, 0, 4)
    page = requests.get(f"{erp.url}/calls?since=1&limit=2", timeout=5).json()
    assert [c["result"] for c in page["calls"]] == ["duplicate", "applied"] and page["next"] == 3
    assert requests.get(f"{erp.url}/calls?since=x", timeout=5).status_code == 400
    post(f"{erp.url}/reset", {})
    after = requests.get(f"{erp.url}/calls", timeout=5).json()
    assert (after["total"], after["calls"]) == (4, [])  # forgotten, still counted


def test_the_mail_server_logs_accepted_and_refused_messages(mail: FakeMail) -> None:
    send(mail, receipt(5))
    post(f"{mail.url}/config", {"error_rate": 1.0})
    with pytest.raises(smtplib.SMTPDataError):
        send(mail, receipt(6))
    calls = requests.get(f"{mail.url}/calls", timeout=5).json()["calls"]
    assert [(c["call"], c["order_id"], c["result"], c["to"]) for c in calls] == [
        ("mail", 5, "accepted", "shopper@example.com"),
        ("mail", 6, "refused", "shopper@example.com"),
    ]
    message = requests.get(f"{mail.url}/messages/1", timeout=5).json()
    assert calls[0]["received"] <= message["received_at"] <= calls[0]["answered"]


def test_a_call_log_forgets_the_oldest_past_its_limit() -> None:
    from labqueue.demo.calllog import CallLog

    log = CallLog(limit=3)
    for i in range(5):
        log.add("sales", i, 0.0, "recorded")
    page = log.since(0, 10)
    assert [c["order_id"] for c in page["calls"]] == [2, 3, 4]
    assert (page["first"], page["next"], page["total"]) == (2, 5, 5)
    assert log.since(4, 10)["calls"][0]["order_id"] == 4 and log.since(5, 10)["calls"] == []
