"""``GET /metrics``: read back with Prometheus's own text parser, on a known Redis content,
on Ruby Resque's records, on a key of the wrong type, and behind the monitor's password."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import fakeredis
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

import labqueue
from labqueue import timefmt
from labqueue.keys import Keys
from labqueue.web import create_app

K = Keys()


@pytest.fixture
def r() -> Any:
    return fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)


def scrape(r: Any, config: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    """``{family name: {label tuple or sample name: value}}`` from the app's /metrics."""
    resp = create_app(r, {"TESTING": True, **(config or {})}).test_client().get("/metrics", **kw)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.headers["Content-Type"] == CONTENT_TYPE_LATEST
    out: dict[str, Any] = {}
    for family in text_string_to_metric_families(resp.get_data(as_text=True)):
        out[family.name] = {
            tuple(sorted(s.labels.items())) or s.name: s.value for s in family.samples
        }
        out[family.name + ":type"] = family.type
    return out


def payload(cls: str, queued_ago: float | None) -> str:
    body: dict[str, Any] = {"class": cls, "args": [{}]}
    if queued_ago is not None:
        body["queue_time"] = time.time() - queued_ago
    return json.dumps(body)


def known_content(r: Any) -> None:
    """email: 3 jobs, the oldest 40 s old; erp: 1 Ruby job (no queue_time); idle: empty;
    2 workers (1 busy), processed 10 of which 3 failed, 2 failures kept, 4 delayed jobs."""
    r.sadd(K.queues, "email", "erp", "idle")
    r.rpush(K.queue("email"), payload("Mail", 40), payload("Mail", 5), payload("Mail", 1))
    r.rpush(K.queue("erp"), payload("Erp", None))
    r.sadd(K.workers, "h:1:email,erp", "h:2:email,erp")
    busy = {"queue": "email", "run_at": timefmt.run_at(), "payload": json.loads(payload("Mail", 2))}
    r.set(K.worker("h:1:email,erp"), json.dumps(busy))
    r.set(K.stat("processed"), 10)
    r.set(K.stat("failed"), 3)
    r.rpush(K.failed, json.dumps({"error": "x"}), json.dumps({"error": "y"}))
    due = int(time.time()) + 600
    r.zadd(K.delayed_schedule, {str(due): due})
    r.rpush(K.delayed_prefix + str(due), *[payload("Later", None)] * 4)


def test_every_family_against_a_known_content(r: Any) -> None:
    known_content(r)
    m = scrape(r)
    assert m["labqueue_queue_depth"] == {
        (("queue", "email"),): 3.0,
        (("queue", "erp"),): 1.0,
        (("queue", "idle"),): 0.0,
    }
    ages = m["labqueue_queue_oldest_job_age_seconds"]
    assert 39.0 <= ages[(("queue", "email"),)] < 45.0
    assert ages[(("queue", "idle"),)] == 0.0
    assert (("queue", "erp"),) not in ages, "a Ruby job's age is unknown: no sample"
    assert m["labqueue_jobs_processed"] == {"labqueue_jobs_processed_total": 10.0}
    assert m["labqueue_jobs_failed"] == {"labqueue_jobs_failed_total": 3.0}
    assert m["labqueue_jobs_processed:type"] == "counter"
    assert m["labqueue_queue_depth:type"] == "gauge"
    assert m["labqueue_workers"] == {(("state", "busy"),): 1.0, (("state", "idle"),): 1.0}
    assert m["labqueue_delayed_jobs"] == {"labqueue_delayed_jobs": 4.0}
    assert m["labqueue_failed_store_jobs"] == {"labqueue_failed_store_jobs": 2.0}
    assert m["labqueue_unreadable_keys"] == {"labqueue_unreadable_keys": 0.0}


def test_a_worker_drains_and_the_numbers_follow(r: Any) -> None:
    labqueue.Queue("email", r).enqueue_many("X", [{"n": i} for i in range(3)])
    assert scrape(r)["labqueue_queue_depth"] == {(("queue", "email"),): 3.0}
    r.delete(K.queue("email"))
    r.incrby(K.stat("processed"), 3)
    after = scrape(r)
    assert after["labqueue_queue_depth"] == {(("queue", "email"),): 0.0}
    assert after["labqueue_queue_oldest_job_age_seconds"] == {(("queue", "email"),): 0.0}
    assert after["labqueue_jobs_processed"] == {"labqueue_jobs_processed_total": 3.0}


def test_wrong_typed_keys_are_skipped_and_counted(r: Any) -> None:
    known_content(r)
    r.sadd(K.queues, "broken")
    r.hset(K.queue("broken"), "not", "a list")
    r.delete(K.stat("failed"))
    r.hset(K.stat("failed"), "x", "1")
    m = scrape(r)
    assert (("queue", "broken"),) not in m["labqueue_queue_depth"]
    assert (("queue", "broken"),) not in m["labqueue_queue_oldest_job_age_seconds"]
    assert m["labqueue_queue_depth"][(("queue", "email"),)] == 3.0
    assert "labqueue_jobs_failed" not in m, "a counter that cannot be read has no sample"
    assert m["labqueue_jobs_processed"] == {"labqueue_jobs_processed_total": 10.0}
    assert m["labqueue_unreadable_keys"] == {"labqueue_unreadable_keys": 2.0}


def test_a_queue_name_that_is_not_utf8_or_has_controls_is_escaped() -> None:
    raw = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    raw.sadd(K.queues, b"bad\xff", b"nl\nq")
    raw.rpush(K.queue("nl\nq"), payload("X", 3))
    m = scrape(raw)
    assert m["labqueue_queue_depth"] == {
        (("queue", "bad\\xff"),): 0.0,
        (("queue", "nl\\nq"),): 1.0,
    }


def test_same_password_rule_as_every_page(r: Any) -> None:
    client = create_app(r, {"TESTING": True, "LABQUEUE_PASSWORD": "s3cret"}).test_client()
    assert client.get("/metrics").status_code == 401
    wrong = base64.b64encode(b"prometheus:nope").decode()
    assert client.get("/metrics", headers={"Authorization": f"Basic {wrong}"}).status_code == 401
    right = base64.b64encode(b"prometheus:s3cret").decode()
    assert scrape(r, {"LABQUEUE_PASSWORD": "s3cret"}, headers={"Authorization": f"Basic {right}"})


def test_each_app_has_its_own_registry() -> None:
    one = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    two = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    labqueue.Queue("only-in-one", one).enqueue("X")
    labqueue.Queue("only-in-two", two).enqueue("X")
    assert list(scrape(one)["labqueue_queue_depth"]) == [(("queue", "only-in-one"),)]
    assert list(scrape(two)["labqueue_queue_depth"]) == [(("queue", "only-in-two"),)]


def test_redis_down_is_a_503_not_a_500() -> None:
    import redis

    down = redis.Redis(port=1, socket_connect_timeout=0.2, decode_responses=True)
    resp = create_app(down, {"TESTING": True}).test_client().get("/metrics")
    assert resp.status_code == 503
