"""The store's rules, on generated input (issue 15, "The rules"): no endpoint answers 5xx to
any body, header, method or URL; every client error is a 4xx in JSON naming the field; a
4xx writes nothing (no order, line, step, job, mail or sale). The fake services' ``/config``
takes what it can honour and refuses the rest with a 400 naming the field, keeping its
settings and serving on.

The fake mail server and ERP never fail here and Redis is always there, so the store's
documented 502 and 503 cannot happen: any 5xx is a bug. Each surface tries
``MAX_EXAMPLES`` generated inputs per run; each test prints how many and how long.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from typing import Any
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from rule_settings import rule_settings
from store_shop import CART, Shop, shop_fixture  # noqa: F401 (the fixture)

from labqueue.demo.netfake import LIMITS

#: hypothesis runs hundreds of generated inputs here: `make test` runs them, test-fast not
pytestmark = pytest.mark.slow

#: Generated inputs per surface and run (four store surfaces, two /config handlers).
MAX_EXAMPLES = 250

HYPOTHESIS = rule_settings(MAX_EXAMPLES, HealthCheck.filter_too_much)

# -- strategies -----------------------------------------------------------------------
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
numbers = st.one_of(
    st.integers(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 1000, 1001, 2**63, -(2**63), 10**400, 1e308, 5e-324]),
)
json_leaf = st.none() | st.booleans() | numbers | any_text
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=10,
)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each drawn ``weight`` times as often as a weight of 1
    (``st.one_of`` would merge repeated strategies, so the weights would be lost)."""
    picks = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(picks).flatmap(lambda strategy: strategy)


good_emails = st.sampled_from(["a@b.c", "shopper@example.com", "A+x@EXAMPLE.COM", "o'k@x.io"])
emails = weighted(
    (4, good_emails),
    (2, st.emails()),
    (
        2,
        st.tuples(good_emails, any_text, st.sampled_from(["\n", "\r\n", ",", "<", ">", "\0"])).map(
            lambda t: t[0] + t[2] + t[1]
        ),
    ),
    (1, any_text),
    (1, json_value),
)
skus = weighted(
    (6, st.integers(1, 20).map(lambda i: f"SKU-{i}")),
    (1, st.integers(-1, 30).map(lambda i: f"SKU-{i}")),
    (1, any_text),
    (1, json_value),
)
qtys = weighted((6, st.integers(1, 5)), (2, st.integers(-3, 1005)), (1, numbers), (1, json_value))


@st.composite
def carts(draw: st.DrawFn) -> Any:
    """Bodies shaped like a checkout, each part possibly missing, odd or of the wrong type."""
    body: dict[Any, Any] = {}
    if draw(st.integers(0, 19)):
        body["email"] = draw(emails)
    if draw(st.integers(0, 19)):
        items: list[Any] = []
        for _ in range(draw(st.integers(0, 6))):
            odd = not draw(st.integers(0, 9))
            items.append(draw(json_value) if odd else {"sku": draw(skus), "qty": draw(qtys)})
            if isinstance(items[-1], dict) and not draw(st.integers(0, 19)):
                items[-1][draw(any_text)] = draw(json_value)
        if items and not draw(st.integers(0, 9)):
            items *= 51 // len(items) + 1  # past MAX_LINES
        body["items"] = items
    if not draw(st.integers(0, 19)):
        body[draw(any_text)] = draw(json_value)
    return body


def encode(value: Any) -> bytes:
    try:
        return json.dumps(value).encode("utf-8", "surrogatepass")
    except (ValueError, RecursionError):
        return b"{}"


bodies = weighted(
    (6, carts().map(encode)),
    (1, json_value.map(encode)),
    (1, st.binary(max_size=200)),
    (1, st.integers(1, 40_000).map(lambda n: b"[" * n + b"]" * n)),
    (1, st.integers(0, 200_000).map(lambda n: encode({**CART, "pad": "x" * n}))),
)
content_types = weighted(
    (12, st.just("application/json")),
    (
        2,
        st.sampled_from(
            [
                "application/json; charset=utf-8",
                "APPLICATION/JSON",
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=zzz",
                "",
                "application/json; charset=latin-1",
                "application/json;;;",
            ]
        ),
    ),
    (1, st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=40)),
    (1, st.none()),
)
header_values = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=200)
header_names = st.sampled_from(
    [
        "Content-Type",
        "Content-Length",
        "Transfer-Encoding",
        "Content-Encoding",
        "Accept",
        "Accept-Charset",
        "Host",
        "Origin",
        "Cookie",
        "X-Forwarded-For",
        "Expect",
        "Range",
        "If-None-Match",
        "Idempotency-Key",
    ]
) | st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,30}", fullmatch=True)
methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE"])
segments = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.text(max_size=30).map(lambda t: quote(t, safe="")),
    st.sampled_from(["1", "0", "-1", "9" * 25, "%00", "..", "%2e%2e", "1%0a", "１"]),
)
paths = st.one_of(
    segments.map(lambda s: f"/orders/{s}"),
    st.sampled_from(["/checkout/sync", "/checkout/deferred", "/products", "/healthz", "/"]),
    st.tuples(
        st.sampled_from(["/checkout/sync", "/orders/1", "/products", "/healthz"]),
        st.text(max_size=40).map(quote),
    ).map(lambda t: f"{t[0]}?{t[1]}"),
    st.lists(segments, max_size=4).map(lambda s: "/" + "/".join(s)),
    st.integers(2000, 20_000).map(lambda n: "/orders/" + "9" * n),
)


# -- what every answer must be ---------------------------------------------------------
def check_answer(shop: Shop, resp: Any, before: tuple[int, ...], what: str) -> None:
    """No 5xx; a 4xx is JSON naming the field (HEAD: no body), short, and wrote nothing."""
    assert resp.status_code < 500, (what, resp.status_code, resp.get_data()[:400])
    if resp.status_code < 400:
        return
    if resp.request.method != "HEAD":
        answer = resp.get_json(silent=True)
        assert isinstance(answer, dict) and answer.get("error") and answer.get("field"), (
            what,
            resp.status_code,
            resp.get_data()[:400],
        )
        assert len(answer["error"]) <= 600, (what, len(answer["error"]))
    assert shop.written() == before, (what, resp.status_code, resp.get_data()[:400])


def report(name: str, tried: list[Any], started: float, statuses: Counter[int]) -> None:
    spread = ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items()))
    print(f"\nhostile {name}: {len(tried)} inputs in {time.monotonic() - started:.1f} s ({spread})")


# -- the store's surfaces ----------------------------------------------------------------
@pytest.mark.parametrize("mode", ["sync", "deferred"])
def test_no_checkout_body_gives_a_5xx_or_writes_on_a_4xx(shop: Shop, mode: str) -> None:
    tried: list[bytes] = []
    statuses: Counter[int] = Counter()
    started = time.monotonic()

    @HYPOTHESIS
    @given(body=bodies, content_type=content_types)
    def post(body: bytes, content_type: str | None) -> None:
        before = shop.written()
        headers = {} if content_type is None else {"Content-Type": content_type}
        resp = shop.client.post(f"/checkout/{mode}", data=body, headers=headers)
        tried.append(body)
        statuses[resp.status_code] += 1
        check_answer(shop, resp, before, f"{mode} {content_type!r} {body[:200]!r}")

    post()
    report(f"checkout/{mode} bodies", tried, started, statuses)
    assert len(tried) >= MAX_EXAMPLES // 2


def test_no_header_gives_a_5xx_or_writes_on_a_4xx(shop: Shop) -> None:
    tried: list[Any] = []
    statuses: Counter[int] = Counter()
    started = time.monotonic()

    @HYPOTHESIS
    @given(
        headers=st.dictionaries(header_names, header_values, max_size=4),
        body=st.sampled_from([encode(CART), b"", b"{", encode({**CART, "email": "a@b.c\n"})]),
        path=st.sampled_from(["/checkout/deferred", "/orders/1", "/products", "/healthz"]),
    )
    def send(headers: dict[str, str], body: bytes, path: str) -> None:
        before = shop.written()
        method = "POST" if path.startswith("/checkout") else "GET"
        resp = shop.client.open(path, method=method, data=body, headers=headers)
        tried.append(headers)
        statuses[resp.status_code] += 1
        check_answer(shop, resp, before, f"{method} {path} {headers!r} {body[:100]!r}")

    send()
    report("headers", tried, started, statuses)
    assert len(tried) >= MAX_EXAMPLES // 2


def test_no_method_or_url_gives_a_5xx_or_writes(shop: Shop) -> None:
    shop.post("deferred")  # order 1 exists, so /orders/1 is a 200
    tried: list[str] = []
    statuses: Counter[int] = Counter()
    started = time.monotonic()

    @HYPOTHESIS
    @given(method=methods, path=paths)
    def call(method: str, path: str) -> None:
        before = shop.written()
        data = encode(CART) if method in ("POST", "PUT", "PATCH") else None
        headers = {"Content-Type": "application/json"} if data else {}
        resp = shop.client.open(path, method=method, data=data, headers=headers)
        tried.append(path)
        statuses[resp.status_code] += 1
        if not (method == "POST" and path.startswith("/checkout") and resp.status_code == 200):
            check_answer(shop, resp, before, f"{method} {path[:300]}")

    call()
    report("methods and URLs", tried, started, statuses)
    assert len(tried) >= MAX_EXAMPLES // 2


# -- the fakes' /config ----------------------------------------------------------------
settings_values = weighted(
    (3, numbers),
    (2, st.floats(0, 1)),
    (1, st.floats(0, 60)),
    (1, st.integers(0, 10)),
    (1, st.booleans() | st.none() | any_text | st.lists(numbers, max_size=2)),
)
config_bodies = weighted(
    (4, st.dictionaries(st.sampled_from(sorted(LIMITS)), settings_values, max_size=3)),
    (1, st.dictionaries(st.sampled_from(sorted(LIMITS)) | any_text, settings_values, max_size=4)),
    (1, json_value),
)


@pytest.mark.parametrize("service", ["mail", "erp"])
def test_fake_config_takes_only_what_it_can_honour(shop: Shop, service: str) -> None:
    fake = shop.mail if service == "mail" else shop.erp
    url = f"{fake.url}/config"
    session = requests.Session()
    tried: list[Any] = []
    statuses: Counter[int] = Counter()
    started = time.monotonic()

    @HYPOTHESIS
    @given(body=config_bodies)
    def configure(body: Any) -> None:
        before = session.get(url, timeout=5).json()
        try:
            data = json.dumps(body, allow_nan=True)
        except ValueError:  # an int past the digit limit: send its text as it is
            data = "{}"
        resp = session.post(url, data=data.encode("utf-8", "surrogatepass"), timeout=5)
        tried.append(body)
        statuses[resp.status_code] += 1
        after = session.get(url, timeout=5).json()
        assert resp.status_code in (200, 400), (body, resp.status_code, resp.text[:300])
        if resp.status_code == 400:
            assert resp.json()["field"] and after == before, (body, resp.text[:300])
        else:
            assert isinstance(body, dict) and set(body) <= set(LIMITS)
            for name, (low, high) in LIMITS.items():
                assert math.isfinite(after[name]) and low <= after[name] <= high
                if name in body:
                    assert after[name] == float(body[name])
        fake.faults.update({"latency": 0.001, "jitter": 0.2, "error_rate": 0.0})

    configure()
    assert session.get(f"{fake.url}/healthz", timeout=5).json()["ok"] is True
    report(f"{service} /config", tried, started, statuses)
    assert len(tried) >= MAX_EXAMPLES // 2
