"""Mixed fleets, the data both sides share: php-resque's status rules and prefix, Resque's
processed count, resque-scheduler's ``timestamps:`` index in both directions (issue 13).
On fakeredis and a real redis-server."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest
from resque_rules import delayed_push, remove_delayed_in_queue

import labqueue
from labqueue.delayed import delayed_jobs, move_due
from labqueue.delayed_index import remove_delayed, remove_delayed_id
from labqueue.keys import Keys
from labqueue.stats import snapshot

K = Keys()
JOB_ID = "0123456789abcdef0123456789abcdef"


@labqueue.job("Fleet::Returns")
class Returns(labqueue.Job):
    def perform(self) -> Any:
        if self.args.get("fail"):
            raise RuntimeError("no")
        return {"total": 42, "ok": True}


def php_payload(prefix: str, **args: Any) -> str:
    """What php-resque's ``Resque_Job::create`` pushes (keys in its order)."""
    return json.dumps(
        {"class": "Fleet::Returns", "args": [args], "id": JOB_ID, "prefix": prefix,
         "queue_time": 1764413115.25},
        separators=(",", ":"),
    )  # fmt: skip


def run(conn: Any) -> int:
    return labqueue.Worker("default", conn, poll_interval=0.05).work(burst=True)


# -- php-resque statuses -------------------------------------------------------------------
@pytest.mark.parametrize(
    "prefix, key", [("shop", f"job:shop_{JOB_ID}:status"), ("", None), ("0", None)]
)
def test_php_resque_prefix_and_status_rules(conn: Any, prefix: str, key: str | None) -> None:
    key = "resque:" + (key or f"job:{JOB_ID}:status")
    created = '{"status":1,"updated":1764413115,"started":1764413115,"result":null}'
    conn.set(key, created)  # Resque::enqueue(..., true, prefix): tracked
    conn.rpush(K.queue("default"), php_payload(prefix))
    assert run(conn) == 1
    done = json.loads(conn.get(key))
    assert list(done) == ["status", "updated", "started", "result"]
    assert done["status"] == 4 and done["started"] == 1764413115  # started: from creation
    assert done["result"] == {"total": 42, "ok": True} and 86000 < conn.ttl(key) <= 86400
    others = [k for k in conn.keys("resque:job:*") if k != key]
    assert others == []  # not job:<id>:status beside job:shop_<id>:status


def test_an_untracked_php_job_gets_no_status_and_a_failed_one_keeps_started(conn: Any) -> None:
    conn.rpush(K.queue("default"), php_payload("", fail=False))  # tracking off: no status
    assert run(conn) == 1 and conn.keys("resque:job:*") == []
    key = K.status(JOB_ID, "shop")
    conn.set(key, '{"status":1,"updated":5,"started":5,"result":null}')
    conn.rpush(K.queue("default"), php_payload("shop", fail=True))
    assert run(conn) == 1
    failed = json.loads(conn.get(key))
    assert failed["status"] == 3 and failed["started"] == 5 and failed["result"] is None


def test_labqueues_own_producers_still_get_a_status_for_every_job(conn: Any) -> None:
    job_id = labqueue.Queue("default", conn).enqueue(Returns)
    assert run(conn) == 1
    assert labqueue.get_status(conn, job_id).status is labqueue.JobStatus.COMPLETE
    assert "result" not in json.loads(conn.get(K.status(job_id)))


# -- processed, as Resque counts ----------------------------------------------------------
def test_processed_counts_failed_jobs_too(conn: Any) -> None:
    q = labqueue.Queue("default", conn)
    q.enqueue(Returns)
    q.enqueue(Returns, fail=True)
    conn.rpush(K.queue("default"), b"\xff not UTF-8")
    w = labqueue.Worker("default", conn, poll_interval=0.05)
    assert w.work(burst=True) == 3 and (w.processed, w.failed) == (3, 2)
    assert conn.get(K.stat("processed")) == "3" and conn.get(K.stat("failed")) == "2"
    snap = snapshot(conn)
    assert (snap.processed, snap.failed, snap.succeeded) == (3, 2, 1)
    assert snap.to_dict()["succeeded"] == 1


# -- resque-scheduler's index, both ways ----------------------------------------------------
def test_rubys_remove_delayed_cancels_a_labqueue_delayed_job(conn: Any) -> None:
    q = labqueue.Queue("email", conn)
    q.enqueue_in(60, "Shop::Remind", customer_id=42)
    kept = q.enqueue_in(60, "Shop::Remind", customer_id=43)
    # Ruby: Resque.remove_delayed_in_queue("Shop::Remind", "email", {"customer_id" => 42})
    assert remove_delayed_in_queue(conn, K, "Shop::Remind", "email", {"customer_id": 42}) == 1
    assert [d.payload.id for d in delayed_jobs(conn) if d.payload] == [kept]
    assert move_due(conn, K, now=time.time() + 61)[0] == 1  # the cancelled one never runs
    [moved] = [json.loads(r) for r in conn.lrange(K.queue("email"), 0, -1)]
    assert moved["id"] == kept and moved["args"] == [{"customer_id": 43}]
    assert conn.keys("resque:timestamps:*") == [] and conn.keys("resque:delayed:*") == []


def test_labqueue_moves_rubys_delayed_jobs_and_cleans_their_index(conn: Any) -> None:
    second = math.floor(time.time()) - 1
    item = delayed_push(conn, K, second, "Job::Work::TestJob", [{"to": "a@b.c"}], "email")
    assert move_due(conn, K)[0] == 1
    assert conn.lrange(K.queue("email"), 0, -1) == [item]
    assert not conn.exists(K.timestamps(item)) and conn.zcard(K.delayed_schedule) == 0


def test_labqueue_delayed_remove_cancels_rubys_and_phps_and_its_own(conn: Any) -> None:
    later = math.floor(time.time()) + 600
    delayed_push(conn, K, later, "Job::Work::TestJob", [1, "x"], "email")
    delayed_push(conn, K, later + 1, "Job::Work::TestJob", [1, "x"], "email")
    php = '{"class":"Job\\\\Work\\\\TestJob","args":[1,"x"],"queue":"email"}'  # no index
    conn.rpush(K.delayed(later + 2), php)
    conn.zadd(K.delayed_schedule, {str(later + 2): later + 2})
    mine = labqueue.Queue("email", conn).enqueue_in(600, "Job::Work::TestJob", "y")
    assert remove_delayed(conn, K, "Job::Work::TestJob", [1, "x"], "email") == 2
    assert remove_delayed(conn, K, "Job\\Work\\TestJob", [1, "x"], "email") == 1
    assert [d.payload.id for d in delayed_jobs(conn) if d.payload] == [mine]
    assert remove_delayed_id(conn, K, mine) == 1 and remove_delayed_id(conn, K, mine) == 0
    assert conn.keys("resque:*") == [K.status(mine)]  # nothing left behind but its status


def test_identical_items_keep_their_ids_and_exact_times(conn: Any) -> None:
    """Two copies of one item in one second: each moves at its own exact time, once."""
    second = math.floor(time.time()) + 5
    q = labqueue.Queue("email", conn)
    late = q.enqueue_at(second + 0.7, "Shop::Remind", 1)
    early = q.enqueue_at(second + 0.2, "Shop::Remind", 1)
    assert conn.llen(K.delayed(second)) == 2
    assert move_due(conn, K, now=second + 0.1)[0] == 0
    assert move_due(conn, K, now=second + 0.3)[0] == 1
    assert move_due(conn, K, now=second + 0.6)[0] == 0
    assert move_due(conn, K, now=second + 0.7)[0] == 1
    ids = [json.loads(r)["id"] for r in conn.lrange(K.queue("email"), 0, -1)]
    assert ids == [early, late] and conn.keys("resque:delayed:*") == []


# -- the command line -------------------------------------------------------------------
def test_cli_delayed_remove_by_class_and_args_or_by_id(run: Any, real: Any) -> None:
    later = math.floor(time.time()) + 600
    delayed_push(real, K, later, "Job::Work::TestJob", [1, "x"], "email")
    mine = labqueue.Queue("email", real).enqueue_in(600, "Shop::Remind", customer_id=7)
    gone = run("delayed", "remove", "Job::Work::TestJob", "--args", '[1, "x"]', "-q", "email")
    assert gone.exit_code == 0 and gone.output.strip() == "removed 1 delayed job"
    kept = run("delayed", "remove", "Shop::Remind", "--args", '{"customer_id": 8}', "-q", "email")
    assert kept.output.strip() == "removed 0 delayed jobs"
    assert run("delayed", "remove", "--id", mine).output.strip() == "removed 1 delayed job"
    assert run("delayed").output.strip() == "no delayed jobs"
    both = run("delayed", "remove", "X", "--id", mine)
    assert both.exit_code == 2 and len(both.output.strip().splitlines()) == 1


def test_cli_worker_refuses_a_taken_id_in_one_line(run: Any, real: Any) -> None:
    import os
    import socket

    from labqueue.worker.presence import WorkerRecord, pid_namespace

    wid = f"{socket.gethostname()}:{os.getpid()}:default"  # the id `labqueue worker` takes here
    live = WorkerRecord(pid_namespace(), "another", float(real.time()[0]), 5.0)
    real.hset(K.labqueue_workers, wid, live.to_json())
    real.sadd(K.workers, wid)
    result = run("worker", "--queues", "default", "--burst")
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and "is taken by a live labqueue" in lines[0]
    assert real.sismember(K.workers, wid)  # the other worker's registration is left alone
    assert "(0 succeeded)" in run("stats").output  # processed 0 (0 succeeded)
