"""``labqueue worker --threads N`` as a real process on a real redis-server: TERM lets all N
jobs finish, a second TERM puts all N back, SIGKILL loses none; the title Resque's and
php-resque's prunes keep; --concurrency P --threads N; bad values in one line."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from jobs_for_tests import DONE, Record, Slow
from resque_rules import php_prune, ruby_prune
from waiting import wait_for

import labqueue
from labqueue.keys import Keys
from labqueue.procs import worker_command

K = Keys()
HOST = socket.gethostname()
STARTED = "labqueue-test:started"
N = 4


@pytest.fixture
def start(worker_env: dict[str, str]) -> Iterator[Any]:
    procs: list[subprocess.Popen[str]] = []

    def started(*args: str) -> subprocess.Popen[str]:
        cmd = worker_command(
            "--queues", "default", "--import", "jobs_for_tests", "--poll-interval", "0.1", *args
        )
        proc = subprocess.Popen(
            cmd, env=worker_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        procs.append(proc)
        return proc

    yield started
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=20)


def ids_of(pid: int, n: int = N) -> set[str]:
    return {f"{HOST}:{pid}:default:t{k}" for k in range(1, n + 1)}


def title(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode().strip()


def test_term_lets_every_thread_finish_its_job_and_fetch_no_other(
    real: redis.Redis, start: Any
) -> None:
    q = labqueue.Queue("default", real)
    q.enqueue_many(Slow, [{"tag": f"slow{i}", "seconds": 1.0} for i in range(N)])
    q.enqueue_many(Record, [{"tag": f"next{i}"} for i in range(N)])
    proc = start("--threads", str(N))
    wait_for(lambda: real.llen(STARTED) == N, 20, "every thread's job to start")
    assert real.smembers(K.workers) == ids_of(proc.pid)
    assert all(real.get(K.worker(w)) for w in ids_of(proc.pid))  # each thread busy
    if os.path.exists(f"/proc/{proc.pid}/cmdline"):
        shown = title(proc.pid)
        assert shown.startswith("resque-") and f"Processing {N} of {N} threads busy" in shown
        assert ruby_prune(real, K, ["default"], HOST) == []  # Resque keeps our threads
        assert php_prune(real, K, HOST) == []
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    assert f"stopped after {N} jobs (0 failed)" in proc.communicate()[0]
    assert sorted(real.lrange(DONE, 0, -1)) == [f"slow{i}" for i in range(N)]
    assert [p.args[0]["tag"] for p in q.peek(0, 10)] == [f"next{i}" for i in range(N)]
    assert real.smembers(K.workers) == set() and real.keys(K.inprogress("*")) == []
    assert real.hkeys(K.heartbeat) == [] and real.hkeys(K.labqueue_workers) == []


def test_a_second_term_puts_every_threads_job_back_at_the_head(
    real: redis.Redis, start: Any
) -> None:
    q = labqueue.Queue("default", real)
    held = q.enqueue_many(Slow, [{"tag": f"held{i}", "seconds": 30} for i in range(N)])
    proc = start("--threads", str(N))
    wait_for(lambda: real.llen(STARTED) == N, 20, "every thread's job to start")
    nxt = q.enqueue(Record, tag="next")
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)  # the first TERM taken
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    out = proc.communicate()[0]
    assert real.lrange(DONE, 0, -1) == [], out
    queued = q.peek(0, 10)
    assert sorted(p.id for p in queued[:N]) == sorted(held) and queued[N].id == nxt
    assert all("crashes" not in json.dumps(p.extra) for p in queued)  # given back, no crash
    assert {labqueue.get_status(real, i).status for i in held} == {labqueue.JobStatus.WAITING}
    assert real.keys(K.inprogress("*")) == [] and real.smembers(K.workers) == set()
    assert "putting the jobs still running back" in out and "put 4 unfinished jobs back" in out
    assert "stopped after 0 jobs (0 failed)" in out  # jobs given back were not processed


def test_sigkill_with_every_thread_busy_loses_no_job(real: redis.Redis, start: Any) -> None:
    q = labqueue.Queue("default", real)
    held = q.enqueue_many(Slow, [{"tag": f"held{i}", "seconds": 30} for i in range(N)])
    proc = start("--threads", str(N))
    wait_for(lambda: real.llen(STARTED) == N, 20, "every thread's job to start")
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert {k.split(":inprogress:")[1] for k in real.keys(K.inprogress("*"))} == ids_of(proc.pid)
    assert q.length == 0
    real.delete(STARTED)
    # The next process finds the dead one's N ids (pid gone) and puts all N jobs back.
    nxt = start("--threads", str(N))
    wait_for(lambda: real.llen(STARTED) == N, 20, "all N jobs to start again")
    assert sorted(real.lrange(STARTED, 0, -1)) == [f"held{i}" for i in range(N)]
    assert {labqueue.get_status(real, i).status for i in held} == {labqueue.JobStatus.RUNNING}
    assert real.smembers(K.workers) == ids_of(nxt.pid)
    nxt.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    nxt.send_signal(signal.SIGTERM)
    assert nxt.wait(10) == 0
    assert q.length == N


def test_the_supervisor_releases_every_thread_of_a_child_it_saw_die(real: redis.Redis) -> None:
    from labqueue.cli.serve import release_child

    dead = 999_999_999
    for k in (1, 2, 3):
        wid = f"{HOST}:{dead}:default:t{k}"
        real.sadd(K.workers, wid)
        real.hset(K.inprogress(wid), mapping={"queue": "default", "payload": f'{{"id":"j{k}"}}'})
    release_child(real, "resque", "default", 3)(dead)
    assert real.smembers(K.workers) == set() and real.keys(K.inprogress("*")) == []
    assert sorted(real.lrange(K.queue("default"), 0, -1)) == [
        f'{{"crashes":1,"id":"j{k}"}}' for k in (1, 2, 3)
    ]


def test_concurrency_and_threads_compose(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from labqueue.cli import serve
    from labqueue.worker import supervisor

    started: list[tuple[list[str], int]] = []

    class Recorder:
        def __init__(self, child_args: list[str], concurrency: int, *rest: Any) -> None:
            started.append((child_args, concurrency))

        def run(self) -> int:
            return 0

    monkeypatch.setattr(supervisor, "Supervisor", Recorder)
    assert run("worker", "-c", "2", "--threads", "8", "-Q", "default").exit_code == 0
    assert run("worker", "-c", "2", "-Q", "default").exit_code == 0
    [(args, processes), (plain, _)] = started
    child = serve.worker.make_context("worker", args).params
    assert processes == 2 and child["threads"] == 8 and "--concurrency" not in args
    assert "--threads" not in plain  # one thread: the child's command line as before


@pytest.mark.parametrize(
    ("given", "says"),
    [
        (["--threads", "0"], "'--threads': 0 is not in the range x>=1"),
        (["--threads", "-2"], "'--threads': -2 is not in the range x>=1"),
        (["--threads", "many"], "'--threads': 'many' is not a valid integer range"),
        (["--threads", "2", "--fork"], "--fork cannot run with --threads > 1"),
        (["-c", "2", "--threads", "2", "--fork"], "--fork cannot run with --threads > 1"),
    ],
)
def test_bad_threads_are_one_line_and_exit_2(run: Any, given: list[str], says: str) -> None:
    result = run("worker", "-Q", "default", *given)
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and says in result.output
