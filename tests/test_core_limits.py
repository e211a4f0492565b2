"""The concurrency limit per job class (issue 14), on fakeredis and a real redis-server:
never more than K running (as the jobs themselves count), parked jobs run later and are not
lost, other classes keep running, a dead holder's slot comes back within lease + one beat,
bad settings fail in one line, and ``labqueue stats``, the monitor and /metrics show it."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import fakeredis
import pytest
from limit_jobs import DONE, FREE_DONE, GO, PEAK, STARTED, Erp, ErpToo, Free, Held
from prometheus_client.parser import text_string_to_metric_families
from waiting import wait_for

import labqueue
from labqueue.errors import ConfigurationError
from labqueue.jobs import Registry
from labqueue.keys import Keys
from labqueue.stats import snapshot
from labqueue.web import create_app
from labqueue.worker.limits import LEASE_BEATS

K = Keys()
QUEUE = "limits"


@contextmanager
def workers(conn: Any, n: int, heartbeat: float = 0.2) -> Iterator[list[labqueue.Worker]]:
    """``n`` workers on QUEUE, each in a thread with an id of its own; stopped on the way out
    (GO set first, so a Held job still running lets its worker go)."""
    ws = []
    for i in range(n):
        w = labqueue.Worker(QUEUE, conn, poll_interval=0.05, heartbeat_interval=heartbeat)
        w.hostname = f"limit-test-{i}"
        ws.append(w)
    threads = [threading.Thread(target=w.work, daemon=True) for w in ws]
    for t in threads:
        t.start()
    try:
        yield ws
    finally:
        conn.set(GO, 1)
        for w in ws:
            w.stop()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads)


def redis_now(conn: Any) -> float:
    sec, usec = conn.time()
    return int(sec) + int(usec) / 1e6


def test_never_more_than_k_run_under_contention(conn: Any) -> None:
    """6 workers, 30 jobs of two classes sharing a limiter of 2: the jobs never see more than
    2 of them running; every job ran once; parking counted nothing; nothing is left over."""
    q = labqueue.Queue(QUEUE, conn)
    for i in range(30):
        q.enqueue(Erp if i % 2 else ErpToo, tag=i, seconds=0.03)
    with workers(conn, 6):
        wait_for(lambda: conn.llen(DONE) == 30, what="30 limited jobs", timeout=60)
    assert int(conn.get(PEAK)) == 2  # the limit, and no lower: both slots were used
    assert sorted(map(int, conn.lrange(DONE, 0, -1))) == list(range(30))
    assert int(conn.get(K.stat("processed"))) == 30 and conn.get(K.stat("failed")) is None
    assert conn.llen(K.limit_parked("tests-erp")) == 0 == q.length
    assert conn.zcard(K.limit_holders("tests-erp")) == 0
    assert conn.hget(K.limits, "tests-erp") == "2"
    assert conn.keys(K.inprogress("*")) == []


def test_never_more_than_k_run_in_one_process_of_threads(conn: Any) -> None:
    """One worker with 6 threads (each its own id and holder): the jobs still never see more
    than 2 running; every job ran once and every thread's slot was given back."""
    q = labqueue.Queue(QUEUE, conn)
    for i in range(24):
        q.enqueue(Erp if i % 2 else ErpToo, tag=i, seconds=0.03)
    w = labqueue.Worker(QUEUE, conn, poll_interval=0.05, heartbeat_interval=0.2, threads=6)
    t = threading.Thread(target=w.work, daemon=True)
    t.start()
    try:
        wait_for(lambda: conn.llen(DONE) == 24, what="24 limited jobs", timeout=60)
    finally:
        w.stop()
        t.join(30)
    assert not t.is_alive()
    assert int(conn.get(PEAK)) == 2
    assert sorted(map(int, conn.lrange(DONE, 0, -1))) == list(range(24))
    assert int(conn.get(K.stat("processed"))) == 24
    assert conn.llen(K.limit_parked("tests-erp")) == 0 == q.length
    assert conn.zcard(K.limit_holders("tests-erp")) == 0


def test_a_job_older_than_the_parked_head_is_parked_in_front(conn: Any) -> None:
    """A job unparked into a slot another worker took first comes back older than the jobs
    parked since: it is parked again at the head (its place), not behind the whole burst;
    a newer job still goes to the tail."""
    parked = K.limit_parked("tests-held")
    conn.zadd(K.limit_holders("tests-held"), {"somebody:1:limits": redis_now(conn) + 600})
    later = json.dumps({"class": "tests.limits.Held", "args": [{}], "queue_time": 4e9})
    conn.rpush(parked, json.dumps({"queue": QUEUE, "payload": later}))
    q = labqueue.Queue(QUEUE, conn)
    old = q.enqueue(Held, tag="old")
    labqueue.Worker(QUEUE, conn, poll_interval=0.05).work(burst=True)
    conn.rpush(parked, json.dumps({"queue": QUEUE, "payload": later.replace("4e9", "5e9")}))
    new = q.enqueue(Held, tag="new")  # newer than the head (the old job): to the tail
    labqueue.Worker(QUEUE, conn, poll_interval=0.05).work(burst=True)
    ids = [json.loads(json.loads(item)["payload"]).get("id") for item in conn.lrange(parked, 0, -1)]
    assert ids == [old, None, None, new]
    assert conn.llen(STARTED) == 0  # the slot was full: nothing ran


def test_a_parked_job_runs_later_and_other_classes_keep_running(conn: Any) -> None:
    q = labqueue.Queue(QUEUE, conn)
    first = q.enqueue(Held, tag="h1")
    with workers(conn, 2):
        wait_for(lambda: conn.lrange(STARTED, 0, -1) == ["h1"], what="h1 to hold the slot")
        waiting = [q.enqueue(Held, tag=t) for t in ("h2", "h3")]
        for t in ("f1", "f2", "f3"):
            q.enqueue(Free, tag=t)
        # the limited class is saturated; the free jobs run meanwhile on the other worker
        wait_for(lambda: conn.llen(FREE_DONE) == 3, what="the unlimited jobs")
        wait_for(lambda: conn.llen(K.limit_parked("tests-held")) == 2, what="2 parked jobs")
        assert q.length == 0  # parked jobs are in no queue ...
        assert conn.lrange(STARTED, 0, -1) == ["h1"]
        (lim,) = snapshot(conn).limiters  # ... but they show under their limiter
        assert (lim.name, lim.limit, lim.running, lim.parked) == ("tests-held", 1, 1, 2)
        assert [(j.job_class, j.id, j.queue) for j in lim.next_parked] == [
            ("tests.limits.Held", i, QUEUE) for i in waiting
        ]
        assert all(labqueue.get_status(conn, i).status.name == "WAITING" for i in waiting)
        assert int(conn.get(K.stat("processed"))) == 3  # a parked job is not processed
        assert labqueue.get_status(conn, first).status.name == "RUNNING"
        conn.set(GO, 1)
        wait_for(lambda: conn.llen(DONE) == 3, what="the parked jobs to run")
    assert conn.lrange(DONE, 0, -1) == ["h1", "h2", "h3"]  # in their order: next in line
    assert int(conn.get(PEAK)) == 1
    assert int(conn.get(K.stat("processed"))) == 6 and conn.get(K.stat("failed")) is None
    assert conn.llen(K.limit_parked("tests-held")) == 0 == q.length


def test_a_dead_holders_slot_comes_back_within_lease_plus_one_beat(conn: Any) -> None:
    """A holder that stopped renewing (as after a SIGKILL: see test_faults_limits for the real
    kill): its lease runs out, and the live worker's sweep hands the slot to the parked job
    within one heartbeat after that."""
    beat, lease = 0.2, 0.8
    conn.hset(K.limits, "tests-held", 1)
    conn.zadd(K.limit_holders("tests-held"), {"gone:1:limits": redis_now(conn) + lease})
    t0 = time.monotonic()
    conn.set(GO, 1)
    labqueue.Queue(QUEUE, conn).enqueue(Held, tag="after")
    with workers(conn, 1, heartbeat=beat):
        wait_for(lambda: conn.llen(DONE) == 1, what="the parked job to run", timeout=10)
        took = time.monotonic() - t0
    assert lease - 0.1 <= took <= lease + beat + 1.0, took  # 1 s: scheduling on a busy box
    assert conn.zscore(K.limit_holders("tests-held"), "gone:1:limits") is None


def test_leases_are_renewed_by_the_heartbeat(conn: Any) -> None:
    """A job longer than its lease keeps its slot: every beat moves the deadline on."""
    q = labqueue.Queue(QUEUE, conn)
    q.enqueue(Held, tag="long")
    beat = 0.2
    with workers(conn, 1, heartbeat=beat) as (w,):
        wait_for(lambda: conn.llen(STARTED) == 1, what="the job to start")
        first = conn.zscore(K.limit_holders("tests-held"), w.id)
        time.sleep(LEASE_BEATS * beat * 2)  # twice the lease
        later = conn.zscore(K.limit_holders("tests-held"), w.id)
        assert first is not None and later is not None and later > first + LEASE_BEATS * beat
        assert later - redis_now(conn) <= LEASE_BEATS * beat + 0.05


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "2"])
def test_a_bad_max_concurrency_is_a_one_line_error(bad: Any) -> None:
    with pytest.raises(ConfigurationError) as err:

        @labqueue.job(f"tests.limits.Bad{bad!s}", max_concurrency=bad)
        class Bad(labqueue.Job):
            pass

    assert "max_concurrency must be a whole number >= 1" in str(err.value)
    assert "\n" not in str(err.value) and f"tests.limits.Bad{bad!s}" not in labqueue.registry


@pytest.mark.parametrize("bad", ["", " ", "a\nb", 3])
def test_a_bad_limiter_name_is_a_one_line_error(bad: Any) -> None:
    class Bad(labqueue.Job):
        max_concurrency = 1
        limiter = bad

    with pytest.raises(ConfigurationError, match="limiter must be a non-empty printable name"):
        Registry().register(Bad, "Bad")


def test_classes_sharing_a_limiter_must_agree_on_its_size() -> None:
    reg = Registry()

    class A(labqueue.Job):
        max_concurrency, limiter = 2, "erp"

    class B(labqueue.Job):
        max_concurrency, limiter = 3, "erp"

    class C(labqueue.Job):
        max_concurrency, limiter = 2, "erp"

    reg.register(A, "A")
    with pytest.raises(ConfigurationError) as err:
        reg.register(B, "B")
    assert str(err.value) == (
        "limiter 'erp': B says max_concurrency=3, A says 2; classes sharing a limiter must agree"
    )
    assert "B" not in reg
    reg.register(C, "C")
    assert reg.limit_of(A) == reg.limit_of(C) == ("erp", 2)


def test_the_limiter_defaults_to_the_registered_name() -> None:
    reg = Registry()

    class Plain(labqueue.Job):
        pass

    class Limited(labqueue.Job):
        max_concurrency = 4

    reg.register(Plain, "Plain")
    assert not reg.limited() and reg.limit_of(Plain) is None
    reg.register(Limited, "Shop::Limited", "Shop\\Limited")
    assert reg.limited() and reg.limit_of(Limited) == ("Shop::Limited", 4)
    assert (Erp.max_concurrency, Erp.limiter) == (2, "tests-erp")  # set by @labqueue.job


def limiter_state(r: Any) -> None:
    """Limiter erp: K=2, one holder with a live lease, one parked job."""
    r.hset(K.limits, "erp", 2)
    r.zadd(K.limit_holders("erp"), {"host:1:default": redis_now(r) + 10})
    job = {"class": "Shop::RecordSale", "args": [], "id": "abc"}
    r.rpush(K.limit_parked("erp"), json.dumps({"queue": "default", "payload": json.dumps(job)}))


def test_stats_shows_each_limiter(run: Any, real: Any) -> None:
    limiter_state(real)
    text = run("stats").output
    assert "limit erp: 1 of 2 running, 1 parked" in text
    assert re.search(r"^  held by host:1:default \(lease (9|10)s left\)$", text, re.M), text
    assert "  parked Shop::RecordSale abc for queue default" in text
    (lim,) = json.loads(run("stats", "--json").output)["limiters"]
    assert (lim["name"], lim["limit"], lim["parked"]) == ("erp", 2, 1)
    assert list(lim["holders"]) == ["host:1:default"] and lim["holders"]["host:1:default"] >= 9
    assert lim["next_parked"] == [
        {"queue": "default", "job_class": "Shop::RecordSale", "id": "abc"}
    ]


def test_the_monitor_and_metrics_show_each_limiter() -> None:
    r = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    limiter_state(r)
    client = create_app(r, {"TESTING": True}).test_client()
    page = client.get("/").get_data(as_text=True)
    assert 'id="limits"' in page and "host:1:default" in page and 'data-limiter="erp"' in page
    families = {
        f.name: {s.labels["limiter"]: s.value for s in f.samples}
        for f in text_string_to_metric_families(client.get("/metrics").get_data(as_text=True))
        if f.name.startswith("labqueue_limiter_")
    }
    assert families == {
        "labqueue_limiter_slots": {"erp": 2.0},
        "labqueue_limiter_running": {"erp": 1.0},
        "labqueue_limiter_parked_jobs": {"erp": 1.0},
        "labqueue_limiter_parked_oldest_age_seconds": {},  # its job has no queue_time: unknown
    }


def test_a_worker_importing_a_bad_limit_refuses_in_one_line(run: Any) -> None:
    result = run("worker", "--import", "limit_bad_jobs", "--burst")
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Zero.max_concurrency must be a whole number >= 1" in lines[0]
    assert "Traceback" not in result.output


def test_a_limiter_key_of_the_wrong_type_is_set_aside_and_the_job_runs(conn: Any) -> None:
    conn.set(K.limit_holders("tests-held"), "not a zset")
    conn.set(K.limit_parked("tests-held"), "not a list")
    conn.set(GO, 1)
    labqueue.Queue(QUEUE, conn).enqueue(Held, tag="ok")
    assert labqueue.Worker(QUEUE, conn, poll_interval=0.05).work(burst=True) == 1
    assert conn.lrange(DONE, 0, -1) == ["ok"]
    aside = conn.keys(K.aside_prefix + "*")
    assert sorted(conn.get(k) for k in aside) == ["not a list", "not a zset"]  # kept, moved
    assert conn.type(K.limit_holders("tests-held")) in ("zset", "none")


def test_a_parked_php_resque_job_gets_php_resques_waiting_status(conn: Any) -> None:
    """A php-resque payload (``prefix``) parks like any other: its tracked status says
    waiting again, ``started`` kept, under php-resque's key; it runs once a slot frees."""
    job_id = "f" * 32
    payload = {"class": "tests.limits.Held", "args": [{"tag": "php"}], "id": job_id}
    status = K.status(job_id, "shop")
    conn.set(status, json.dumps({"status": 1, "updated": 1, "started": 1764413115}))
    conn.hset(K.limits, "tests-held", 1)
    conn.zadd(K.limit_holders("tests-held"), {"other:1:limits": redis_now(conn) + 60})
    conn.rpush(K.queue(QUEUE), json.dumps({**payload, "prefix": "shop"}))
    assert labqueue.Worker(QUEUE, conn, poll_interval=0.05).work(burst=True) == 0
    (item,) = conn.lrange(K.limit_parked("tests-held"), 0, -1)
    assert json.loads(json.loads(item)["payload"]) == {**payload, "prefix": "shop"}
    record = json.loads(conn.get(status))
    assert (record["status"], record["started"]) == (1, 1764413115) and record["updated"] > 1
    conn.delete(K.limit_holders("tests-held"))  # the other holder is gone: a sweep frees it
    conn.set(GO, 1)
    with workers(conn, 1, heartbeat=0.1):
        wait_for(lambda: conn.lrange(DONE, 0, -1) == ["php"], what="the parked job to run")
    assert json.loads(conn.get(status))["status"] == 4


def test_a_limit_set_after_registration_is_read_when_the_job_runs() -> None:
    """Settings applied at worker start (the store's --erp-limit) need no re-registration;
    a bad value set that way is refused at the next job, in one line."""
    reg = Registry()

    class Later(labqueue.Job):
        pass

    reg.register(Later, "Later")
    assert reg.limit_of(Later) is None
    Later.max_concurrency, Later.limiter = 3, "erp"
    assert reg.limited() and reg.limit_of(Later) == ("erp", 3)
    Later.max_concurrency = 0
    with pytest.raises(
        ConfigurationError,
        match=r"Later.max_concurrency must be a whole number >= 1 or None, not 0$",
    ):
        reg.limit_of(Later)
