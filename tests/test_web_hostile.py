"""The monitor's rule, on generated Redis contents (issue 15, "The rules"): no page and no
API route answers 5xx or hangs for any value Redis can hold in any key of the layout; what
it cannot read is shown escaped (no control character, no byte that is not UTF-8, no markup
from Redis reaches the page raw); the actions on the failed list answer too.

Each run tries ``MAX_EXAMPLES`` generated Redis contents (see :mod:`hostile_redis`), each
against every page and API route and the actions; the test prints how many and how long.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from typing import Any
from urllib.parse import quote

import fakeredis
import pytest
from flask.testing import FlaskClient
from hostile_redis import CONTROLS, JOBS, QUEUES, World, worlds, write
from hypothesis import HealthCheck, given
from prometheus_client.parser import text_string_to_metric_families
from rule_settings import rule_settings

from labqueue.web import create_app

#: hypothesis runs hundreds of generated inputs here: `make test` runs them, test-fast not
pytestmark = pytest.mark.slow

#: Generated Redis contents per run (each one visits every page, API route and action).
MAX_EXAMPLES = 200
#: The longest one request may take (a hang would hit it first).
SLOWEST = 10.0

HYPOTHESIS = rule_settings(MAX_EXAMPLES, HealthCheck.large_base_example)

PAGES = ["/", "/workers", "/failed", "/failed?page=2", "/delayed"]
API = ["/api/overview", "/api/stats", "/api/workers", "/api/failed", "/api/delayed"]
NAMES = [quote(q.decode("utf-8", "replace"), safe="") for q in QUEUES]
URLS = [
    *PAGES,
    *API,
    *(f"/queues/{n}" for n in NAMES),
    *(f"/api/queues/{n}" for n in NAMES),
    *(f"/jobs/{j}" for j in JOBS),
    *(f"/api/jobs/{j}" for j in JOBS),
]


@pytest.fixture
def raw() -> Any:
    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


@pytest.fixture
def client(raw: Any) -> FlaskClient:
    # TESTING: an exception is raised here (and shrunk by hypothesis), not turned into a 500
    return create_app(raw, {"TESTING": True, "LABQUEUE_PER_PAGE": 3}).test_client()


def get(client: FlaskClient, url: str, statuses: Counter[int], **kw: Any) -> Any:
    started = time.monotonic()
    resp = client.open(url, **kw)
    took = time.monotonic() - started
    statuses[resp.status_code] += 1
    body = resp.get_data(as_text=True)  # UTF-8, or this raises
    assert resp.status_code < 500, (url, resp.status_code, body[:300])
    assert took < SLOWEST, (url, took)
    return resp, body


def shown_safely(url: str, body: str) -> None:
    """Nothing from Redis reaches the page raw: no control character, no markup."""
    assert not CONTROLS & set(body), (url, [c for c in CONTROLS if c in body])
    if not url.startswith("/api/"):
        assert "<script>x" not in body and "<b>x</b>" not in body, url
    else:
        json.loads(body)


def act(client: FlaskClient, body: str, statuses: Counter[int]) -> None:
    """Requeue and remove every failure the page shows, then requeue all and clear all."""
    token = re.search(r'name="csrf_token" value="([^"]+)"', body)
    digests = re.findall(r'data-digest="([0-9a-f]{16})"', body)
    if token is None:
        return
    form = {"csrf_token": token.group(1), "confirm": "yes"}
    for i, digest in enumerate(digests):
        action = "requeue" if i % 2 == 0 else "remove"
        get(client, f"/failed/{digest}/{action}", statuses, method="POST", data=form)
    for url in ("/failed/requeue-all", "/failed/clear"):
        get(client, url, statuses, method="POST", data=form)


def report(name: str, tried: list[World], started: float, statuses: Counter[int]) -> None:
    spread = ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items()))
    keys = sum(len(w.entries) for w in tried)
    took = time.monotonic() - started
    print(f"\nhostile {name}: {len(tried)} Redis contents ({keys} keys) in {took:.1f} s ({spread})")


def test_no_page_or_api_route_fails_on_any_redis_content(client: FlaskClient, raw: Any) -> None:
    tried: list[World] = []
    statuses: Counter[int] = Counter()
    started = time.monotonic()

    @HYPOTHESIS
    @given(world=worlds())
    def run(world: World) -> None:
        tried.append(world)
        write(raw, world)
        for url in URLS:
            _, body = get(client, url, statuses)
            shown_safely(url, body)
        _, scraped = get(client, "/metrics", statuses)  # Prometheus's own parser reads it
        assert not CONTROLS & set(scraped) and list(text_string_to_metric_families(scraped))
        _, failed_page = get(client, "/failed", statuses)
        act(client, failed_page, statuses)
        for url in ("/", "/api/overview", "/failed"):
            shown_safely(url, get(client, url, statuses)[1])

    run()
    report("monitor (pages, API, actions)", tried, started, statuses)
    assert len(tried) >= MAX_EXAMPLES // 2 and not statuses.keys() & set(range(500, 600))
