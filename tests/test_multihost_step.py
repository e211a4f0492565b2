"""STEP's late finish (issue 17): a worker released while cut off must not finish its job again.

On fakeredis and a real redis-server: worker W takes a job; a pruner judges W dead and
releases it (the job back at the head of its queue); another worker X runs it and finishes
it. Then W's finish, held by the partition, arrives: it must record nothing.
"""

from __future__ import annotations

import time
from typing import Any

import labqueue
from labqueue.keys import Keys
from labqueue.status import FINISHED_TTL, JobStatus, status_json
from labqueue.worker.reliable import ReliableFetch

K = Keys()
W, X = "host-c:2:multi", "host-a:2:multi"


def _take(conn: Any, worker: str) -> Any:
    return ReliableFetch.parse(ReliableFetch(conn, K).fetch(worker, ["multi"], time.time(), "T"))


def _finish(conn: Any, worker: str, job_id: str, failure: str = "", fetch: bool = False) -> Any:
    steps = ReliableFetch(conn, K).bind(worker, ["multi"], FINISHED_TTL)
    status = status_json(JobStatus.FAILED if failure else JobStatus.COMPLETE, time.time())
    return steps.step((job_id, status, failure), time.time(), "T", fetch)


def test_a_late_finish_of_a_job_taken_back_records_nothing(conn: Any) -> None:
    job_id = labqueue.Queue("multi", conn).enqueue("labqueue.testing.Tick")
    assert _take(conn, W).job_id == job_id
    assert ReliableFetch(conn, K).release(W, time.time())  # a pruner: W is dead
    assert _take(conn, X).job_id == job_id
    assert _finish(conn, X, job_id) == 1  # X finishes it
    failure = '{"exception": "RuntimeError", "error": "late"}'
    assert _finish(conn, W, job_id, failure) == 0  # W's held finish arrives: not ours
    assert labqueue.get_status(conn, job_id).status == JobStatus.COMPLETE
    assert conn.llen(K.failed) == 0 and conn.get(K.stat("failed")) is None
    assert int(conn.get(K.stat("processed"))) == 1


def test_a_late_finish_still_fetches_the_next_job(conn: Any) -> None:
    queue = labqueue.Queue("multi", conn)
    first = queue.enqueue("labqueue.testing.Tick")
    _take(conn, W)
    ReliableFetch(conn, K).release(W, time.time())
    conn.delete(K.queue("multi"))  # someone else took it meanwhile
    second = queue.enqueue("labqueue.testing.Tick")
    reply = ReliableFetch.parse(_finish(conn, W, first, fetch=True))
    assert reply is not None and reply.job_id == second
    assert conn.get(K.stat("processed")) is None
    assert ReliableFetch(conn, K).held(W).job_id == second  # type: ignore[union-attr]


def test_a_finish_of_a_job_still_held_counts_once(conn: Any) -> None:
    job_id = labqueue.Queue("multi", conn).enqueue("labqueue.testing.Tick")
    _take(conn, W)
    assert _finish(conn, W, job_id) == 1
    assert int(conn.get(K.stat("processed"))) == 1
    assert conn.exists(K.inprogress(W)) == 0
