"""The store never shows a Redis password (issue 15, item 8): not in ``/healthz``, not in a
deferred checkout's 503, not in ``order_step.error`` (stored or served by ``GET
/orders/<id>``), not in its log; whichever form the URL gives the password in, against a
Redis that is away and against a real password-protected redis-server."""

from __future__ import annotations

import json
import logging
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import fakeredis
import pytest
from flask.testing import FlaskClient
from store_shop import CART

from labqueue.demo.app import create_app
from labqueue.demo.config import StoreConfig
from labqueue.embedded import EmbeddedRedis, find_redis_server

SECRET = "Hunter2-Sw0rdfish-77"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def away_urls() -> list[str]:
    port = closed_port()
    return [
        f"redis://127.0.0.1:{port}/0?password={SECRET}",
        f"redis://127.0.0.1:{port}/0?db=0&password={quote(SECRET)}&socket_timeout=2",
        f"redis://:{SECRET}@127.0.0.1:{port}/0",
        f"redis://alice:{SECRET}@127.0.0.1:{port}/0",
        f"rediss://127.0.0.1:{port}/0?password={SECRET}",
        f"unix:///nonexistent/redis.sock?password={SECRET}&db=0",
        f"redis://127.0.0.1:{port}/0?password={SECRET}&no_such_option=1",
    ]


def leaks(text: str, secret: str = SECRET) -> bool:
    return secret in text or quote(secret) in text


def stored_errors(db_path: str) -> list[str]:
    conn = sqlite3.connect(db_path)
    try:
        return [r[0] or "" for r in conn.execute("SELECT error FROM order_step")]
    finally:
        conn.close()


def store(tmp_path: Path, redis_url: str, **kwargs: Any) -> tuple[FlaskClient, StoreConfig]:
    config = StoreConfig(db_path=str(tmp_path / "store.db"), redis_url=redis_url, timeout=5)
    return create_app(config, **kwargs).test_client(), config


def check_nothing_leaks(
    client: FlaskClient, config: StoreConfig, status: int, secret: str = SECRET
) -> None:
    resp = client.post("/checkout/deferred", json=CART)
    assert resp.status_code == status, resp.get_data()[:500]
    assert not leaks(resp.get_data(as_text=True), secret), resp.get_data(as_text=True)
    order_id = resp.get_json()["order_id"]
    view = client.get(f"/orders/{order_id}")
    assert view.status_code == 200 and not leaks(view.get_data(as_text=True), secret)
    assert not any(leaks(e, secret) for e in stored_errors(config.db_path))
    health = client.get("/healthz")
    assert not leaks(health.get_data(as_text=True), secret), health.get_data(as_text=True)
    if status != 200:
        assert health.status_code == 503
        assert view.get_json()["steps"]["send_email"]["error"].startswith("could not enqueue")


@pytest.mark.parametrize("url", away_urls())
def test_no_password_in_any_answer_when_redis_is_away(
    tmp_path: Path, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="labqueue.demo"):
        client, config = store(tmp_path, url)  # starts although Redis is not there
    check_nothing_leaks(client, config, 503)
    assert not leaks(caplog.text)


def test_an_error_stored_before_the_fix_is_served_redacted(tmp_path: Path) -> None:
    r = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    url = f"redis://127.0.0.1:6379/0?password={SECRET}"
    client, config = store(tmp_path, url, redis_client=r)
    order_id = client.post("/checkout/deferred", json=CART).get_json()["order_id"]
    conn = sqlite3.connect(config.db_path)
    with conn:
        conn.execute(
            "UPDATE order_step SET error = ? WHERE order_id = ?",
            (f"could not enqueue the jobs: cannot reach Redis at {url} ({SECRET})", order_id),
        )
    conn.close()
    view = client.get(f"/orders/{order_id}")
    assert not leaks(view.get_data(as_text=True))
    assert "password=***" in view.get_json()["steps"]["send_email"]["error"]


@pytest.fixture(scope="module")
def protected() -> Iterator[EmbeddedRedis]:
    """A real redis-server that wants SECRET, on TCP and on a unix socket."""
    binary = find_redis_server()
    if binary is None:
        pytest.skip("no redis-server binary")
    server = EmbeddedRedis(binary)
    sock = str(Path(server.workdir) / "r.sock")
    server.extra_args = ("--requirepass", SECRET, "--unixsocket", sock, "--unixsocketperm", "700")
    yield server.start()
    server.stop()


def sock_of(server: EmbeddedRedis) -> str:
    return str(Path(server.workdir) / "r.sock")


@pytest.mark.parametrize(
    "form",
    ["query", "query-encoded", "userinfo", "unix-query"],
)
def test_a_password_in_any_form_reaches_a_protected_redis(
    tmp_path: Path, protected: EmbeddedRedis, form: str
) -> None:
    url = {
        "query": f"redis://127.0.0.1:{protected.port}/0?password={SECRET}",
        "query-encoded": f"redis://127.0.0.1:{protected.port}/0?db=0&password={quote(SECRET)}",
        "userinfo": f"redis://:{SECRET}@127.0.0.1:{protected.port}/0",
        "unix-query": f"unix://{sock_of(protected)}?password={SECRET}&db=0",
    }[form]
    client, config = store(tmp_path, url)
    assert client.get("/healthz").get_json() == {"ok": True, "db": "ok", "redis": "ok"}
    check_nothing_leaks(client, config, 200)


@pytest.mark.parametrize("form", ["query", "userinfo", "unix-query"])
def test_a_wrong_password_in_any_form_leaks_nowhere(
    tmp_path: Path, protected: EmbeddedRedis, form: str, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "Wr0ng-Pa55word-" + form
    url = {
        "query": f"redis://127.0.0.1:{protected.port}/0?password={wrong}",
        "userinfo": f"redis://user:{wrong}@127.0.0.1:{protected.port}/0",
        "unix-query": f"unix://{sock_of(protected)}?db=0&password={wrong}",
    }[form]
    with caplog.at_level(logging.WARNING, logger="labqueue.demo"):
        client, config = store(tmp_path, url)
    check_nothing_leaks(client, config, 503, wrong)
    assert not leaks(caplog.text, wrong)
    health = client.get("/healthz").get_json()["redis"]
    assert "password" in health.lower() or "auth" in health.lower(), health


def test_the_answers_stay_json_and_name_the_step(tmp_path: Path) -> None:
    client, _ = store(tmp_path, away_urls()[0])
    body = client.post("/checkout/deferred", json=CART).get_json()
    assert body["step"] == "enqueue" and "password=***" in json.dumps(body)
