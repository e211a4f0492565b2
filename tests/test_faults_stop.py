"""Graceful stop under load: SIGTERM every worker mid-run, start them again, and every job
runs exactly once (a TERM lets the current job finish; nothing is requeued or repeated).
Run with three plain workers, and with a supervisor (--concurrency 3) in --fork mode."""

from __future__ import annotations

import random
import signal
from pathlib import Path

import pytest
import redis
from fault_jobs import DONE, Mark
from fault_tools import K, leftovers, statuses, workers
from waiting import wait_for

import labqueue

JOBS = 600


@pytest.mark.slow
@pytest.mark.parametrize(
    "setup", [["three workers"], ["--concurrency", "3", "--fork"]], ids=["plain", "supervised-fork"]
)
def test_sigterm_under_load_then_restart_runs_each_job_once(
    real: redis.Redis, worker_env: dict[str, str], tmp_path: Path, setup: list[str]
) -> None:
    rng = random.Random(7)
    ids = labqueue.Queue("orders", real).enqueue_many(
        Mark, [{"ms": rng.randint(5, 20)} for _ in range(JOBS)]
    )
    args = ("--queues", "orders", "--import", "fault_jobs")
    plain = setup == ["three workers"]
    with workers(worker_env, tmp_path / "logs", *args) as group:
        for _ in range(3 if plain else 1):
            group.start(*([] if plain else setup))
        wait_for(lambda: real.llen(DONE) >= 100, what="100 jobs done")
        group.signal_all(signal.SIGTERM)
        assert group.wait_all(30) == [0] * len(group.procs), group.log_text()[-3000:]
        stopped_at = real.llen(DONE)
        assert stopped_at < JOBS, "the stop came too late to be mid-run"
        assert real.keys(K.inprogress("*")) == [] and real.smembers(K.workers) == set()
        assert real.llen(K.queue("orders")) + stopped_at == JOBS  # no job lost, none twice
        again = [group.start("--burst", *([] if plain else setup)) for _ in range(1)]
        assert [p.wait(60) for p in again] == [0], group.log_text()[-3000:]
    done = real.lrange(DONE, 0, -1)
    print(
        f"\ngraceful stop ({setup[-1]}): {stopped_at} of {JOBS} done at the stop, "
        f"{len(done) - len(set(done))} run twice, {len(set(ids) - set(done))} lost"
    )
    assert sorted(done) == sorted(ids)  # every job exactly once
    assert leftovers(real, "orders") == {"queued": 0, "in progress": 0, "failed": 0, "delayed": 0}
    assert statuses(real, ids) == {int(labqueue.JobStatus.COMPLETE): JOBS}
