"""Chaos: SIGKILL a random worker every few hundred ms while 2,000 jobs run; none is lost.

Each job records its id when done. A killer sends SIGKILL to a random one of 3 worker
processes every 0.15-0.5 s and starts a replacement at once, until every id has been
recorded. A killed worker's job waits in its in-progress hash until a live worker finds the
dead one (at its start, or at its next heartbeat) and puts the job back; a job killed after
recording its id but before finishing runs again, so duplicates are allowed, at most one per
kill. In the end nothing is queued, in progress, failed or stuck in "running".

The same with threads: 2 processes x 8 worker threads (``--threads 8``), one SIGKILLed every
0.2-0.5 s (one that has registered: a process still starting, on a busy machine, holds no
job to lose). A kill takes up to 8 jobs with it; each comes back (the dead process's 8 ids are
released by the next process to start, or by the live one's heartbeat), so duplicates are at
most the jobs in flight at the kills, measured right after each kill. Its jobs may meet
many kills (8 at a time), so their class lifts the poison rule's crash limit.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import redis
from fault_jobs import DONE, Mark, MarkManyLives
from fault_tools import K, leftovers, statuses, workers
from waiting import wait_for

import labqueue

JOBS = 2000
WORKERS = 3


@pytest.mark.slow
def test_sigkill_chaos_loses_no_job(
    real: redis.Redis, worker_env: dict[str, str], tmp_path: Path
) -> None:
    rng = random.Random(2026)
    ids = labqueue.Queue("chaos", real).enqueue_many(
        Mark, [{"ms": rng.choice((2, 4, 6, 8))} for _ in range(JOBS)]
    )
    wanted, kills, started = set(ids), 0, time.monotonic()
    args = ("--queues", "chaos", "--import", "fault_jobs")
    with workers(worker_env, tmp_path / "logs", *args) as group:
        live = [group.start() for _ in range(WORKERS)]
        while not wanted <= set(real.lrange(DONE, 0, -1)):
            assert time.monotonic() - started < 55, f"not all done after {kills} kills"
            time.sleep(rng.uniform(0.15, 0.5))
            victim = rng.randrange(WORKERS)
            live[victim].send_signal(signal.SIGKILL)
            live[victim].wait(10)
            kills += 1
            live[victim] = group.start()
        # The last victims' jobs: released by a live worker's next prune, then run (again).
        wait_for(
            lambda: not any(leftovers(real, "chaos").values()),
            timeout=30,
            what=f"queues and in-progress hashes to empty: {leftovers(real, 'chaos')}",
        )
        elapsed = time.monotonic() - started
        pids = {str(p.pid) for p in live}  # a worker still starting has no TERM handler yet
        wait_for(  # ...and no ghost: every killed worker has been pruned (Resque's phantoms)
            lambda: pids == {w.split(":")[1] for w in real.smembers(K.workers)},
            timeout=20,
            what="the live workers, and only they, to be registered",
        )
        group.signal_all(signal.SIGTERM)
        codes = [p.wait(30) for p in live]
        log = group.log_text()
    done = real.lrange(DONE, 0, -1)
    duplicates, lost = len(done) - len(set(done)), len(wanted - set(done))
    print(
        f"\nchaos: jobs {JOBS}, workers {WORKERS}, kills {kills}, duplicates {duplicates}, "
        f"lost {lost}, {elapsed:.1f} s, processes started {group.started}"
    )
    assert lost == 0 and set(done) == wanted
    assert duplicates <= kills
    assert leftovers(real, "chaos") == {"queued": 0, "in progress": 0, "failed": 0, "delayed": 0}
    assert statuses(real, ids) == {int(labqueue.JobStatus.COMPLETE): JOBS}  # none "running"
    assert codes == [0] * WORKERS, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert kills >= 5  # the run really was chaotic


PROCESSES, THREADS = 2, 8


def _working(client: redis.Redis, live: list[subprocess.Popen[bytes]]) -> list[int]:
    """Which of ``live`` have registered their threads (they take jobs)."""
    registered = {w.split(":")[1] for w in client.smembers(K.workers)}
    return [i for i, p in enumerate(live) if str(p.pid) in registered]


def _in_flight(client: redis.Redis, pid: int) -> int:
    """Jobs held by the threads of the (dead) process ``pid``."""
    return sum(k.split(":")[-3] == str(pid) for k in client.keys(K.inprogress("*")))


@pytest.mark.slow
def test_sigkill_chaos_with_threads_loses_no_job(
    real: redis.Redis, worker_env: dict[str, str], tmp_path: Path
) -> None:
    rng = random.Random(1414)
    ids = labqueue.Queue("chaos", real).enqueue_many(
        MarkManyLives, [{"ms": rng.choice((5, 10, 20, 40))} for _ in range(JOBS)]
    )
    wanted, kills, in_flight, started = set(ids), 0, 0, time.monotonic()
    args = ("--queues", "chaos", "--import", "fault_jobs", "--threads", str(THREADS))
    with workers(worker_env, tmp_path / "logs", *args) as group:
        live = [group.start() for _ in range(PROCESSES)]
        while not wanted <= set(real.lrange(DONE, 0, -1)):
            left = leftovers(real, "chaos")
            assert time.monotonic() - started < 55, f"not all done after {kills} kills: {left}"
            assert left["failed"] == 0, real.lrange(K.failed, 0, 0)
            time.sleep(rng.uniform(0.2, 0.5))
            working = _working(real, live)  # a process still starting holds no job: spared
            if not working:
                continue
            victim = rng.choice(working)
            live[victim].send_signal(signal.SIGKILL)
            live[victim].wait(10)
            kills += 1
            in_flight += _in_flight(real, live[victim].pid)
            live[victim] = group.start()
        wait_for(
            lambda: not any(leftovers(real, "chaos").values()),
            timeout=30,
            what=f"queues and in-progress hashes to empty: {leftovers(real, 'chaos')}",
        )
        elapsed = time.monotonic() - started
        pids = {str(p.pid) for p in live}
        wait_for(  # every killed process's 8 ids pruned; each live one's 8 registered
            lambda: (
                Counter(w.split(":")[1] for w in real.smembers(K.workers))
                == dict.fromkeys(pids, THREADS)
            ),
            timeout=20,
            what="the live processes' threads, and only they, to be registered",
        )
        group.signal_all(signal.SIGTERM)
        codes = [p.wait(30) for p in live]
        log = group.log_text()
    done = real.lrange(DONE, 0, -1)
    duplicates, lost = len(done) - len(set(done)), len(wanted - set(done))
    print(
        f"\nchaos with threads: jobs {JOBS}, {PROCESSES} processes x {THREADS} threads, "
        f"kills {kills}, jobs in flight at the kills {in_flight}, duplicates {duplicates}, "
        f"lost {lost}, {elapsed:.1f} s, processes started {group.started}"
    )
    assert lost == 0 and set(done) == wanted
    assert duplicates <= in_flight <= THREADS * kills
    assert leftovers(real, "chaos") == {"queued": 0, "in progress": 0, "failed": 0, "delayed": 0}
    assert statuses(real, ids) == {int(labqueue.JobStatus.COMPLETE): JOBS}
    assert codes == [0] * PROCESSES, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert kills >= 5
