"""The oldest waiting jobs' ages with jobs parked by a concurrency limit, on fakeredis and a
real redis-server: a parked job still waits for its queue (the queue's age counts it), each
limiter has its own figure, and it all stays one round trip. ``labqueue stats``, the monitor
and /metrics show them."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import fakeredis
from limit_jobs import STARTED, Held
from prometheus_client.parser import text_string_to_metric_families
from test_core_events import count_pipelines
from test_core_limits import QUEUE, workers
from waiting import wait_for

import labqueue
from labqueue.keys import Keys
from labqueue.stats import ParkedAge, oldest_ages, waiting_ages
from labqueue.web import create_app

K = Keys()


def payload(queue_time: float | None, job_id: str = "x") -> str:
    data: dict[str, Any] = {"class": "Shop::RecordSale", "args": [], "id": job_id}
    if queue_time is not None:
        data["queue_time"] = queue_time
    return json.dumps(data)


def park(r: Any, limiter: str, queue: str, raw: str, k: int = 2) -> None:
    """A parked job as ACQUIRE writes it: ``{queue, payload}`` at the tail, K in the hash."""
    r.hset(K.limits, limiter, k)
    r.rpush(K.limit_parked(limiter), json.dumps({"queue": queue, "payload": raw}))


def test_a_parked_job_counts_for_its_queue_and_its_limiter(conn: Any) -> None:
    now = time.time()
    conn.rpush(K.queue("erp"), payload(now - 2))
    park(conn, "erp", "erp", payload(now - 30, "a"))
    park(conn, "erp", "erp", payload(now - 10, "b"))
    park(conn, "mail", "mail", json.dumps({"class": "Ruby", "args": []}))  # no queue_time
    conn.hset(K.limits, "idle", 1)  # a limiter with nothing parked
    ages = waiting_ages(conn, ["erp", "mail", "other"])
    assert 2 <= ages.queued["erp"] < 4  # type: ignore[operator]  # the queue's head alone
    erp = ages.parked["erp"]
    assert (erp.count, erp.queue) == (2, "erp") and 30 <= erp.age < 32  # type: ignore[operator]
    assert ages.parked["mail"] == ParkedAge(1, None, "mail")
    assert ages.parked["idle"] == ParkedAge(0, 0.0, None)
    assert list(ages.parked) == ["erp", "idle", "mail"]
    waiting = ages.waiting  # waiting for erp = queued + parked: the oldest of both
    assert 30 <= waiting["erp"] < 32 and waiting["other"] == 0.0  # type: ignore[operator]
    assert waiting["mail"] is None  # an empty queue, but a job of unknown age waits for it
    assert list(oldest_ages(conn, ["erp", "mail", "other"])) == ["erp", "mail", "other"]
    assert 30 <= oldest_ages(conn, ["erp"])["erp"] < 32  # type: ignore[operator]


def test_parked_jobs_of_an_empty_queue_are_its_oldest(conn: Any) -> None:
    park(conn, "erp", "erp", payload(time.time() - 7))
    assert 7 <= oldest_ages(conn, ["erp"])["erp"] < 9  # type: ignore[operator]
    assert oldest_ages(conn, ["email"]) == {"email": 0.0}  # another queue's wait is not its


def test_parked_keys_that_cannot_be_read_are_unknown_not_an_error(conn: Any) -> None:
    conn.hset(K.limits, "odd", 1)
    conn.set(K.limit_parked("odd"), "not a list")
    park(conn, "junk", "erp", "x")
    conn.rpush(K.limit_parked("junk2"), "no record")
    conn.hset(K.limits, "junk2", 1)
    conn.rpush(K.queue("erp"), payload(time.time() - 1))
    ages = waiting_ages(conn, ["erp"])
    assert ages.parked["odd"] == ParkedAge(0, None)
    assert ages.parked["junk"] == ParkedAge(1, None, "erp")
    assert ages.parked["junk2"] == ParkedAge(1, None, None)
    assert ages.waiting["erp"] is None  # a job of unknown age waits for erp
    conn.delete(K.limits)
    conn.set(K.limits, "not a hash")
    assert waiting_ages(conn, ["erp"]).parked == {}


def test_ages_stay_one_round_trip_with_limiters(conn: Any) -> None:
    direct: list[Any] = []
    real_command = conn.execute_command
    for i in range(3):
        park(conn, f"lim{i}", "q0", payload(time.time() - i))
    for i in range(50):
        conn.rpush(K.queue(f"q{i}"), payload(time.time()))
    calls = count_pipelines(conn)
    conn.execute_command = lambda *a, **kw: direct.append(a) or real_command(*a, **kw)
    ages = waiting_ages(conn, [f"q{i}" for i in range(50)])
    assert calls == [52] and direct == []  # TIME, 50 LINDEX and the limiters' script, together
    assert sorted(ages.parked) == ["lim0", "lim1", "lim2"]


def test_jobs_the_limiter_parked_count_in_their_queues_age(conn: Any) -> None:
    q = labqueue.Queue(QUEUE, conn)
    q.enqueue(Held, tag="h1")
    with workers(conn, 2):
        wait_for(lambda: conn.lrange(STARTED, 0, -1) == ["h1"], what="h1 to hold the slot")
        for t in ("h2", "h3"):
            q.enqueue(Held, tag=t)
        wait_for(lambda: conn.llen(K.limit_parked("tests-held")) == 2, what="2 parked jobs")
        time.sleep(0.3)
        ages = waiting_ages(conn, [QUEUE])
        assert q.length == 0 and ages.queued == {QUEUE: 0.0}  # nothing in the queue ...
        held = ages.parked["tests-held"]
        assert (held.count, held.queue) == (2, QUEUE) and held.age >= 0.3  # type: ignore[operator]
        assert ages.waiting[QUEUE] == held.age  # ... but its jobs wait, parked


def test_stats_shows_the_oldest_parked_job(run: Any, real: Any) -> None:
    park(real, "erp", "erp", payload(time.time() - 42))
    real.sadd(K.queues, "erp")
    text = run("stats").output
    assert re.search(r"^limit erp: 0 of 2 running, 1 parked \(oldest waiting 4[23]\.\d s\)$",
                     text, re.M), text  # fmt: skip
    data = json.loads(run("stats", "--json").output)
    assert 42 <= data["oldest_parked_age"]["erp"] < 44
    assert 42 <= data["oldest_age"]["erp"] < 44 and data["queues"]["erp"] == 0


def test_the_monitor_and_metrics_show_the_oldest_parked_job() -> None:
    r = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    park(r, "erp", "erp", payload(time.time() - 20))
    r.sadd(K.queues, "erp")
    client = create_app(r, {"TESTING": True}).test_client()
    page = client.get("/").get_data(as_text=True)
    assert "Oldest parked" in page and "20." in page
    overview = client.get("/api/overview").get_json()
    (lim,) = overview["limits"]
    assert 20 <= lim["oldest_parked_age"] < 22
    (queue,) = overview["queues"]
    assert queue["name"] == "erp" and 20 <= queue["oldest_age"] < 22
    families = {
        f.name: {tuple(s.labels.values()): s.value for s in f.samples}
        for f in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))
    }
    (age,) = families["labqueue_limiter_parked_oldest_age_seconds"].values()
    assert 20 <= age < 22
    assert 20 <= families["labqueue_queue_oldest_job_age_seconds"][("erp",)] < 22
