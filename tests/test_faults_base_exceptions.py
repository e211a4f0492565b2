"""Issue 15 item 4: a job raising a BaseException that is not an Exception
(``asyncio.CancelledError``, ``GeneratorExit``, a class of the job's own) fails into the
failed store like any other exception: inline, under a time limit (the SIGALRM timer, and
the watchdog of a worker in a thread), with ``--fork``, and in a worker process. SystemExit
and KeyboardInterrupt keep their documented meaning: they fail the job, never the worker."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
import redis
from fault_tools import K
from hard_jobs import BASE_EXCEPTION_JOBS, DONE, Cancelled, Done, Interrupted

import labqueue
from labqueue.procs import worker_command


def run_all(conn: Any, in_thread: bool = False, **kw: Any) -> tuple[labqueue.Worker, int]:
    w = labqueue.Worker("default", conn, poll_interval=0.05, **kw)
    if not in_thread:
        return w, w.work(burst=True)
    ran: list[int] = []
    t = threading.Thread(target=lambda: ran.append(w.work(burst=True)))
    t.start()
    t.join(30)
    assert not t.is_alive() and ran, "the worker in a thread did not return"
    return w, ran[0]


def enqueue_the_lot(conn: Any) -> tuple[list[str], str]:
    q = labqueue.Queue("default", conn)
    ids = [q.enqueue(cls) for cls in BASE_EXCEPTION_JOBS]
    return ids, q.enqueue(Done)


def assert_failed_alone(conn: Any, ids: list[str], done: str, names: list[str]) -> None:
    records = labqueue.FailedStore(conn).all()
    assert [r.exception for r in records] == names
    assert [r.job_id for r in records] == ids and all(r.backtrace for r in records)
    assert conn.lrange(DONE, 0, -1) == [done]  # the job behind them ran
    assert conn.llen(K.queue("default")) == 0 and conn.keys(K.inprogress("*")) == []
    states = labqueue.get_statuses(conn, ids)
    assert {s.status if s else None for s in states.values()} == {labqueue.JobStatus.FAILED}


@pytest.mark.parametrize(
    "how",
    [{}, {"job_timeout": 30.0}, {"job_timeout": 30.0, "in_thread": True}],
    ids=["inline", "time-limit", "time-limit-in-a-thread"],
)
def test_a_base_exception_fails_the_job_not_the_worker(conn: Any, how: dict[str, Any]) -> None:
    ids, done = enqueue_the_lot(conn)
    w, ran = run_all(conn, **how)
    # processed counts every finished job, failed ones too (Resque's rule, from main's fleet)
    assert ran == len(ids) + 1 and w.failed == len(ids) and w.processed == len(ids) + 1
    assert_failed_alone(conn, ids, done, list(BASE_EXCEPTION_JOBS.values()))


def test_a_base_exception_in_a_forked_job(real: redis.Redis) -> None:
    ids, done = enqueue_the_lot(real)
    w, ran = run_all(real, fork=True)
    assert ran == len(ids) + 1 and w.failed == len(ids)
    assert_failed_alone(real, ids, done, list(BASE_EXCEPTION_JOBS.values()))


def test_keyboard_interrupt_from_a_job_keeps_its_documented_meaning(conn: Any) -> None:
    """Raised by the job, it fails the job as JobCrashed (as SystemExit does): the worker's
    own Ctrl-C is a signal, handled by the worker, never an exception out of ``perform``."""
    q = labqueue.Queue("default", conn)
    job = q.enqueue(Interrupted)
    done = q.enqueue(Done)
    _, ran = run_all(conn)
    (record,) = labqueue.FailedStore(conn).all()
    assert ran == 2 and record.job_id == job and record.exception == "JobCrashed"
    assert "KeyboardInterrupt" in record.error and conn.lrange(DONE, 0, -1) == [done]


def test_a_worker_process_survives_a_cancelled_job(
    real: redis.Redis, worker_env: dict[str, str], tmp_path: Path
) -> None:
    """The poison pill of the issue: rc 1 and the job back at the head, forever. Now: rc 0."""
    q = labqueue.Queue("default", real)
    bad = q.enqueue(Cancelled)
    done = q.enqueue(Done)
    cmd = worker_command("--burst", "--queues", "default", "--import", "hard_jobs")
    proc = subprocess.run(cmd, env=worker_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert [r.job_id for r in labqueue.FailedStore(real).all()] == [bad]
    assert real.lrange(DONE, 0, -1) == [done] and real.llen(K.queue("default")) == 0
