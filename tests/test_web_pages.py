"""The monitor's pages and JSON API, with Flask's test client, on Ruby Resque's own records."""

from __future__ import annotations

import json
import re
import time
from html import unescape
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from flask.testing import FlaskClient

import labqueue
from labqueue import timefmt
from labqueue.keys import Keys
from labqueue.stats import Snapshot
from labqueue.web import create_app
from labqueue.web.history import History

VECTORS = json.loads((Path(__file__).parent / "data" / "resque-vectors.json").read_text())
K = Keys()
RUBY_WORKER = VECTORS["workers_set_while_busy"][0]


def write_ruby_layout(r: Any) -> None:
    """Exactly what Ruby Resque 3.0 wrote, key for key (the vectors omit the namespace)."""
    r.rpush(K.queue("default"), *VECTORS["queue_default_after_enqueue"])
    r.rpush(K.queue("high"), *VECTORS["queue_high_after_enqueue"])
    r.sadd(K.queues, *VECTORS["queues_set"])
    r.sadd(K.workers, *VECTORS["workers_set_while_busy"])
    for wid, record in VECTORS["worker_record_while_busy"].items():
        r.set(K.worker(wid), record)
    for wid, started in VECTORS["worker_started_key"].items():
        r.set(K.worker_started(wid), started)
    r.hset(K.heartbeat, mapping=VECTORS["workers_heartbeat_hash"])
    r.rpush(K.failed, *VECTORS["failed_list"])
    r.set(K.stat("processed"), VECTORS["stat_processed"])
    r.set(K.stat("failed"), VECTORS["stat_failed"])


@pytest.fixture
def r() -> Any:
    return fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)


@pytest.fixture
def client(r: Any) -> FlaskClient:
    return create_app(r, {"TESTING": True, "LABQUEUE_PER_PAGE": 10}).test_client()


@pytest.fixture
def ruby(r: Any) -> Any:
    write_ruby_layout(r)
    return r


def text(resp: Any) -> str:
    """The page's visible text, tags stripped, whitespace collapsed."""
    html = resp.get_data(as_text=True)
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


# -- overview -----------------------------------------------------------------------------
def test_overview_shows_ruby_queues_totals_and_workers(client: FlaskClient, ruby: Any) -> None:
    resp = client.get("/")
    assert resp.status_code == 200
    page = text(resp)
    assert "Queued 3 in 2 queues" in page
    assert "Processed 2" in page and "Failed 1" in page
    assert "1 busy / 0 idle" in page
    assert "1 stale" in page  # the vector's heartbeat is long past
    rows = re.findall(r'<tr data-queue="([^"]+)">', resp.get_data(as_text=True))
    assert rows == ["default", "high"]
    # Ruby Resque's payloads carry no queue_time: a job waits, for how long is unknown
    assert "default 2 unknown" in page and "high 1 unknown" in page


def test_overview_shows_the_oldest_waiting_jobs_age(client: FlaskClient, r: Any) -> None:
    old = {"class": "X", "args": [{}], "queue_time": time.time() - 125}
    r.sadd(K.queues, "erp", "idle")
    r.rpush(K.queue("erp"), json.dumps(old), json.dumps({**old, "queue_time": time.time()}))
    page = text(client.get("/"))
    assert "Oldest waiting" in page
    assert re.search(r"erp 2 2m 0[5-9]s", page), page
    assert "idle 0 0.0 s" in page
    queues = client.get("/api/overview").get_json()["queues"]
    ages = {q["name"]: q["oldest_age"] for q in queues}
    assert 125.0 <= ages["erp"] < 130.0 and ages["idle"] == 0.0
    stats = client.get("/api/stats").get_json()
    assert stats["oldest_age"]["idle"] == 0.0 and stats["oldest_age"]["erp"] >= 125.0


def test_overview_api_counts_and_history(client: FlaskClient, r: Any) -> None:
    q = labqueue.Queue("email", r)
    q.enqueue("Store\\Jobs\\SendReceiptEmail", order_id=1)
    first = client.get("/api/overview").get_json()
    age = first["queues"][0].pop("oldest_age")
    assert first["queues"] == [{"name": "email", "depth": 1, "url": "/queues/email"}]
    assert 0.0 <= age < 5.0 and first["history"]["ages"]["email"] == [age]
    assert first["queued"] == 1 and first["history"]["queues"] == {"email": [1]}
    q.enqueue_many("Store\\Jobs\\SendReceiptEmail", [{"order_id": i} for i in range(4)])
    r.set(K.stat("processed"), 7)
    second = client.get(f"/api/overview?since={first['time'] - 10}").get_json()
    assert second["queued"] == 5 and second["processed"] == 7
    # a sample less than a second after the last is not kept; the depth is still current
    assert second["history"]["queues"]["email"][-1] in (1, 5)
    newer = client.get(f"/api/overview?since={second['history']['t'][-1]}").get_json()
    assert newer["history"]["t"] == [] or newer["history"]["t"][0] > second["history"]["t"][-1]


def test_history_rates_and_window() -> None:
    h = History(window=60.0, min_interval=1.0)
    assert h.rates() == {"processed": None, "failed": None}
    for i in range(10):
        h.record(Snapshot(1000.0 + 2 * i, {"a": 10 - i}, 5 * i, i // 3, 0, 0))
    h.record(Snapshot(1018.5, {"a": 0}, 999, 0, 0, 0))  # too soon after the last: dropped
    assert len(h) == 10
    assert h.rates(span=10.0) == {"processed": 2.5, "failed": 0.2}  # from t=1008 to 1018
    h.record(Snapshot(1100.0, {"b": 3}, 0, 0, 0, 0))  # counters reset (FLUSHALL)
    assert len(h) == 1 or h.rates()["processed"] == 0.0
    series = h.series()
    assert series["queues"]["b"][-1] == 3 and series["t"][0] >= 1100.0 - 60


def test_stats_api_is_the_snapshot(client: FlaskClient, ruby: Any) -> None:
    data = client.get("/api/stats").get_json()
    assert data["queues"] == {"default": 2, "high": 1}
    assert data["processed"] == 2 and data["failed"] == 1 and data["failed_store"] == 1
    assert data["workers"][0]["id"] == RUBY_WORKER and data["workers"][0]["busy"] is True


# -- a queue ------------------------------------------------------------------------------
def test_queue_page_lists_ruby_jobs_oldest_first(client: FlaskClient, ruby: Any) -> None:
    page = text(client.get("/queues/default"))
    assert page.index("Job::Work::TestJob") < page.index("Job::Work::FailingJob")
    assert "samir@example.com" in page and '{"customer_id":42}' in page
    high = text(client.get("/queues/high"))
    assert '["positional",1,2.5,true,null]' in high


def test_queue_page_shows_id_and_enqueued_time_and_paginates(client: FlaskClient, r: Any) -> None:
    ids = labqueue.Queue("bulk", r).enqueue_many("tests.Record", [{"tag": i} for i in range(23)])
    first = client.get("/queues/bulk")
    body = first.get_data(as_text=True)
    assert ids[0] in body and ids[9] in body and ids[10] not in body
    assert "page 1 of 3" in text(first) and "ago" in text(first)
    third = client.get("/queues/bulk?page=3").get_data(as_text=True)
    assert ids[20] in third and ids[22] in third and ids[19] not in third
    api = client.get("/api/queues/bulk?page=2").get_json()
    assert [j["id"] for j in api["items"]] == ids[10:20]
    assert api["total"] == 23 and api["pages"] == 3
    assert api["items"][0]["class"] == "tests.Record" and api["items"][0]["args"] == [{"tag": 10}]


@pytest.mark.parametrize(
    "url",
    [
        "/queues/nope",
        "/queues/bulk?page=9",
        "/queues/bulk?page=0",
        "/queues/bulk?page=x",
        "/api/queues/nope",
    ],
)
def test_unknown_queue_or_page_is_404(client: FlaskClient, r: Any, url: str) -> None:
    labqueue.Queue("bulk", r).enqueue("tests.Record", tag=1)
    assert client.get(url).status_code == 404


def test_empty_known_queue_is_a_page(client: FlaskClient, r: Any) -> None:
    r.sadd(K.queues, "quiet")
    assert "This queue is empty." in text(client.get("/queues/quiet"))


def test_unreadable_payload_is_shown_raw_not_run(client: FlaskClient, r: Any) -> None:
    r.sadd(K.queues, "bad")
    r.rpush(K.queue("bad"), "not json <b>", '{"class":"<script>alert(1)</script>","args":[]}')
    resp = client.get("/queues/bad")
    body = resp.get_data(as_text=True)
    assert "unreadable" in body and "not json &lt;b&gt;" in body
    assert "<script>alert(1)" not in body and "&lt;script&gt;alert(1)" in body


@pytest.mark.parametrize("backend", ["fakeredis", "redis-server"])
def test_bytes_that_are_not_utf8_show_escaped(backend: str, request: Any) -> None:
    import redis

    if backend == "fakeredis":
        raw: Any = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    else:
        raw = redis.Redis.from_url(request.getfixturevalue("redis_url"))  # bytes, strict
    raw.sadd(K.queues, "bin")
    raw.rpush(K.queue("bin"), b'{"class":"Bin","args":["\xff\xfe"]}', b"\x80 not text")
    c = create_app(raw, {"TESTING": True}).test_client()
    page = text(c.get("/queues/bin"))
    assert "2 waiting" in page and "unreadable" in page and "\\x80 not text" in page
    assert c.get("/api/queues/bin").get_json()["total"] == 2
    assert c.get("/api/overview").get_json()["queues"][0]["depth"] == 2
    raw.close()


# -- workers ------------------------------------------------------------------------------
def test_workers_page_ruby_worker_busy_and_stale(client: FlaskClient, ruby: Any) -> None:
    page = text(client.get("/workers"))
    assert "vm :16422" in page and "default high" in page
    assert "busy" in page and "Job::Work::TestJob from default" in page
    assert "stale" in page


def test_workers_api_fresh_heartbeat_is_not_stale(client: FlaskClient, r: Any) -> None:
    r.sadd(K.workers, "box:1:email", "box:2:erp")
    r.hset(K.heartbeat, "box:1:email", timefmt.heartbeat())
    r.hset(K.heartbeat, "box:2:erp", timefmt.heartbeat(time.time() - 300))
    r.set(K.stat("processed", "box:1:email"), 12)
    run_at = time.time() - 42
    busy = {
        "queue": "email",
        "run_at": timefmt.run_at(run_at),
        "payload": {"class": "Send", "args": [{"a": 1}], "id": "f" * 32},
    }
    r.set(K.worker("box:1:email"), json.dumps(busy))
    workers = {w["id"]: w for w in client.get("/api/workers").get_json()["workers"]}
    fresh, old = workers["box:1:email"], workers["box:2:erp"]
    assert fresh["stale"] is False and fresh["processed"] == 12
    assert fresh["job"]["class"] == "Send" and fresh["job_queue"] == "email"
    assert abs(fresh["run_at"] - run_at) < 2
    assert old["stale"] is True and old["heartbeat_age"] >= 299 and old["job"] is None
    page = text(client.get("/workers"))
    assert "idle" in page and "stale · 5m" in page


def test_no_workers(client: FlaskClient) -> None:
    assert "No workers are running" in text(client.get("/workers"))


# -- failed -------------------------------------------------------------------------------
def test_failed_page_shows_the_ruby_failure(client: FlaskClient, ruby: Any) -> None:
    resp = client.get("/failed")
    page = text(resp)
    for expected in (
        "ArgumentError",
        "no such customer: 42",
        "Job::Work::FailingJob",
        "default",
        RUBY_WORKER,
        "app/jobs/failing_job.rb:11:in `perform'",
    ):
        assert expected in page, expected
    assert "<details>" in resp.get_data(as_text=True)  # the backtrace waits behind a click
    api = client.get("/api/failed").get_json()
    item = api["items"][0]
    assert api["total"] == 1 and item["exception"] == "ArgumentError"
    assert item["job_id"] is None and item["queue"] == "default" and len(item["digest"]) == 16


def test_failed_newest_first_and_paginated(client: FlaskClient, r: Any) -> None:
    for i in range(12):
        rec = labqueue.Failure(
            timefmt.failed_at(1.7e9 + i),
            {"class": "C", "args": [i]},
            "ValueError",
            f"error number {i}",
            [],
            "w:1:q",
            "q",
        )
        r.rpush(K.failed, rec.to_json())
    first = client.get("/api/failed").get_json()
    assert [f["error"] for f in first["items"]][:2] == ["error number 11", "error number 10"]
    second = client.get("/api/failed?page=2").get_json()
    assert [f["error"] for f in second["items"]] == ["error number 1", "error number 0"]
    assert [f["position"] for f in second["items"]] == [1, 0]
    assert client.get("/failed?page=3").status_code == 404
    assert "error number 0" in text(client.get("/failed?page=2"))


def test_no_failures(client: FlaskClient) -> None:
    page = text(client.get("/failed"))
    assert "No failed jobs" in page and "Requeue all" not in page


# -- delayed ------------------------------------------------------------------------------
def write_delayed(r: Any, at: int, queue: str, job_id: str | None, cls: str = "Later") -> None:
    """resque-scheduler's layout: the timestamp in the zset, the payloads in a list."""
    payload: dict[str, Any] = {"class": cls, "args": [{"n": 1}], "queue": queue}
    if job_id:
        payload["id"] = job_id
    r.zadd(K.delayed_schedule, {str(at): at})
    r.rpush(K.delayed(at), json.dumps(payload))


def test_delayed_page_soonest_first(client: FlaskClient, r: Any) -> None:
    now = int(time.time())
    write_delayed(r, now + 3600, "email", "b" * 32, "LaterJob")
    write_delayed(r, now + 60, "erp", None, "SoonJob")
    write_delayed(r, now + 60, "erp", "a" * 32, "SoonJob")
    page = text(client.get("/delayed"))
    assert "3 scheduled" in page
    assert page.index("SoonJob") < page.index("LaterJob")
    assert "in 1h" in page or "in 59m" in page
    api = client.get("/api/delayed").get_json()
    assert api["total"] == 3 and [i["queue"] for i in api["items"]] == ["erp", "erp", "email"]
    assert client.get("/api/overview").get_json()["delayed"] == 3


def test_delayed_by_labqueue_itself_and_a_retry(client: FlaskClient, r: Any) -> None:
    job_id = labqueue.Queue("email", r).enqueue_in(600, "Store::Jobs::Remind", user=3)
    retry = {"class": "Shop::SyncOrder", "args": [], "id": "9" * 32, "queue": "erp", "attempts": 2}
    at = int(time.time()) + 60
    write_delayed(r, at, "erp", None)
    r.rpush(K.delayed(at), json.dumps(retry))
    page = text(client.get("/delayed"))
    assert "3 scheduled" in page and "Store::Jobs::Remind" in page and "retry 2" in page
    items = client.get("/api/delayed").get_json()["items"]
    assert [i["id"] for i in items][-1] == job_id and items[-1]["queue"] == "email"
    assert items[1]["attempts"] == 2
    assert "Delayed until" in text(client.get(f"/jobs/{job_id}"))


def test_nothing_delayed(client: FlaskClient) -> None:
    assert "Nothing is scheduled" in text(client.get("/delayed"))


# -- a job by id --------------------------------------------------------------------------
def test_job_page_waiting_then_failed(client: FlaskClient, r: Any) -> None:
    job_id = labqueue.Queue("email", r).enqueue("WebTest::Missing", to="a@b.c")
    resp = client.get(f"/jobs/{job_id}")
    page = text(resp)
    assert resp.status_code == 200 and "waiting" in page and "Waiting in email , position 1" in page
    assert '"to": "a@b.c"' in page
    labqueue.Worker(["email"], r).work(burst=True)  # not registered: it fails
    page = text(client.get(f"/jobs/{job_id}"))
    assert "failed" in page and "UnknownJobClass" in page
    api = client.get(f"/api/jobs/{job_id}").get_json()
    assert api["status"] == "failed" and [p["kind"] for p in api["places"]] == ["failed"]


def test_job_page_delayed_and_running(client: FlaskClient, r: Any) -> None:
    write_delayed(r, int(time.time()) + 90, "email", "d" * 32)
    assert "Delayed until" in text(client.get("/jobs/" + "d" * 32))
    busy = {
        "queue": "q",
        "run_at": timefmt.run_at(),
        "payload": {"class": "X", "args": [], "id": "e" * 32},
    }
    r.sadd(K.workers, "h:9:q")
    r.set(K.worker("h:9:q"), json.dumps(busy))
    assert "Running on h:9:q" in text(client.get("/jobs/" + "e" * 32))


def test_job_search_redirects(client: FlaskClient) -> None:
    resp = client.get("/jobs?id=abc123")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/jobs/abc123")
    assert client.get("/jobs?id=").status_code == 302
    assert client.get("/jobs?id=bad%20id%3Cx%3E").status_code == 404


@pytest.mark.parametrize("job_id", ["0" * 32, "no-such-job", "x" * 200, "bad%20id"])
def test_unknown_or_malformed_job_is_404(client: FlaskClient, job_id: str) -> None:
    assert client.get(f"/jobs/{job_id}").status_code == 404
    resp = client.get(f"/api/jobs/{job_id}")
    assert resp.status_code == 404 and "error" in resp.get_json()


# -- the frame around every page ----------------------------------------------------------
def test_every_page_has_the_nav_and_strict_headers(client: FlaskClient, ruby: Any) -> None:
    for url in ("/", "/queues/default", "/workers", "/failed", "/delayed", "/nope"):
        resp = client.get(url)
        body = resp.get_data(as_text=True)
        assert all(f'href="/{p}"' in body for p in ("workers", "failed", "delayed")), url
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert "<script>" not in body  # no inline script: the CSP would block it
    assert 'id="nav-failed">1<' in client.get("/workers").get_data(as_text=True)


def test_static_assets_are_served(client: FlaskClient) -> None:
    js = client.get("/static/monitor.js")
    assert js.status_code == 200 and b"/api/overview" not in js.data  # URL comes from the page
    assert b"data-api-overview" in client.get("/").data
    assert client.get("/static/monitor.css").status_code == 200


def test_redis_down_is_a_clear_503(r: Any) -> None:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    broken = redis.Redis(port=1, retry=Retry(NoBackoff(), 0), decode_responses=True)
    app = create_app(broken, {"TESTING": True})
    app.testing = False  # exercise the error handler, not the test re-raise
    with app.test_client() as c:
        resp = c.get("/")
        assert resp.status_code == 503 and "Redis unavailable" in text(resp)
        assert c.get("/api/overview").get_json()["error"] == "Redis unavailable"


def test_namespace_is_configurable(r: Any) -> None:
    labqueue.Queue("mine", r, namespace="shop").enqueue("X", a=1)
    labqueue.Queue("theirs", r).enqueue("X", a=1)
    app = create_app(r, {"TESTING": True, "LABQUEUE_NAMESPACE": "shop"})
    queues = app.test_client().get("/api/overview").get_json()["queues"]
    assert [q["name"] for q in queues] == ["mine"]
