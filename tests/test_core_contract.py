"""The queue and worker contract, run on fakeredis and on a real redis-server."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from jobs_for_tests import DONE, SEEN, FailingJob, Record, Slow, StatusProbe, TestJob

import labqueue
from labqueue.keys import Keys
from labqueue.worker.reliable import ReliableFetch

VECTORS = json.loads((Path(__file__).parent / "data" / "resque-vectors.json").read_text())
K = Keys()


def worker(conn: Any, queues: Any = "*", **kw: Any) -> labqueue.Worker:
    kw.setdefault("poll_interval", 0.05)
    return labqueue.Worker(queues, conn, **kw)


def done(conn: Any) -> list[str]:
    return conn.lrange(DONE, 0, -1)


# -- enqueue and the layout ------------------------------------------------------------------
def test_enqueue_writes_the_php_resque_payload_and_layout(conn: Any) -> None:
    job_id = labqueue.Queue("default", conn).enqueue(TestJob, to_name="Samir Patel")
    [raw] = conn.lrange("resque:queue:default", 0, -1)
    payload = json.loads(raw)
    assert list(payload) == ["class", "args", "id", "queue_time"]
    assert payload["class"] == "Job\\Work\\TestJob"
    assert payload["args"] == [{"to_name": "Samir Patel"}]
    assert payload["id"] == job_id and len(job_id) == 32 and int(job_id, 16) >= 0
    assert abs(payload["queue_time"] - time.time()) < 60
    assert conn.smembers("resque:queues") == {"default"}
    assert json.loads(conn.get(f"resque:job:{job_id}:status"))["status"] == 1


def test_seed_api_chains_and_returns_the_job_id(conn: Any) -> None:
    job_id = (
        labqueue.JobScheduler(conn)
        .set_job_class("Job\\Work\\TestJob")
        .set_job_data({"to_name": "Samir Patel", "subject": "Google news here"})
        .set_queue("default")
        .schedule()
    )
    [payload] = labqueue.Queue("default", conn).peek()
    assert isinstance(payload, labqueue.Payload)
    assert payload.id == job_id and payload.args == [
        {"to_name": "Samir Patel", "subject": "Google news here"}
    ]
    assert labqueue.get_status(conn, job_id).status is labqueue.JobStatus.WAITING


def test_enqueue_many_and_inspection(conn: Any) -> None:
    q = labqueue.Queue("bulk", conn)
    ids = q.enqueue_many(Record, [{"tag": i} for i in range(2500)] + [["pos", 1]])
    assert len(set(ids)) == 2501 and q.length == len(q) == 2501
    first, second = q.peek(0, 2)
    assert first.args == [{"tag": 0}] and second.args == [{"tag": 1}]
    assert q.peek(2500, 5)[0].args == ["pos", 1]
    assert labqueue.queues(conn) == ["bulk"]
    assert labqueue.get_status(conn, ids[-1]).status is labqueue.JobStatus.WAITING


def test_bad_arguments_fail_clearly(conn: Any) -> None:
    with pytest.raises(labqueue.ConfigurationError, match="queue name"):
        labqueue.Queue("", conn)
    with pytest.raises(labqueue.PayloadError, match="JSON"):
        labqueue.Queue("q", conn).enqueue(TestJob, when=object())
    with pytest.raises(labqueue.NotAJob, match="not a job"):
        labqueue.Queue("q", conn).enqueue(dict)
    with pytest.raises(labqueue.NotAJob):
        labqueue.JobScheduler(conn).set_job_class(int)
    with pytest.raises(labqueue.PayloadError, match="either"):
        labqueue.Queue("q", conn).enqueue(TestJob, 1, a=2)
    assert conn.keys("*") == []


# -- running jobs: both payload styles, Ruby's vectors ------------------------------------------
def test_ruby_and_php_payloads_run_and_match_resque(conn: Any) -> None:
    """Push exactly what Ruby Resque pushed; the results match what Resque wrote."""
    for raw in VECTORS["queue_default_after_enqueue"]:
        conn.rpush("resque:queue:default", raw)
    for raw in VECTORS["queue_high_after_enqueue"]:
        conn.rpush("resque:queue:high", raw)
    conn.sadd("resque:queues", *VECTORS["queues_set"])
    w = worker(conn, ["default", "high"])
    assert w.work(burst=True) == 3
    seen = [json.loads(s) for s in conn.lrange(SEEN, 0, -1)]
    assert seen[0]["args"]["to_name"] == "Samir Patel" and seen[0]["id"] is None
    assert seen[1]["arg_list"] == ["positional", 1, 2.5, True, None] and seen[1]["args"] == {}
    # processed counts every finished job, the failed one too, as Resque's code does (the
    # vectors' stat_processed "2" after three jobs was captured mid-run: not asserted)
    assert conn.get("resque:stat:processed") == "3"
    assert conn.get("resque:stat:failed") == VECTORS["stat_failed"]
    [mine] = [json.loads(r) for r in conn.lrange("resque:failed", 0, -1)]
    [theirs] = [json.loads(r) for r in VECTORS["failed_list"]]
    assert list(mine) == list(theirs)
    assert mine["payload"] == theirs["payload"] and mine["queue"] == "default"
    assert mine["exception"] == "ValueError" and mine["error"] == "no such customer: 42"
    assert mine["worker"] == w.id and any("perform" in line for line in mine["backtrace"])
    assert time.strptime(mine["failed_at"], "%Y/%m/%d %H:%M:%S UTC")
    left = {k.removeprefix("resque:") for k in conn.keys("resque:*")}
    assert left == set(VECTORS["keys_after_worker_exit"]) - {"pruning_dead_workers_in_progress"}


def test_busy_worker_shows_resque_records(conn: Any) -> None:
    labqueue.Queue("default", conn).enqueue(Slow, tag="a", seconds=0.6)
    w = worker(conn, "default,high")
    t = threading.Thread(target=w.work)
    t.start()
    try:
        deadline = time.time() + 10
        while not conn.lrange("labqueue-test:started", 0, -1) and time.time() < deadline:
            time.sleep(0.01)
        assert conn.smembers("resque:workers") == {w.id}
        _host, pid, queues = w.id.split(":")
        assert queues == "default,high" and pid.isdigit()
        busy = json.loads(conn.get(f"resque:worker:{w.id}"))
        assert list(busy) == ["queue", "run_at", "payload"] and busy["queue"] == "default"
        assert busy["payload"]["class"] == "tests.Slow"
        assert time.strptime(busy["run_at"], "%Y-%m-%dT%H:%M:%SZ")
        assert time.strptime(conn.get(f"resque:worker:{w.id}:started"), "%Y-%m-%d %H:%M:%S +0000")
        beat = conn.hget("resque:workers:heartbeat", w.id)
        assert beat.endswith("+00:00") and "T" in beat
    finally:
        w.stop()
        t.join(10)
    assert done(conn) == ["a"]
    assert conn.smembers("resque:workers") == set() and not conn.exists(f"resque:worker:{w.id}")


def test_priority_order_and_wildcard(conn: Any) -> None:
    low, high = labqueue.Queue("low", conn), labqueue.Queue("high", conn)
    for i in range(3):
        low.enqueue(Record, tag=f"low{i}")
        high.enqueue(Record, tag=f"high{i}")
    worker(conn, ["high", "low"]).work(burst=True)
    assert done(conn) == ["high0", "high1", "high2", "low0", "low1", "low2"]
    conn.delete(DONE)
    for name in ("b", "a", "c"):
        labqueue.Queue(name, conn).enqueue(Record, tag=name)
    worker(conn, "*").work(burst=True)
    assert done(conn) == ["a", "b", "c"]  # sorted; the emptied high and low are skipped


def test_status_goes_running_then_complete_or_failed(conn: Any) -> None:
    q = labqueue.Queue("default", conn)
    probe = q.enqueue(StatusProbe)
    failing = q.enqueue(FailingJob, customer_id=7)
    worker(conn, "default").work(burst=True)
    assert done(conn) == [str(int(labqueue.JobStatus.RUNNING))]
    assert labqueue.get_status(conn, probe).status is labqueue.JobStatus.COMPLETE
    assert labqueue.get_status(conn, failing).status is labqueue.JobStatus.FAILED
    for job_id in (probe, failing):
        assert 86000 < conn.ttl(K.status(job_id)) <= 86400
    with pytest.raises(labqueue.JobNotFound):
        labqueue.get_status(conn, "0" * 32)


def test_unregistered_class_fails_without_importing(conn: Any) -> None:
    for name in ("os.system", "subprocess.Popen", "tests.NotThere"):
        conn.rpush("resque:queue:default", json.dumps({"class": name, "args": ["id"]}))
    conn.rpush("resque:queue:default", "not json at all")
    w = worker(conn, "default")
    assert w.work(burst=True) == 4 and w.failed == 4
    records = labqueue.FailedStore(conn).all()
    assert [r.exception for r in records] == ["UnknownJobClass"] * 3 + ["PayloadError"]
    assert "os.system" in records[0].error and "not registered" in records[0].error
    assert records[3].payload == "not json at all"


def test_failed_store_requeue_and_remove(conn: Any) -> None:
    q = labqueue.Queue("default", conn)
    ids = [q.enqueue(FailingJob, customer_id=i) for i in range(3)]
    worker(conn, "default").work(burst=True)
    store = labqueue.FailedStore(conn)
    assert len(store) == 3 and [r.job_id for r in store.all()] == ids
    assert store.requeue(ids[1]) == 1
    assert len(store) == 2 and q.length == 1 and q.peek()[0].id == ids[1]
    assert labqueue.get_status(conn, ids[1]).status is labqueue.JobStatus.WAITING
    assert store.remove(ids[0]) == 1 and [r.job_id for r in store.all()] == [ids[2]]
    with pytest.raises(labqueue.JobNotFound):
        store.requeue("f" * 32)
    assert store.requeue() == 1 and q.length == 2 and len(store) == 0
    worker(conn, "default").work(burst=True)
    assert store.remove() == 2 and len(store) == 0


def test_burst_returns_when_queues_are_empty(conn: Any) -> None:
    assert worker(conn, "nothing").work(burst=True) == 0
    assert conn.smembers("resque:workers") == set()


def test_idle_worker_wakes_on_enqueue_and_on_foreign_push(conn: Any) -> None:
    """labqueue's enqueue wakes an idle worker; a Resque-style RPUSH is seen by polling."""
    w = worker(conn, "default", poll_interval=0.2)
    t = threading.Thread(target=w.work)
    t.start()
    try:
        time.sleep(0.3)
        labqueue.Queue("default", conn).enqueue(Record, tag="ours")
        conn.rpush("resque:queue:default", json.dumps({"class": "tests.Record", "args": ["ruby"]}))
        deadline = time.time() + 10
        while len(done(conn)) < 2 and time.time() < deadline:
            time.sleep(0.01)
    finally:
        w.stop()
        t.join(10)
    assert done(conn) == ["ours", "ruby"]
    assert not t.is_alive()


# -- reliable fetch ----------------------------------------------------------------------------
def test_job_of_a_dead_worker_goes_back_to_the_head_of_its_queue(conn: Any) -> None:
    q = labqueue.Queue("default", conn)
    first = q.enqueue(Record, tag="taken-by-the-dead")
    q.enqueue(Record, tag="second")
    dead = "ghost-host:99999:default"
    conn.sadd(K.workers, dead)
    conn.hset(K.heartbeat, dead, "2020-01-01T00:00:00+00:00")
    fetched = ReliableFetch.parse(ReliableFetch(conn, K).fetch(dead, ["default"], time.time(), "x"))
    assert fetched is not None and q.length == 1
    assert labqueue.get_status(conn, first).status is labqueue.JobStatus.RUNNING
    worker(conn, "default").work(burst=True)
    assert done(conn) == ["taken-by-the-dead", "second"]
    assert conn.smembers(K.workers) == set() and not conn.exists(K.inprogress(dead))
    assert labqueue.get_status(conn, first).status is labqueue.JobStatus.COMPLETE


def test_live_workers_on_other_hosts_are_left_alone(conn: Any) -> None:
    alive = "other-host:123:default"
    conn.sadd(K.workers, alive)
    conn.hset(K.heartbeat, alive, labqueue.timefmt.heartbeat())
    ReliableFetch(conn, K).fetch(alive, ["default"], time.time(), "x")
    labqueue.Queue("default", conn).enqueue(Record, tag="x")
    ReliableFetch(conn, K).fetch(alive, ["default"], time.time(), "x")
    worker(conn, "default").work(burst=True)
    assert conn.sismember(K.workers, alive) and conn.exists(K.inprogress(alive))
    assert done(conn) == []


def test_wake_up_is_published_only_when_the_queue_was_empty(conn: Any) -> None:
    """Busy workers never pile up wake-ups: only a push into an empty queue announces itself."""
    pubsub = conn.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(K.wakeup_channel)
    pubsub.get_message(timeout=1)
    q = labqueue.Queue("mail", conn)
    q.enqueue(Record, tag=1)
    q.enqueue(Record, tag=2)
    q.enqueue_many(Record, [{"tag": 3}, {"tag": 4}])
    worker(conn, "mail").work(burst=True)
    q.enqueue_many(Record, [{"tag": 5}, {"tag": 6}])
    messages = []
    while (m := pubsub.get_message(timeout=0.2)) is not None:
        messages.append(m["data"])
    assert messages == ["mail", "mail"]
    pubsub.close()


def test_enqueue_together_is_one_step_across_queues(conn: Any) -> None:
    email, erp = labqueue.Queue("email", conn), labqueue.Queue("erp", conn)
    jobs = [
        (email, labqueue.Payload.new("tests.Record", [{"tag": "mail"}])),
        (erp, labqueue.Payload.new("tests.Record", [{"tag": "sale"}])),
        (erp, labqueue.Payload.new("tests.Record", [{"tag": "stock"}])),
    ]
    ids = labqueue.enqueue_together(jobs)
    assert ids == [p.id for _, p in jobs]
    assert [p.args for p in erp.peek()] == [[{"tag": "sale"}], [{"tag": "stock"}]]
    assert email.length == 1 and set(labqueue.queues(conn)) == {"email", "erp"}
    assert all(labqueue.get_status(conn, i).status is labqueue.JobStatus.WAITING for i in ids)
    worker(conn, "email,erp").work(burst=True)
    assert done(conn) == ["mail", "sale", "stock"]
    with pytest.raises(labqueue.PayloadError, match="ids"):
        labqueue.enqueue_together([(email, labqueue.Payload("tests.Record", []))])


def test_get_statuses_reads_many_in_one_call(conn: Any) -> None:
    q = labqueue.Queue("default", conn)
    ok, bad = q.enqueue(Record, tag="a"), q.enqueue(FailingJob, customer_id=1)
    worker(conn, "default").work(burst=True)
    found = labqueue.get_statuses(conn, [ok, bad, "0" * 32])
    assert found[ok].status is labqueue.JobStatus.COMPLETE
    assert found[bad].status is labqueue.JobStatus.FAILED
    assert found["0" * 32] is None and labqueue.get_statuses(conn, []) == {}
