"""Delayed and retry timing, with a real worker process: a delayed job is not run early and
runs within a second of its time; a failing job is retried on its schedule (1 s, then 2 s)
and then lands in the failed store once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from fault_jobs import RAN_AT, TRIES, Flaky, When
from fault_tools import K, leftovers, workers
from waiting import wait_for

import labqueue

ARGS = ("--queues", "default", "--import", "fault_jobs")


@pytest.mark.slow
def test_delayed_jobs_run_on_time_never_early(
    real: redis.Redis, worker_env: dict[str, str], tmp_path: Path
) -> None:
    q = labqueue.Queue("default", real)
    with workers(worker_env, tmp_path / "logs", *ARGS) as group:
        group.start()
        wait_for(lambda: real.scard(K.workers), what="the worker to start")
        base = time.time()
        due = {q.enqueue_at(base + delay, When): base + delay for delay in (0.7, 1.3, 1.9, 2.6)}
        due[q.enqueue_in(1.5, When)] = base + 1.5
        wait_for(lambda: real.llen(RAN_AT) == len(due), timeout=20, what="the delayed jobs")
        time.sleep(0.3)
        assert real.llen(RAN_AT) == len(due)  # each ran once
    late = {}
    for line in real.lrange(RAN_AT, 0, -1):
        job_id, ran = line.split()
        late[job_id] = float(ran) - due[job_id]
    print("\ndelayed: ran late by " + ", ".join(f"{s:.3f}" for s in sorted(late.values())) + " s")
    assert set(late) == set(due)
    assert all(0 <= s < 1.0 for s in late.values()), late
    assert leftovers(real, "default")["delayed"] == 0


@pytest.mark.slow
def test_a_failing_job_is_retried_on_schedule_then_failed_once(
    real: redis.Redis, worker_env: dict[str, str], tmp_path: Path
) -> None:
    job_id = labqueue.Queue("default", real).enqueue(Flaky)  # retries after 1 s, then 2 s
    with workers(worker_env, tmp_path / "logs", *ARGS) as group:
        group.start()
        wait_for(lambda: real.llen(K.failed), timeout=20, what="the job to fail for good")
        time.sleep(2.5)  # longer than the last backoff: no further run comes
    runs = [line.split() for line in real.lrange(TRIES, 0, -1)]
    assert [(r[0], r[1]) for r in runs] == [(job_id, "1"), (job_id, "2"), (job_id, "3")]
    at = [float(r[2]) for r in runs]
    gaps = [at[1] - at[0], at[2] - at[1]]
    print(f"\nretries: gaps {gaps[0]:.3f} s and {gaps[1]:.3f} s (backoff 1 s, 2 s)")
    assert 1.0 <= gaps[0] < 2.0 and 2.0 <= gaps[1] < 3.0, gaps
    [record] = labqueue.FailedStore(real).all()
    assert record.job_id == job_id and record.extra["attempts"] == 3
    assert record.exception == "ConnectionError" and "run 3" in record.error
    assert labqueue.get_status(real, job_id).status is labqueue.JobStatus.FAILED
    assert leftovers(real, "default") == {"queued": 0, "in progress": 0, "failed": 1, "delayed": 0}
