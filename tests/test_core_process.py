"""Workers as real processes on a real redis-server: signals, SIGKILL, the supervisor."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
import redis
from jobs_for_tests import DONE, Record, Slow
from waiting import wait_for

import labqueue
from labqueue.keys import Keys
from labqueue.procs import worker_command

K = Keys()
STARTED = "labqueue-test:started"


def start_worker(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    cmd = [
        sys.executable,
        "-m",
        "labqueue",
        "worker",
        "--import",
        "jobs_for_tests",
        "--poll-interval",
        "0.1",
        *args,
    ]
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.kill()
    out, _ = proc.communicate(timeout=20)
    return out


def test_worker_subprocess_runs_jobs_end_to_end(
    real: redis.Redis, worker_env: dict[str, str]
) -> None:
    q = labqueue.Queue("default", real)
    ids = [q.enqueue(Record, tag=i) for i in range(20)]
    proc = start_worker(worker_env, "--queues", "default", "--burst")
    out = stop(proc) if proc.wait(30) is None else proc.communicate()[0]
    assert proc.returncode == 0, out
    assert real.lrange(DONE, 0, -1) == [str(i) for i in range(20)]
    assert all(labqueue.get_status(real, i).status is labqueue.JobStatus.COMPLETE for i in ids)
    assert real.smembers(K.workers) == set()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT])
def test_one_signal_finishes_the_job_then_exits_0(
    real: redis.Redis, worker_env: dict[str, str], sig: signal.Signals
) -> None:
    q = labqueue.Queue("default", real)
    q.enqueue(Slow, tag="current", seconds=1.0)
    q.enqueue(Record, tag="next")
    proc = start_worker(worker_env, "--queues", "default")
    try:
        wait_for(lambda: real.lrange(STARTED, 0, -1), what="the slow job to start")
        proc.send_signal(sig)
        assert proc.wait(20) == 0
    finally:
        out = stop(proc)
    assert real.lrange(DONE, 0, -1) == ["current"], out
    assert [p.args for p in q.peek()] == [[{"tag": "next"}]]
    assert real.smembers(K.workers) == set()


def test_idle_worker_hears_a_foreign_push_without_polling(
    real: redis.Redis, worker_env: dict[str, str]
) -> None:
    """A Resque producer publishes nothing: the push event itself wakes the worker."""
    cmd = worker_command(imports=["jobs_for_tests"], queues="default", poll_interval=60)
    proc = subprocess.Popen(cmd, env=worker_env)
    try:
        wait_for(lambda: real.smembers(K.workers), what="the worker to register")
        time.sleep(0.5)  # let it go to sleep on its subscription
        pushed = time.monotonic()
        real.rpush(K.queue("default"), '{"class":"tests.Record","args":["from-ruby"]}')
        wait_for(lambda: real.lrange(DONE, 0, -1) == ["from-ruby"], timeout=20, what="the job")
        print(f"foreign push to done: {(time.monotonic() - pushed) * 1000:.1f} ms")
    finally:
        proc.terminate()
        proc.wait(20)


def test_second_signal_puts_the_job_back_and_exits(
    real: redis.Redis, worker_env: dict[str, str]
) -> None:
    q = labqueue.Queue("default", real)
    first = q.enqueue(Slow, tag="interrupted", seconds=30)
    q.enqueue(Record, tag="next")
    proc = start_worker(worker_env, "--queues", "default")
    try:
        wait_for(lambda: real.lrange(STARTED, 0, -1), what="the slow job to start")
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    finally:
        out = stop(proc)
    assert real.lrange(DONE, 0, -1) == [], out
    assert q.peek()[0].id == first and q.length == 2
    assert labqueue.get_status(real, first).status is labqueue.JobStatus.WAITING
    assert real.keys(K.inprogress("*")) == [] and real.smembers(K.workers) == set()


def test_sigkill_mid_job_and_the_next_worker_runs_it(
    real: redis.Redis, worker_env: dict[str, str]
) -> None:
    q = labqueue.Queue("default", real)
    victim = q.enqueue(Slow, tag="victim", seconds=30)
    proc = start_worker(worker_env, "--queues", "default")
    try:
        wait_for(lambda: real.lrange(STARTED, 0, -1), what="the job to start")
        assert q.length == 0 and len(real.keys(K.inprogress("*"))) == 1
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        stop(proc)
    real.delete(STARTED)
    # The next worker must start the very same job again: seeing it start (its status
    # running again, under the new worker) proves the job was recovered, not lost.
    nxt = start_worker(worker_env, "--queues", "default")
    try:
        wait_for(lambda: real.lrange(STARTED, 0, -1), what="the recovered job to start again")
        assert labqueue.get_status(real, victim).status is labqueue.JobStatus.RUNNING
        workers = real.smembers(K.workers)
        assert len(workers) == 1 and str(nxt.pid) in next(iter(workers))
    finally:
        nxt.send_signal(signal.SIGTERM)
        nxt.send_signal(signal.SIGTERM)
        stop(nxt)


def test_concurrency_supervisor_restarts_a_dead_child(
    real: redis.Redis, worker_env: dict[str, str]
) -> None:
    q = labqueue.Queue("default", real)
    proc = start_worker(worker_env, "--queues", "default", "--concurrency", "3")
    try:
        wait_for(lambda: len(real.smembers(K.workers)) == 3, what="three workers")
        children = psutil.Process(proc.pid).children()
        assert len(children) == 3
        os.kill(children[0].pid, signal.SIGKILL)
        wait_for(
            lambda: (
                len(psutil.Process(proc.pid).children()) == 3
                and children[0].pid not in [c.pid for c in psutil.Process(proc.pid).children()]
            ),
            what="a replacement child",
        )
        q.enqueue_many(Record, [{"tag": i} for i in range(30)])
        wait_for(lambda: real.llen(DONE) == 30, what="all jobs done")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        out = stop(proc)
    assert sorted(map(int, real.lrange(DONE, 0, -1))) == list(range(30))
    assert real.smembers(K.workers) == set(), out
