"""What the store refuses (issue 15, items 9 and 11, and what a hostile tester tries next):
header injection through the email, bodies too large or not JSON, echoed values, odd URLs.
Every refusal is a 4xx naming the field, and writes nothing."""

from __future__ import annotations

import email
import email.policy
import io
import json
from typing import Any

import pytest
from store_shop import CART, Shop, shop_fixture  # noqa: F401 (the fixture)

from labqueue.demo import steps
from labqueue.demo.catalog import PRODUCTS
from labqueue.demo.config import StoreConfig
from labqueue.demo.db import Order
from labqueue.demo.errors import MAX_ECHO, BadInput
from labqueue.demo.orderform import parse_checkout
from labqueue.errors import ConfigurationError

JSON = {"Content-Type": "application/json"}

#: Addresses a header-injection tester would try: each must be a 400 naming ``email``.
HOSTILE_EMAILS = [
    "a@b.c\n",
    "a@b.c\r\n",
    "a@b.c\r\nBcc: evil@example.com",
    "a@b.c\nBcc: evil@example.com",
    "a@b.c\r",
    "victim,a@b.c",
    "victim@example.com,a@b.c",
    "a@b.c, victim@example.com",
    "<x>a@b.c",
    "a@b.c<x>",
    "Name <a@b.c>",
    "<a@b.c>",
    "né@example.com",
    "ünïcödé@example.com",
    "a@bücher.example",
    "a\x00@b.c",
    "a@b.c\x00",
    "\x00",
    "a\t@b.c",
    "a@b.c;victim@example.com",
    "a@b.c victim@example.com",
    " a@b.c",
    "a@b.c ",
    '"a,b"@example.com',
    '"a b"@example.com',
    "a@[127.0.0.1]",
    "(comment)a@b.c",
    "=?utf-8?b?YUBiLmM=?=@b.c",  # decodes to a@b.c@b.c in the To header
    "=?utf-8?q?a=2Cb=40evil.com?=@b.c",  # decodes to "a,b@evil.com" in the To header
    "a@b.c\u2028",
    "a\u200b@b.c",
    "a@b.c\u202e",
    "a@b.c%0aBcc:x@y.z",
    "a@localhost",
    "@b.c",
    "a@",
    "a@@b.c",
    "a@b@c.d",
    "x" * 65 + "@example.com",
    "a@" + "b" * 250 + ".com",
    "",
]

#: Odd but valid addresses: accepted, and each reaches exactly one recipient, itself.
ODD_BUT_VALID = [
    "a@b.c",
    "A@EXAMPLE.COM",
    "a+tag@example.com",
    "a'b@example.com",
    "a/b@example.com",
    "a%b@example.com",
    "a{b}@example.com",
    "a|b@example.com",
    "a=b@example.com",
    "x" * 64 + "@example.com",
    "a@" + ".".join(["b" * 60] * 3) + ".com",
]


def post(shop: Shop, mode: str, data: bytes, headers: dict[str, str] | None = None) -> Any:
    return shop.client.post(
        f"/checkout/{mode}", data=data, headers=JSON if headers is None else headers
    )


# -- item 9: the email ----------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["sync", "deferred"])
@pytest.mark.parametrize("address", HOSTILE_EMAILS)
def test_a_hostile_email_is_a_400_naming_email_and_writes_nothing(
    shop: Shop, mode: str, address: str
) -> None:
    resp = post(shop, mode, json.dumps({**CART, "email": address}).encode())
    assert resp.status_code == 400, resp.get_json()
    assert resp.get_json()["field"] == "email"
    assert shop.written() == (0, 0, 0, 0, 0, 0)


@pytest.mark.parametrize("address", ODD_BUT_VALID)
def test_an_odd_but_valid_email_is_mailed_to_exactly_itself(shop: Shop, address: str) -> None:
    resp = post(shop, "sync", json.dumps({**CART, "email": address}).encode())
    assert resp.status_code == 200, resp.get_json()
    [message] = shop.messages(resp.get_json()["order_id"])
    assert message["to"] == [address]
    view = shop.client.get(f"/orders/{resp.get_json()['order_id']}").get_json()
    assert view["email"] == address


@pytest.mark.parametrize("address", ODD_BUT_VALID)
def test_the_receipt_header_names_exactly_the_address(address: str) -> None:
    order = Order(7, parse_checkout({**CART, "email": address}).email, "sync", "complete", 1, 0)
    raw = steps.receipt_message(StoreConfig(), order, "<p>hi</p>").as_bytes()
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert [a.addr_spec for a in parsed["To"].addresses] == [address]
    as_sent = email.message_from_bytes(raw, policy=email.policy.compat32)["To"]
    assert "".join(as_sent.split()) == address  # folded maybe, never encoded or added to


def test_the_sender_gets_the_same_plain_address_rule() -> None:
    with pytest.raises(ConfigurationError, match="sender"):
        StoreConfig(sender="receipts@toystore.test\r\nBcc: evil@example.com")
    with pytest.raises(ConfigurationError, match="sender"):
        StoreConfig(sender="a@b.c, evil@example.com")


# -- item 11: body size, content type, echo -------------------------------------------------
@pytest.mark.parametrize("mode", ["sync", "deferred"])
def test_a_body_over_the_limit_is_a_413_in_json_and_writes_nothing(shop: Shop, mode: str) -> None:
    big = json.dumps({**CART, "pad": "x" * (2 * 1024 * 1024)}).encode()
    resp = post(shop, mode, big)
    assert resp.status_code == 413
    answer = resp.get_json()
    assert answer["field"] == "body" and "too large" in answer["error"].lower()
    assert shop.written() == (0, 0, 0, 0, 0, 0)


def test_a_chunked_body_over_the_limit_is_a_413(shop: Shop) -> None:
    big = json.dumps({**CART, "pad": "x" * (2 * 1024 * 1024)}).encode()
    resp = shop.client.post(
        "/checkout/sync",
        input_stream=io.BytesIO(big),  # no Content-Length, as chunked
        headers={**JSON, "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},  # as gunicorn sets for chunked
    )
    assert resp.status_code == 413 and resp.get_json()["field"] == "body"
    assert shop.written() == (0, 0, 0, 0, 0, 0)


@pytest.mark.parametrize("mode", ["sync", "deferred"])
@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/json",
        "application/jsonp",
        "application/json-patch+json",
        "",
    ],
)
def test_a_body_that_is_not_declared_json_is_a_415_naming_the_type(
    shop: Shop, mode: str, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    resp = post(shop, mode, json.dumps(CART).encode(), headers)
    assert resp.status_code == 415
    answer = resp.get_json()
    assert answer["field"] == "Content-Type" and "application/json" in answer["error"]
    assert shop.written() == (0, 0, 0, 0, 0, 0)


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "Application/JSON", "application/json;"]
)
def test_json_with_parameters_or_another_case_is_accepted(shop: Shop, content_type: str) -> None:
    resp = post(shop, "deferred", json.dumps(CART).encode(), {"Content-Type": content_type})
    assert resp.status_code == 200, resp.get_json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**CART, "email": "x" * 10_000_000}, "email"),
        ({**CART, "email": ["x" * 1000] * 1000}, "email"),
        ({"email": "a@b.c", "items": [{"sku": "S" * 100_000, "qty": 1}]}, "items[0].sku"),
        ({"email": "a@b.c", "items": [{"sku": "SKU-1", "qty": "9" * 4000}]}, "items[0].qty"),
        ({"email": "a@b.c", "items": [{"sku": "SKU-1", "qty": 10**4000}]}, "items[0].qty"),
    ],
)
def test_echoed_values_are_truncated(shop: Shop, body: Any, field: str) -> None:
    shop.client.application.config["MAX_CONTENT_LENGTH"] = 32 * 1024 * 1024
    resp = post(shop, "sync", json.dumps(body).encode())
    assert resp.status_code == 400
    answer = resp.get_json()
    assert answer["field"] == field
    assert len(answer["error"]) <= MAX_ECHO + 100, answer["error"][:300]
    assert shop.written() == (0, 0, 0, 0, 0, 0)


# -- what a hostile tester tries next -----------------------------------------------------
def cart(*items: dict[str, Any], **fields: Any) -> bytes:
    """A checkout body of these items (default: one SKU-1), with fields added or replaced."""
    return json.dumps({"email": "a@b.c", "items": list(items) or [SKU1], **fields}).encode()


def raw_item(sku: str, qty: str) -> bytes:
    """A body whose one item is written as raw JSON text (NaN, lone surrogates, ...)."""
    return (
        b'{"email": "a@b.c", "items": [{"sku": '
        + sku.encode()
        + b', "qty": '
        + qty.encode()
        + b"}]}"
    )


SKU1 = {"sku": "SKU-1", "qty": 1}
NESTED_900 = json.loads("[" * 900 + "]" * 900)

HOSTILE_BODIES = [
    pytest.param(b"[" * 30_000 + b"]" * 30_000, "body", id="deep-array"),
    pytest.param(b'{"email": ' + b"[" * 5000 + b"]" * 5000 + b"}", "body", id="deep-email"),
    pytest.param(cart(email=NESTED_900), "email", id="nested-just-under-the-parser-limit"),
    pytest.param(b"\xff\xfe{}", "body", id="not-utf8"),
    pytest.param(b'{"email": "\xff@b.c", "items": []}', "body", id="bad-utf8-inside"),
    pytest.param(b"NaN", "body", id="nan"),
    pytest.param(raw_item('"SKU-1"', "NaN"), "items[0].qty", id="qty-nan"),
    pytest.param(raw_item('"SKU-1"', "Infinity"), "items[0].qty", id="qty-inf"),
    pytest.param(raw_item('"SKU-1"', "1e999"), "items[0].qty", id="qty-1e999"),
    pytest.param(raw_item('"SKU-1"', "1" + "0" * 5000), "body", id="qty-5000-digits"),
    pytest.param(cart({"sku": "SKU-1", "qty": 2**63}), "items[0].qty", id="qty-2**63"),
    pytest.param(cart({"sku": "SKU-1", "qty": -(2**63)}), "items[0].qty", id="qty-minus-2**63"),
    pytest.param(
        cart({"sku": "SKU-1", "qty": 600}, {"sku": "SKU-1", "qty": 600}),
        "items[1].qty",
        id="duplicate-sku-over-the-limit",
    ),
    pytest.param(raw_item('"\\ud800"', "1"), "items[0].sku", id="sku-lone-surrogate"),
    pytest.param(cart(email="\ud800@b.c"), "email", id="email-lone-surrogate"),
    pytest.param(raw_item('"SKU-1\\u0000"', "1"), "items[0].sku", id="sku-nul"),
    pytest.param(cart({"sku": "ＳＫＵ-1", "qty": 1}), "items[0].sku", id="sku-fullwidth"),
    pytest.param(cart({"sku": " SKU-1", "qty": 1}), "items[0].sku", id="sku-padded"),
    pytest.param(cart({"sku": 1, "qty": 1}), "items[0].sku", id="sku-number"),
    pytest.param(cart(coupon="FREE"), "coupon", id="unknown-field"),
    pytest.param(cart({**SKU1, "price": 0}), "items[0].price", id="unknown-item-field"),
    pytest.param(cart(*[SKU1] * 51), "items", id="too-many-lines"),
    pytest.param(cart(email=None), "email", id="email-null"),
    pytest.param(cart(items={"sku": "SKU-1"}), "items", id="items-object"),
]


@pytest.mark.parametrize(("body", "field"), HOSTILE_BODIES)
def test_hostile_bodies_are_400s_naming_the_field(shop: Shop, body: bytes, field: str) -> None:
    for mode in ("sync", "deferred"):
        resp = post(shop, mode, body)
        assert resp.status_code == 400, (mode, resp.status_code, resp.get_data()[:300])
        assert resp.get_json()["field"] == field, resp.get_json()
    assert shop.written() == (0, 0, 0, 0, 0, 0)


def test_a_checkout_of_a_thousand_of_every_sku_is_fine(shop: Shop) -> None:
    items = [{"sku": p.sku, "qty": 1000} for p in PRODUCTS]
    resp = post(shop, "deferred", cart(*items))
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["total_cents"] == 1000 * sum(p.price_cents for p in PRODUCTS)


@pytest.mark.parametrize(
    "path",
    [
        "/orders/" + "9" * 30,
        "/orders/" + "9" * 5000,
        "/orders/9223372036854775808",
        "/orders/-1",
        "/orders/0",
        "/orders/abc",
        "/orders/1.5",
        "/orders/%00",
        "/orders/%F0%9F%98%80",
        "/orders/１２",
        "/orders/ 1",
    ],
)
def test_an_order_id_that_cannot_exist_is_a_404_naming_it(shop: Shop, path: str) -> None:
    resp = shop.client.get(path)
    assert resp.status_code == 404, resp.get_data()[:300]
    answer = resp.get_json()
    assert answer["field"] == "order_id" and len(answer["error"]) <= MAX_ECHO + 100


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/checkout/sync"),
        ("DELETE", "/checkout/deferred"),
        ("GET", "/checkout/deferred"),
        ("PATCH", "/orders/1"),
        ("POST", "/orders/1"),
        ("POST", "/products"),
        ("DELETE", "/healthz"),
        ("PROPFIND", "/products"),
    ],
)
def test_a_method_not_allowed_is_a_405_in_json(shop: Shop, method: str, path: str) -> None:
    resp = shop.client.open(path, method=method, data=b"{}", headers=JSON)
    assert resp.status_code == 405
    assert resp.get_json()["field"] == "method" and resp.headers["Allow"]
    assert shop.written() == (0, 0, 0, 0, 0, 0)


def test_an_unknown_path_is_a_404_in_json(shop: Shop) -> None:
    resp = shop.client.get("/" + "x" * 10_000)
    assert resp.status_code == 404 and resp.get_json()["field"] == "path"
    assert len(resp.get_json()["error"]) <= MAX_ECHO + 200


def test_bad_input_names_the_field_on_the_python_api_too() -> None:
    with pytest.raises(BadInput) as info:
        parse_checkout({**CART, "email": "a@b.c\n"})
    assert info.value.field == "email" and "\n" not in info.value.message
