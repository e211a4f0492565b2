"""Sentinel URLs: parsed, redacted, and accepted by everything that goes through connect()."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from click.testing import CliRunner
from redis.sentinel import SentinelConnectionPool

import labqueue
from labqueue.connection import clone, connection_url, redact, redact_text
from labqueue.errors import ConfigurationError
from labqueue.sentinel import parse_sentinel_url
from labqueue.worker.guard import without_retries

URL = "redis+sentinel://:s3cret-pw@127.0.0.1:26379,127.0.0.1:26380/mymaster/2"


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_db() -> None:
    hosts, service, kwargs, theirs = parse_sentinel_url(URL + "?socket_timeout=1.5")
    assert hosts == [("127.0.0.1", 26379), ("127.0.0.1", 26380)]
    assert service == "mymaster"
    assert kwargs["db"] == 2 and kwargs["password"] == "s3cret-pw"
    assert kwargs["socket_timeout"] == 1.5
    assert theirs == {}


def test_defaults_and_the_sentinels_own_password() -> None:
    url = "redis+sentinel://localhost/svc?password=node-pw&sentinel_password=sent-pw"
    hosts, service, kwargs, theirs = parse_sentinel_url(url)
    assert hosts == [("localhost", 26379)] and service == "svc"
    assert kwargs["db"] == 0 and kwargs["password"] == "node-pw"
    assert theirs == {"password": "sent-pw"}


@pytest.mark.parametrize(
    "bad",
    [
        "redis+sentinel://127.0.0.1:26379",  # no service
        "redis+sentinel://127.0.0.1:26379/svc/zero",  # db not a number
        "redis+sentinel://127.0.0.1:port/svc",  # port not a number
        "redis+sentinel:///svc/0",  # no sentinel
        "redis+sentinel://127.0.0.1:26379/svc/0/extra",
    ],
)
def test_a_malformed_sentinel_url_is_a_configuration_error(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_sentinel_url(bad)
    with pytest.raises(ConfigurationError):
        labqueue.connect(bad)


def test_redact_hides_both_passwords_of_a_sentinel_url() -> None:
    url = URL + "?sentinel_password=other-secret"
    shown = redact(url)
    assert "s3cret-pw" not in shown and "other-secret" not in shown
    assert shown.startswith("redis+sentinel://:***@127.0.0.1:26379,127.0.0.1:26380/mymaster/2")
    text = redact_text(f"cannot reach {url} (s3cret-pw other-secret)", url)
    assert "s3cret-pw" not in text and "other-secret" not in text


# -- on a real primary / replica / sentinels stack --------------------------------------------


def test_connect_reaches_the_primary_the_sentinels_name(sentinel_stack: Any) -> None:
    client = labqueue.connect(sentinel_stack.url)
    assert isinstance(client.connection_pool, SentinelConnectionPool)
    client.set("k", "v")
    port = sentinel_stack.primary_port()
    assert redis.Redis(port=port, decode_responses=True).get("k") == "v"
    assert connection_url(client) == sentinel_stack.url
    assert labqueue.connect(connection_url(client)).get("k") == "v"


def test_clone_and_the_workers_no_retry_client_keep_the_service(sentinel_stack: Any) -> None:
    client = labqueue.connect(sentinel_stack.url)
    raw = clone(client, decode_responses=False)
    assert isinstance(raw.connection_pool, SentinelConnectionPool)
    client.set("k", "v")
    assert raw.get("k") == b"v"
    once = without_retries(client)
    assert once.connection_pool.service_name == sentinel_stack.service  # type: ignore[attr-defined]
    assert once.ping()


def test_queue_worker_cli_and_monitor_all_take_a_sentinel_url(sentinel_stack: Any) -> None:
    import jobs_for_tests

    from labqueue.cli import main
    from labqueue.web.app import create_app

    url = sentinel_stack.url
    client = labqueue.connect(url)
    ids = labqueue.Queue("multi", client).enqueue_many(jobs_for_tests.Record, [[1], [2], [3]])
    worker = labqueue.Worker("multi", labqueue.connect(url), scheduler_interval=None)
    thread = threading.Thread(target=worker.work, kwargs={"burst": True})
    thread.start()
    thread.join(30)
    assert worker.processed == 3
    assert all(labqueue.get_status(client, i).status == labqueue.JobStatus.COMPLETE for i in ids)
    out = CliRunner().invoke(main, ["stats", "--json", "--url", url], catch_exceptions=False)
    assert out.exit_code == 0 and json.loads(out.output)["processed"] == 3
    app = create_app(connection=labqueue.connect(url), config={"TESTING": True})
    assert app.test_client().get("/api/stats").status_code == 200


@pytest.mark.slow
def test_the_store_runs_on_a_sentinel_url(sentinel_stack: Any, tmp_path: Path) -> None:
    """The whole toy store (gunicorn, relay, workers) given a redis+sentinel:// URL: a
    deferred checkout's jobs run, and /healthz reports Redis as reachable."""
    from labqueue.demo.stack import Stack

    stack = Stack(redis_url=sentinel_stack.url, web_workers=1, queue_workers=1, log_dir=tmp_path)
    with stack:
        body = {"email": "a@b.co", "items": [{"sku": "SKU-1", "qty": 1}]}
        answer = requests.post(f"{stack.store_url}/checkout/deferred", json=body, timeout=10)
        assert answer.status_code == 200, answer.text
        order_id = answer.json()["order_id"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            order = requests.get(f"{stack.store_url}/orders/{order_id}", timeout=5).json()
            if order["status"] == "complete":
                break
            time.sleep(0.2)
        assert order["status"] == "complete", order
        assert requests.get(f"{stack.store_url}/healthz", timeout=5).json()["redis"] == "ok"
