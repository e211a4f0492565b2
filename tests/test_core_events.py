"""The deferred side, measured: job events (one row per job a worker ran) and the oldest
waiting job's age per queue, on fakeredis and on a real redis-server."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from jobs_for_tests import FailingJob, Record

import labqueue
from labqueue.events import JobEvent, read_job_events
from labqueue.keys import Keys
from labqueue.procs import worker_command
from labqueue.stats import oldest_ages, queue_time_of

K = Keys()


@labqueue.job("tests.events.Retried")
class Retried(labqueue.Job):
    """Fails once with a retry left: its row says ``retry``."""

    retry_limit = 1
    retry_backoff = (60,)
    retry_on = (ValueError,)

    def perform(self) -> None:
        raise ValueError("not yet")


def run_burst(conn: Any, queues: str, **kw: Any) -> labqueue.Worker:
    w = labqueue.Worker(queues, conn, poll_interval=0.05, **kw)
    w.work(burst=True)
    return w


# -- job events ------------------------------------------------------------------------------
def test_every_job_run_has_a_row_with_enqueue_start_finish_and_outcome(
    conn: Any, tmp_path: Path
) -> None:
    q = labqueue.Queue("events", conn)
    before = time.time()
    ids = [q.enqueue(Record, tag=f"t{i}", order_id=i) for i in range(20)]
    failed_id = q.enqueue(FailingJob, customer_id=7)
    retried_id = q.enqueue(Retried)
    w = run_burst(conn, "events", job_events=tmp_path / "ev")
    events = read_job_events(tmp_path / "ev")
    by_id = {e.id: e for e in events}
    assert len(events) == 22 and set(by_id) == {*ids, failed_id, retried_id}
    for e in events:
        assert e.queue == "events" and e.worker == w.id
        assert e.enqueued is not None and before - 1 <= e.enqueued <= e.started <= e.finished
        assert e.finished <= time.time()
    assert by_id[ids[1]].args == [{"tag": "t1", "order_id": 1}]
    assert by_id[ids[0]].job_class == "tests.Record" and by_id[ids[0]].outcome == "done"
    assert by_id[failed_id].outcome == "failed" and by_id[retried_id].outcome == "retry"
    assert [e.started for e in events] == sorted(e.started for e in events)
    (only,) = list((tmp_path / "ev").glob("jobs-*.jsonl"))
    assert only.name.endswith(f"-{os.getpid()}.jsonl")  # this process's own file


def test_off_by_default_and_the_worker_runs_its_own_perform(conn: Any, tmp_path: Path) -> None:
    labqueue.Queue("events", conn).enqueue(Record, tag="x")
    w = run_burst(conn, "events")
    assert "_perform" not in vars(w)  # no wrapper: the hot path is the plain method
    assert w.processed == 1 and not list(tmp_path.iterdir())


def test_ruby_payloads_and_garbage_get_rows_too(conn: Any, tmp_path: Path) -> None:
    conn.rpush(K.queue("events"), json.dumps({"class": "tests.Record", "args": ["ruby"]}))
    conn.rpush(K.queue("events"), "not json at all")
    run_burst(conn, "events", job_events=tmp_path)
    ruby, garbage = read_job_events(tmp_path)
    assert (ruby.id, ruby.enqueued, ruby.outcome, ruby.args) == (None, None, "done", ["ruby"])
    assert (garbage.job_class, garbage.outcome) == (None, "failed")


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    good = JobEvent("a", "C", "q", [], 1.0, 2.0, 3.0, "done", "h:1:q")
    (tmp_path / "jobs-h-1.jsonl").write_text(good.to_json() + "\n" + good.to_json()[:20])
    assert read_job_events(tmp_path) == [good]


def test_the_worker_command_takes_job_events_from_the_option_or_the_environment(
    real: Any, worker_env: dict[str, str], tmp_path: Path
) -> None:
    q = labqueue.Queue("events", real)
    ids = [q.enqueue(Record, tag=i) for i in range(5)]
    base = ["--queues", "events", "--burst", "--import", "jobs_for_tests"]
    argv = worker_command(*base, job_events=str(tmp_path / "opt"))
    subprocess.run(argv, env=worker_env, check=True, timeout=60, capture_output=True)
    assert {e.id for e in read_job_events(tmp_path / "opt")} == set(ids)
    more = [q.enqueue(Record, tag=i) for i in range(3)]
    env = {**worker_env, "LABQUEUE_JOB_EVENTS": str(tmp_path / "env")}
    subprocess.run(worker_command(*base), env=env, check=True, timeout=60, capture_output=True)
    assert {e.id for e in read_job_events(tmp_path / "env")} == set(more)


# -- the oldest waiting job's age ------------------------------------------------------------
def payload(queue_time: Any) -> str:
    return json.dumps({"class": "tests.Record", "args": [], "id": "x", "queue_time": queue_time})


def test_oldest_age_is_the_head_of_each_queue_on_redis_time(conn: Any) -> None:
    now = time.time()
    conn.rpush(K.queue("old"), payload(now - 30), payload(now - 5))
    conn.rpush(K.queue("new"), payload(now - 2))
    conn.rpush(K.queue("ruby"), json.dumps({"class": "X", "args": []}), payload(now - 99))
    conn.rpush(K.queue("junk"), b"\xff\xfe not json", payload(now - 99))
    conn.set(K.queue("string"), "not a list")
    names = ["old", "new", "empty", "ruby", "junk", "string"]
    ages = oldest_ages(conn, names)
    assert list(ages) == names
    assert 30 <= ages["old"] < 32 and 2 <= ages["new"] < 4  # type: ignore[operator]
    assert ages["empty"] == 0.0
    assert ages["ruby"] is None and ages["junk"] is None and ages["string"] is None
    assert oldest_ages(conn, []) == {}


def test_a_queue_time_no_clock_could_write_is_an_unknown_age(conn: Any) -> None:
    now = time.time()
    conn.rpush(K.queue("past"), payload(-1e30))
    conn.rpush(K.queue("zero"), payload(0))
    conn.rpush(K.queue("future"), payload(now + 1e9))
    conn.rpush(K.queue("fast"), payload(now + 2))  # a producer's clock a little fast
    ages = oldest_ages(conn, ["past", "zero", "future", "fast"])
    assert ages == {"past": None, "zero": None, "future": None, "fast": 0.0}


def count_pipelines(conn: Any) -> list[int]:
    """From now on, each pipeline ``conn`` sends adds its number of commands to the list."""
    calls: list[int] = []
    real_pipeline = conn.pipeline

    def counting(*a: Any, **kw: Any) -> Any:
        pipe = real_pipeline(*a, **kw)
        real_execute = pipe.execute

        def execute(*ea: Any, **ekw: Any) -> Any:
            calls.append(len(pipe.command_stack))
            return real_execute(*ea, **ekw)

        pipe.execute = execute
        return pipe

    conn.pipeline = counting
    return calls


def test_oldest_age_is_one_round_trip_for_any_number_of_queues(conn: Any) -> None:
    calls = count_pipelines(conn)
    for i in range(50):
        conn.rpush(K.queue(f"q{i}"), payload(time.time()))
    oldest_ages(conn, [f"q{i}" for i in range(50)])
    assert calls == [52]  # TIME, 50 LINDEX and the limiters' parked heads, sent together


def test_a_future_queue_time_counts_as_zero_and_a_namespace_is_honoured(conn: Any) -> None:
    conn.rpush(Keys("other").queue("q"), payload(time.time() + 3600))
    assert oldest_ages(conn, ["q"], namespace="other") == {"q": 0.0}
    assert oldest_ages(conn, ["q"]) == {"q": 0.0}  # resque:queue:q is empty


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (payload(1.5), 1.5),
        (payload(2), 2.0),
        (payload(True), None),
        (payload("1700000000"), None),
        (payload(None), None),
        ('{"queue_time": 1e999}', None),
        ('{"queue_time": NaN}', None),
        ('{"queue_time": ' + "9" * 400 + "}", None),
        ("[1, 2]", None),
        (b"\xc3\x28", None),
        ("", None),
    ],
)
def test_queue_time_of_takes_only_a_finite_number(raw: Any, expected: float | None) -> None:
    assert queue_time_of(raw) == expected


def test_stats_shows_the_oldest_waiting_job(run: Any, real: Any) -> None:
    real.rpush(K.queue("slow"), payload(time.time() - 42))
    real.sadd(K.queues, "slow")
    real.rpush(K.queue("ruby"), json.dumps({"class": "X", "args": []}))
    real.sadd(K.queues, "ruby", "empty")
    data = json.loads(run("stats", "--json").output)
    assert 42 <= data["oldest_age"]["slow"] < 44 and data["queues"]["slow"] == 1
    assert data["oldest_age"]["ruby"] is None and data["oldest_age"]["empty"] == 0
    lines = {ln.split()[0]: ln for ln in run("stats").output.splitlines() if ln.startswith("  ")}
    assert "oldest waiting 4" in lines["slow"] and "unknown" in lines["ruby"]
    assert "oldest" not in lines["empty"]
