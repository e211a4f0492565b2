"""Poison jobs: a job that kills its worker is failed after K crashes, not looped forever
(issue 12). RELEASE counts each death in the payload; the next worker to fetch a job at its
limit fails it as JobCrashed and goes on with the rest of the queue.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from fault_jobs import DONE, POISONED, Mark
from fault_tools import K, leftovers, workers
from waiting import wait_for

import labqueue
from labqueue.keys import WorkerId
from labqueue.worker.crashes import DEFAULT_CRASH_LIMIT
from labqueue.worker.reliable import ReliableFetch

DEAD = str(WorkerId.of("elsewhere", 4242, ["poison"]))  # a worker that "dies" holding a job


def crash(conn: Any, times: int, crashed: bool = True) -> str:
    """Fetch the head of queue poison as worker DEAD, then release it as if DEAD died
    (``crashed``) or gave it back: ``times`` times. Returns the payload as requeued."""
    fetcher, raw = ReliableFetch(conn, K), ""
    for _ in range(times):
        assert fetcher.fetch(DEAD, ["poison"], time.time(), "now")
        raw = fetcher.release(DEAD, time.time(), crashed=crashed) or ""
    return raw


@labqueue.job("Poison::Once")
class Once(labqueue.Job):
    """Records its run (a job that crashed workers before, and runs fine here)."""

    retry_limit = 5

    def perform(self) -> None:
        self.connection.rpush(DONE, self.job_id or "-")


@labqueue.job("Poison::Patient")
class Patient(Once):
    crash_limit = 5


def test_each_crash_is_counted_in_the_payload_and_nothing_else_changes(conn: Any) -> None:
    q = labqueue.Queue("poison", conn)
    job_id = q.enqueue(Once, order_id=7)
    original = conn.lindex(K.queue("poison"), 0)
    first = crash(conn, 1)
    assert first == '{"crashes":1,' + original[1:] and conn.lindex(K.queue("poison"), 0) == first
    assert crash(conn, 2) == '{"crashes":3,' + original[1:]
    assert labqueue.get_status(conn, job_id).status is labqueue.JobStatus.WAITING
    assert crash(conn, 1, crashed=False) == '{"crashes":3,' + original[1:]  # given back: no count
    assert json.loads(crash(conn, 1))["crashes"] == 4


@pytest.mark.parametrize(
    ("raw", "after"),
    [
        ('{"class":"Poison::Once","args":[1]}', '{"crashes":1,"class":"Poison::Once","args":[1]}'),
        (' { "class": "X", "args": [] }', '{"crashes":1, "class": "X", "args": [] }'),
        ("{}", '{"crashes":1}'),
        ('{"crashes":1}', '{"crashes":2}'),
        ("[1, 2]", "[1, 2]"),  # not a job (failed when fetched): nothing to count in
        ("not json {", "not json {"),
    ],
    ids=["ruby-no-id", "spaces", "empty", "counted-empty", "array", "not-json"],
)
def test_any_payload_is_counted_as_valid_json_or_left_alone(
    conn: Any, raw: str, after: str
) -> None:
    conn.rpush(K.queue("poison"), raw)
    assert crash(conn, 1) == after
    if after.startswith("{"):
        assert json.loads(after)["crashes"] >= 1


def test_a_job_at_its_limit_is_failed_not_run_and_the_queue_goes_on(conn: Any) -> None:
    q = labqueue.Queue("poison", conn)
    poison = q.enqueue(Once)
    crash(conn, DEFAULT_CRASH_LIMIT)  # crashed its worker 3 times: back at the head each time
    behind = [q.enqueue(Mark) for _ in range(5)]
    assert labqueue.Worker("poison", conn).work(burst=True) == 6
    [record] = labqueue.FailedStore(conn).all()
    assert record.job_id == poison and record.exception == "JobCrashed"
    assert "crashed its worker 3 times" in record.error
    assert conn.lrange(DONE, 0, -1) == behind  # it never ran; everything behind it did
    assert labqueue.get_status(conn, poison).status is labqueue.JobStatus.FAILED
    assert conn.zcard(K.delayed_schedule) == 0  # not retried, although its class has retries
    labqueue.FailedStore(conn).requeue(poison)  # a fresh count: it runs this time
    assert "crashes" not in q.peek()[0].extra  # type: ignore[union-attr]
    assert labqueue.Worker("poison", conn).work(burst=True) == 1
    assert conn.lrange(DONE, -1, -1) == [poison]


def test_the_limit_is_the_job_classs_else_the_workers(conn: Any) -> None:
    q = labqueue.Queue("poison", conn)
    patient = q.enqueue(Patient)
    crash(conn, 3)
    assert labqueue.Worker("poison", conn).work(burst=True) == 1
    assert conn.lrange(DONE, 0, -1) == [patient]  # its class allows 5
    once = q.enqueue(Once)
    crash(conn, 1)
    assert labqueue.Worker("poison", conn, crash_limit=1).work(burst=True) == 1
    [record] = labqueue.FailedStore(conn).all()
    assert record.job_id == once and "crashed its worker 1 time " in record.error
    q.enqueue(Once)
    crash(conn, 10)
    assert labqueue.Worker("poison", conn, crash_limit=None).work(burst=True) == 1
    assert conn.llen(DONE) == 2  # no cap: it runs
    with pytest.raises(labqueue.ConfigurationError, match="crash_limit"):
        labqueue.Worker("poison", conn, crash_limit=0)

    class Bad(labqueue.Job):
        crash_limit = 0

    with pytest.raises(labqueue.ConfigurationError, match="crash_limit"):
        labqueue.job("Poison::Bad")(Bad)


@pytest.mark.slow
def test_a_job_that_sigkills_its_worker_is_failed_after_k_crashes_and_the_rest_run(
    real: redis.Redis, worker_env: dict[str, str], tmp_path: Path
) -> None:
    """A real supervisor (``labqueue worker --concurrency 2``): each child that takes the
    poison job is SIGKILLed by it, the supervisor releases its job (counted) and starts
    another; after 3 crashes the next child fails it, and every job behind it runs."""
    q = labqueue.Queue("poison", real)
    poison = q.enqueue("Faults::Poison")
    behind = q.enqueue_many(Mark, [{"ms": 5} for _ in range(30)])
    started = time.monotonic()
    args = ("--queues", "poison", "--import", "fault_jobs", "--concurrency", "2")
    with workers(worker_env, tmp_path / "logs", *args) as group:
        group.start()
        wait_for(lambda: real.llen(K.failed) == 1 and real.llen(DONE) == len(behind),
                 timeout=60, what="the poison job to be failed and the rest to run")  # fmt: skip
        elapsed = time.monotonic() - started
        group.signal_all()
        codes = group.wait_all()
        log = group.log_text()
    runs = real.lrange(POISONED, 0, -1)
    killed = {line.split()[1] for line in runs}
    [record] = labqueue.FailedStore(real).all()
    print(
        f"\npoison: ran {len(runs)} times in {len(killed)} worker processes, failed after "
        f"{elapsed:.1f} s: {record.exception}: {record.error}"
    )
    assert len(runs) == DEFAULT_CRASH_LIMIT and len(killed) == DEFAULT_CRASH_LIMIT
    assert record.job_id == poison and record.exception == "JobCrashed"
    assert f"crashed its worker {DEFAULT_CRASH_LIMIT} times" in record.error
    assert sorted(real.lrange(DONE, 0, -1)) == sorted(behind)
    assert leftovers(real, "poison") == {"queued": 0, "in progress": 0, "failed": 1, "delayed": 0}
    assert codes == [0], log[-3000:]
