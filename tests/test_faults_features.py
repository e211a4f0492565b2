"""Delayed jobs, retries, time limits, fork mode and poison payloads, on fakeredis and a real
redis-server (fork mode: real only). The process-level proofs are in the other test_faults_*."""

from __future__ import annotations

import base64
import json
import math
import os
import socket
import threading
import time
from datetime import datetime, timedelta
from typing import Any

import fakeredis
import pytest
import redis
from fault_jobs import (
    DONE,
    TRIES,
    Exit,
    Flaky,
    Leak,
    Mark,
    Picky,
    Raises,
    Segfault,
    Sleepy,
    Spin,
    SysExit,
    Unprintable,
)
from redis.backoff import NoBackoff
from redis.retry import Retry

import labqueue
from labqueue import timefmt
from labqueue.delayed import delayed_jobs, move_due
from labqueue.keys import Keys
from labqueue.stats import snapshot
from labqueue.worker.liveness import PRUNED_EXIT, View, verdict
from labqueue.worker.presence import WorkerRecord, pid_namespace

K = Keys()


def worker(conn: Any, **kw: Any) -> labqueue.Worker:
    kw.setdefault("poll_interval", 0.05)
    return labqueue.Worker("default", conn, **kw)


def failures(conn: Any) -> list[labqueue.Failure]:
    return labqueue.FailedStore(conn).all()


@labqueue.job("Faults::AlwaysFails")
class AlwaysFails(labqueue.Job):
    retry_limit = 2
    retry_backoff = (0,)

    def perform(self) -> None:
        self.connection.rpush(TRIES, self.job_id or "-")
        raise ConnectionError("the ERP is down")


@labqueue.job("Faults::PickyInAChild")
class PickyInAChild(labqueue.Job):
    """Retried for ConnectionError only, also when it raised in a --fork child."""

    retry_limit = 1
    retry_backoff = (0,)
    retry_on = (ConnectionError,)

    def perform(self) -> None:
        raise ConnectionRefusedError("the ERP refused")  # a subclass of ConnectionError


@labqueue.job("Faults::SecondTime")
class SecondTime(Flaky):
    retry_backoff = (0,)


# -- delayed jobs ---------------------------------------------------------------------------
def test_enqueue_in_writes_resque_schedulers_layout(conn: Any) -> None:
    q = labqueue.Queue("default", conn)
    job_id = q.enqueue_in(60, Mark, ms=1)
    [member] = conn.zrange(K.delayed_schedule, 0, -1)
    due = int(member)
    assert abs(due - (time.time() + 60)) < 5 and conn.zscore(K.delayed_schedule, member) == due
    [raw] = conn.lrange(f"{K.delayed_prefix}{member}", 0, -1)
    # exactly resque-scheduler's item (class, args, queue; Ruby's compact JSON), indexed as
    # resque-scheduler indexes it, so Ruby's remove_delayed finds it
    assert raw == '{"class":"Faults::Mark","args":[{"ms":1}],"queue":"default"}'
    assert conn.smembers(K.timestamps(raw)) == {f"delayed:{member}"}
    assert labqueue.get_status(conn, job_id).status is labqueue.JobStatus.WAITING
    assert q.length == 0 and snapshot(conn).delayed == 1
    assert worker(conn).work(burst=True) == 0  # not due: nothing runs
    [listed] = delayed_jobs(conn)  # the id and exact time, kept beside the item
    assert listed.queue == "default" and listed.payload and listed.payload.id == job_id
    assert listed.payload.args == [{"ms": 1}] and math.floor(listed.due) == due
    moved = move_due(conn, K, now=listed.due)[0]
    [payload] = [json.loads(r) for r in conn.lrange(K.queue("default"), 0, -1)]
    assert moved == 1 and payload["id"] == job_id and payload["scheduled_for"] == listed.due
    assert payload["class"] == "Faults::Mark" and payload["queue"] == "default"
    assert conn.keys("resque:timestamps:*") == [] and conn.keys(K.scheduled_prefix + "*") == []


def test_a_job_is_not_moved_before_its_exact_time(conn: Any) -> None:
    at = math.floor(time.time()) + 3.7
    labqueue.Queue("default", conn).enqueue_at(at, Mark)
    assert move_due(conn, K, now=at - 0.05)[0] == 0
    moved, soonest = move_due(conn, K, now=at - 0.01)
    assert moved == 0 and soonest == pytest.approx(at, abs=1e-3)
    assert move_due(conn, K, now=at)[0] == 1
    assert conn.llen(K.queue("default")) == 1 and conn.zcard(K.delayed_schedule) == 0
    assert conn.keys(K.delayed_prefix + "*") == []


def test_a_resque_scheduler_job_moves_at_its_second(conn: Any) -> None:
    second = math.floor(time.time()) + 10
    ruby = json.dumps({"class": "Faults::Mark", "args": [{"ms": 0}], "queue": "erp"})
    conn.rpush(K.delayed(second), ruby)
    conn.zadd(K.delayed_schedule, {str(second): second})
    assert move_due(conn, K, now=second - 0.5)[0] == 0
    assert move_due(conn, K, now=second)[0] == 1
    assert conn.lrange(K.queue("erp"), 0, -1) == [ruby] and "erp" in conn.smembers(K.queues)


def test_a_delayed_job_without_a_queue_goes_to_the_failed_store(conn: Any) -> None:
    second = math.floor(time.time()) - 5
    for raw in ('{"class": "Faults::Mark", "args": []}', "not json"):
        conn.rpush(K.delayed(second), raw)
    conn.zadd(K.delayed_schedule, {str(second): second})
    assert move_due(conn, K)[0] == 0
    records = failures(conn)
    assert [r.payload for r in records] == ['{"class": "Faults::Mark", "args": []}', "not json"]
    assert "queue" in records[0].error and conn.zcard(K.delayed_schedule) == 0


def test_due_jobs_move_exactly_once_with_many_movers(real: redis.Redis) -> None:
    q = labqueue.Queue("default", real)
    past = time.time() - 2
    ids = {q.enqueue_at(past - i % 3, Mark) for i in range(3000)}
    later = q.enqueue_in(3600, Mark)
    barrier = threading.Barrier(4)

    def mover() -> None:
        client = redis.Redis.from_url(labqueue.connection_url(real) or "", decode_responses=True)
        barrier.wait()
        while move_due(client, K)[0]:
            pass

    threads = [threading.Thread(target=mover) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    moved = [json.loads(r)["id"] for r in real.lrange(K.queue("default"), 0, -1)]
    assert len(moved) == 3000 and set(moved) == ids
    assert [d.payload.id for d in delayed_jobs(real) if d.payload] == [later]


def test_bad_schedule_arguments_fail_clearly(conn: Any) -> None:
    q = labqueue.Queue("default", conn)
    for call in (
        lambda: q.enqueue_in(-1, Mark),
        lambda: q.enqueue_in(float("nan"), Mark),
        lambda: q.enqueue_in("5", Mark),  # type: ignore[arg-type]
        lambda: q.enqueue_at("tomorrow", Mark),  # type: ignore[arg-type]
        lambda: q.enqueue_at(True, Mark),
        lambda: q.enqueue_at(float("inf"), Mark),
    ):
        with pytest.raises(labqueue.ConfigurationError, match=r"delay|time"):
            call()
    with pytest.raises(labqueue.NotAJob):
        q.enqueue_in(1, dict)  # type: ignore[arg-type]
    assert conn.keys("*") == []
    job_id = q.enqueue_at(datetime.now() + timedelta(minutes=5), Mark)
    [listed] = delayed_jobs(conn)
    assert listed.payload and listed.payload.id == job_id
    assert 290 < listed.due - time.time() < 310


# -- retries --------------------------------------------------------------------------------
def test_a_retried_job_keeps_its_id_and_then_succeeds(conn: Any) -> None:
    job_id = labqueue.Queue("default", conn).enqueue(SecondTime, succeed_on=2)
    assert worker(conn).work(burst=True) == 2
    tries = [line.split() for line in conn.lrange(TRIES, 0, -1)]
    assert [(t[0], t[1]) for t in tries] == [(job_id, "1"), (job_id, "2")]
    assert conn.lrange(DONE, 0, -1) == [job_id] and failures(conn) == []
    assert labqueue.get_status(conn, job_id).status is labqueue.JobStatus.COMPLETE
    # two runs ended, one of them failed: processed counts both, as Resque does
    assert conn.get(K.stat("failed")) == "1" and conn.get(K.stat("processed")) == "2"


def test_spent_retries_land_in_the_failed_store_once_with_attempts(conn: Any) -> None:
    q = labqueue.Queue("default", conn)
    job_id = q.enqueue(AlwaysFails)
    assert worker(conn).work(burst=True) == 3
    assert conn.lrange(TRIES, 0, -1) == [job_id] * 3
    [record] = failures(conn)
    assert record.job_id == job_id and record.extra["attempts"] == 3
    assert record.exception == "ConnectionError"
    assert labqueue.get_status(conn, job_id).status is labqueue.JobStatus.FAILED
    labqueue.FailedStore(conn).requeue(job_id)  # a requeue gets a fresh set of retries
    assert "attempts" not in q.peek()[0].extra
    assert worker(conn).work(burst=True) == 3 and len(failures(conn)) == 1


def test_a_retry_with_a_backoff_waits_in_the_schedule(conn: Any) -> None:
    job_id = labqueue.Queue("default", conn).enqueue(Flaky)  # backoff 1 s, then 2 s
    assert worker(conn, scheduler_interval=None).work(burst=True) == 1
    [waiting] = delayed_jobs(conn)
    assert waiting.payload and waiting.payload.id == job_id and waiting.attempts == 1
    assert waiting.queue == "default" and 0.5 < waiting.due - time.time() <= 1.0
    assert labqueue.get_status(conn, job_id).status is labqueue.JobStatus.WAITING
    assert failures(conn) == [] and snapshot(conn).delayed == 1
    assert "(retry 1)" in waiting.describe()


def test_only_the_listed_exceptions_are_retried(conn: Any) -> None:
    labqueue.Queue("default", conn).enqueue(Picky)
    assert worker(conn).work(burst=True) == 1
    [record] = failures(conn)
    assert record.exception == "ValueError" and record.extra["attempts"] == 1


# -- time limits, sys.exit, fork mode -------------------------------------------------------
def test_time_limits_stop_the_job_and_the_worker_goes_on(conn: Any) -> None:
    q = labqueue.Queue("default", conn)
    q.enqueue(Sleepy)
    q.enqueue(Spin)  # a busy loop that swallows Exception
    done = q.enqueue(Mark)
    started = time.monotonic()
    assert worker(conn).work(burst=True) == 3
    assert time.monotonic() - started < 15
    assert [r.exception for r in failures(conn)] == ["JobTimeout", "JobTimeout"]
    assert "0.5 s" in failures(conn)[0].error and conn.lrange(DONE, 0, -1) == [done]


def test_the_workers_default_time_limit_and_a_worker_in_a_thread(conn: Any) -> None:
    q = labqueue.Queue("default", conn)
    q.enqueue(Spin)
    w = worker(conn, job_timeout=0.3)
    t = threading.Thread(target=w.work, kwargs={"burst": True})
    t.start()
    t.join(20)
    assert not t.is_alive() and [r.exception for r in failures(conn)] == ["JobTimeout"]
    with pytest.raises(labqueue.ConfigurationError, match="time limit"):
        worker(conn, job_timeout=0)
    for bad in ({"scheduler_interval": -1}, {"poll_interval": 0}, {"heartbeat_interval": "5"}):
        with pytest.raises(labqueue.ConfigurationError, match="interval"):
            worker(conn, **bad)


def test_sys_exit_and_odd_exceptions_fail_the_job_only(conn: Any) -> None:
    q = labqueue.Queue("default", conn)
    q.enqueue(SysExit)
    q.enqueue(Unprintable)
    done = q.enqueue(Mark)
    assert worker(conn).work(burst=True) == 3
    first, second = failures(conn)
    assert first.exception == "JobCrashed" and "SystemExit(4)" in first.error
    assert second.exception == "_Unprintable" and "unprintable" in second.error
    assert conn.lrange(DONE, 0, -1) == [done]


def test_fork_mode_contains_crashes_leaks_and_time_limits(real: redis.Redis) -> None:
    q = labqueue.Queue("default", real)
    for cls in (Exit, Segfault, SysExit, Raises, Leak, Leak, Leak, Sleepy, PickyInAChild):
        q.enqueue(cls)
    done = q.enqueue(Mark)
    w = worker(real, fork=True)
    assert w.work(burst=True) == 11  # PickyInAChild runs twice: retried once
    got = [(r.exception, r.error) for r in failures(real)]
    assert got[0] == ("JobCrashed", "the job's process exited with code 3 before it finished")
    assert got[1] == ("JobCrashed", "the job's process was killed by SIGSEGV before it finished")
    assert got[2] == ("SystemExit", "4") and got[3] == ("KeyError", "'order 42'")
    assert got[4][0] == "JobTimeout" and len(got) == 6
    assert got[5] == ("ConnectionRefusedError", "the ERP refused")
    assert failures(real)[5].extra["attempts"] == 2
    assert any("perform" in line for line in failures(real)[3].backtrace)
    assert real.lrange("labqueue-test:faults:leak", 0, -1) == ["1", "1", "1"]  # no build-up
    assert real.lrange(DONE, 0, -1) == [done] and w.processed == 11 and w.failed == 7


def test_fork_mode_needs_a_redis_server() -> None:
    fake = fakeredis.FakeRedis(decode_responses=True)
    with pytest.raises(labqueue.ConfigurationError, match="redis-server"):
        labqueue.Worker("default", fake, fork=True)


# -- poison payloads ------------------------------------------------------------------------
def test_payloads_that_are_not_utf8_fail_with_their_bytes_kept(conn: Any) -> None:
    poison = [b"\xff\xfe not text", b'{"class": "Faults::Mark", "args": [{"ms": "\xe9"}]}']
    for raw in poison:
        conn.rpush(K.queue("default"), raw)
    done = labqueue.Queue("default", conn).enqueue(Mark)
    w = worker(conn)
    assert w.work(burst=True) == 3 and w.failed == 2
    records = failures(conn)
    assert [base64.b64decode(r.extra["payload_base64"]) for r in records] == poison
    assert records[0].exception == "PayloadError" and "UTF-8" in records[0].error
    assert records[0].payload == "\\xff\\xfe not text" and records[0].queue == "default"
    assert conn.lrange(DONE, 0, -1) == [done] and conn.get(K.stat("failed")) == "2"
    assert conn.keys(K.inprogress("*")) == [] and conn.smembers(K.workers) == set()


def test_odd_json_payloads_fail_cleanly(conn: Any) -> None:
    odd = [
        "[" * 100_000,  # deeper than any JSON parser goes
        '{"class": "Faults::Mark", "args": [{"ms": "\\ud800"}]}',  # a lone surrogate
        '{"class": "Faults::Mark", "args": [{"ms": NaN}], "id": "a"}',
        '{"class": ["Faults::Mark"], "args": []}',
        '{"class": "Faults::Mark", "args": {"ms": 1}}',
        '{"class": "os.system", "args": ["touch /tmp/labqueue-pwned"]}',
        '{"class": "Faults::Mark", "args": [], "pad": "' + "x" * (1024 * 1024) + '"}',
        "null",
        "",
    ]
    for raw in odd:
        conn.rpush(K.queue("default"), raw)
    w = worker(conn)
    assert w.work(burst=True) == len(odd) and w.failed == len(odd)
    records = failures(conn)
    assert len(records) == len(odd) and not os.path.exists("/tmp/labqueue-pwned")
    assert records[0].payload_json() == odd[0]  # not JSON here: kept as text
    assert records[1].payload["args"] == [{"ms": "\ud800"}]
    assert records[2].payload == odd[2]  # NaN is not JSON for other readers: kept as text
    assert "not registered" in records[5].error and "over the" in records[6].error


def test_the_pruner_never_takes_a_live_local_workers_job() -> None:
    host, now, beat = socket.gethostname(), time.time(), timefmt.heartbeat()
    me, gone = f"{host}:{os.getpid()}:default", f"{host}:999999999:default"
    fresh = WorkerRecord(pid_namespace(), "t", now, 5.0)

    def judged(wid: str, registered: set[str], **seen: Any) -> str | None:
        return verdict(wid, View(now, host, registered, **seen), 60.0)

    # holding a job, registered a moment after the pruner looked: its record, or (a labqueue
    # from before records) its heartbeat, says it lives
    assert judged(me, set(), holders={me}, records={me: fresh}) is None
    assert judged(me, set(), holders={me}, beats={me: beat}) is None
    assert judged(me, {me}) is None  # registered, no heartbeat, its process runs
    assert judged(me, set(), holders={me}) == "labqueue"  # neither registered nor beating
    assert judged(gone, {gone}, records={gone: fresh}) == "labqueue"  # its process is gone
    old = "2020-01-01T00:00:00+00:00"
    assert judged("far:1:default", {"far:1:default"}, beats={"far:1:default": old}) == PRUNED_EXIT
    stale = WorkerRecord("elsewhere", "t", now - 61, 5.0)
    assert judged("far:1:default", {"far:1:default"}, records={"far:1:default": stale})


def test_the_workers_own_commands_are_never_resent(redis_url: str) -> None:
    """redis-py re-sends a command after a dropped connection; a re-sent finish-and-fetch
    would run twice and drop the job the first run fetched. The worker opts out."""
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    client = redis.Redis(port=port, decode_responses=True, retry=Retry(NoBackoff(), 10))
    w = labqueue.Worker("default", client)
    conn = w._redis.connection_pool.get_connection()
    try:
        retry = conn.retry  # get_retries() from redis-py 6 on; _retries before
        assert (retry.get_retries() if hasattr(retry, "get_retries") else retry._retries) == 0
    finally:
        w._redis.connection_pool.release(conn)
    assert w.connection is client  # jobs keep the client they were given


# -- the command line -----------------------------------------------------------------------
def test_cli_schedules_and_lists_delayed_jobs(run: Any, real: redis.Redis) -> None:
    later = run("enqueue", "Faults::Mark", "--in", "120", "--args", '{"ms": 1}')
    assert later.exit_code == 0, later.output
    job_id = later.output.strip()
    at = run("enqueue", "Faults::Mark", "--at", "2099-01-01T09:00:00+00:00", "-q", "erp")
    listing = run("delayed").output.splitlines()
    assert len(listing) == 2 and job_id in listing[0] and "default" in listing[0]
    assert at.output.strip() in listing[1] and "erp" in listing[1]
    [first, _] = json.loads(run("delayed", "--json").output)
    assert first["id"] == job_id and first["attempts"] == 0 and first["args"] == [{"ms": 1}]
    assert json.loads(run("stats", "--json").output)["delayed"] == 2
    assert "delayed 2" in run("stats").output


@pytest.mark.parametrize(
    "args",
    [
        ["enqueue", "Faults::Mark", "--queue", ""],
        ["enqueue", "Faults::Mark", "--args", "{not json"],
        ["enqueue", "Faults::Mark", "--args", "3"],
        ["enqueue", "Faults::Mark", "--in", "5", "--at", "2099-01-01"],
        ["enqueue", "Faults::Mark", "--in", "-5"],
        ["enqueue", "Faults::Mark", "--at", "next tuesday"],
        ["enqueue", ""],
        ["worker", "--queues", "a,,b", "--burst"],
        ["worker", "--timeout", "0", "--burst"],
        ["worker", "--poll-interval", "-1", "--burst"],
    ],
)
def test_cli_rejects_bad_arguments_in_one_line(run: Any, args: list[str]) -> None:
    result = run(*args)
    assert result.exit_code in (1, 2)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output


def test_failed_list_shows_the_attempts(run: Any, real: redis.Redis) -> None:
    job_id = labqueue.Queue("default", real).enqueue(AlwaysFails)
    worker(real).work(burst=True)
    listing = run("failed", "list").output
    assert job_id in listing and "after 3 attempts" in listing and "ConnectionError" in listing


# -- dead workers and the scheduler command ------------------------------------------------
def test_a_live_worker_releases_a_stale_worker_while_it_runs(conn: Any) -> None:
    """Not only at start: at its heartbeat, a worker frees jobs held by workers gone quiet."""
    from labqueue.worker.reliable import ReliableFetch

    w = worker(conn, heartbeat_interval=0.2)
    t = threading.Thread(target=w.work)
    t.start()
    try:
        wait = time.monotonic() + 10
        while not conn.smembers(K.workers) and time.monotonic() < wait:
            time.sleep(0.02)
        ghost = "far-host:4242:default"
        conn.sadd(K.workers, ghost)
        conn.hset(K.heartbeat, ghost, "2020-01-01T00:00:00+00:00")
        labqueue.Queue("other", conn).enqueue(Mark)
        assert ReliableFetch.parse(ReliableFetch(conn, K).fetch(ghost, ["other"], time.time(), "x"))
        while conn.exists(K.inprogress(ghost)) and time.monotonic() < wait:
            time.sleep(0.05)
    finally:
        w.stop()
        t.join(10)
    assert not conn.exists(K.inprogress(ghost)) and not conn.sismember(K.workers, ghost)
    assert conn.llen(K.queue("other")) == 1  # back at the head of its queue, waiting


def test_the_scheduler_command_moves_due_jobs_until_stopped(real: redis.Redis) -> None:
    from labqueue.delayed import run_scheduler

    q = labqueue.Queue("default", real)
    q.enqueue_in(0.3, Mark)
    q.enqueue_in(3600, Mark)
    stop = threading.Event()
    threading.Timer(1.5, stop.set).start()
    assert run_scheduler(real, stop=stop) == 1
    assert q.length == 1 and snapshot(real).delayed == 1


# -- a reply lost to an outage --------------------------------------------------------------
@pytest.mark.parametrize("lost", ["after the step ran", "before it reached Redis"])
def test_a_step_lost_to_an_outage_is_settled_from_the_in_progress_hash(
    conn: Any, lost: str
) -> None:
    """The connection drops around a finish-and-fetch: whether Redis ran it or not, each job
    runs exactly once and is counted once (the worker reads its in-progress hash to know)."""
    q = labqueue.Queue("default", conn)
    ids = [q.enqueue(Mark) for _ in range(5)]
    w = worker(conn)
    step, calls = w._finish_and_fetch, {"n": 0}

    def flaky(done: Any, fetch: bool = True) -> Any:
        calls["n"] += 1
        if calls["n"] in (2, 4):  # finishing job 1 (fetching 2), and finishing job 2
            if lost == "after the step ran":
                step(done, fetch)
            raise redis.ConnectionError("Connection reset by peer")
        return step(done, fetch)

    w._finish_and_fetch = flaky  # type: ignore[method-assign]
    assert w.work(burst=True) == 5
    assert conn.lrange(DONE, 0, -1) == ids  # each once, in order
    assert conn.get(K.stat("processed")) == "5" and failures(conn) == []
    assert all(labqueue.get_status(conn, i).status is labqueue.JobStatus.COMPLETE for i in ids)
    assert w._outage.count == 2 and conn.keys(K.inprogress("*")) == []
