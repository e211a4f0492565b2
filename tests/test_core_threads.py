"""``Worker(threads=N)`` in this process, on fakeredis and a real redis-server: each thread a
worker of its own (id, registration, busy record, in-progress hash, counters), released on
stop; one subscription for the process; bad values refused."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from waiting import wait_for

import labqueue
from labqueue.errors import ConfigurationError
from labqueue.keys import Keys, WorkerId
from labqueue.stats import read_workers
from labqueue.web import create_app

K = Keys()
HOST = socket.gethostname()
STARTED = "labqueue-test:threads:started"
DONE = "labqueue-test:threads:done"
RELEASE = threading.Event()  # Hold jobs wait for it


@labqueue.job("tests.threads.Hold")
class Hold(labqueue.Job):
    """Marks its start, waits for RELEASE (or ``seconds``), then records its tag."""

    def perform(self) -> None:
        self.connection.rpush(STARTED, str(self.args["tag"]))
        RELEASE.wait(float(self.args.get("seconds", 20)))
        self.connection.rpush(DONE, str(self.args["tag"]))


def thread_ids(n: int, queues: str = "q") -> set[str]:
    return {f"{HOST}:{os.getpid()}:{queues}:t{k}" for k in range(1, n + 1)}


class Running:
    """A worker with threads, working in a background thread of this test."""

    def __init__(self, conn: Any, threads: int, **options: Any) -> None:
        options.setdefault("poll_interval", 0.2)
        self.worker = labqueue.Worker("q", conn, threads=threads, **options)
        self.result: list[int] = []
        self.thread = threading.Thread(target=lambda: self.result.append(self.worker.work()))
        self.thread.start()

    def stop(self) -> int:
        self.worker.stop()
        self.thread.join(20)
        assert not self.thread.is_alive()
        return self.result[0]


@pytest.fixture
def running() -> Iterator[list[Running]]:
    RELEASE.clear()
    started: list[Running] = []
    yield started
    RELEASE.set()
    for r in started:
        if r.thread.is_alive():
            r.stop()


def test_each_thread_is_a_worker_of_its_own_until_stopped(
    conn: Any, running: list[Running]
) -> None:
    ids = labqueue.Queue("q", conn).enqueue_many(Hold, [{"tag": i} for i in range(4)])
    running.append(Running(conn, 4))
    wait_for(lambda: conn.llen(STARTED) == 4, 10, "four jobs to start")
    wanted = thread_ids(4)
    assert conn.smembers(K.workers) == wanted
    assert set(conn.hkeys(K.heartbeat)) == wanted == set(conn.hkeys(K.labqueue_workers))
    busy = {}
    for wid in wanted:
        assert conn.get(K.worker_started(wid))
        held = conn.hgetall(K.inprogress(wid))
        assert held["queue"] == "q"
        busy[wid] = labqueue.Payload.from_json(held["payload"]).id
        record = labqueue.Payload.from_json(conn.get(K.worker(wid)).split('"payload":', 1)[1][:-1])
        assert record.id == busy[wid] and record.class_name == "tests.threads.Hold"
    assert sorted(busy.values()) == sorted(ids)  # four threads, one job each
    workers = read_workers(conn)
    assert [(w.thread, w.threads, w.busy) for w in workers] == [(k, 4, True) for k in (1, 2, 3, 4)]
    assert workers[2].label == f"process {os.getpid()}, thread 3 of 4"
    RELEASE.set()
    wait_for(lambda: conn.llen(DONE) == 4, 10, "the four jobs to finish")
    wait_for(lambda: not conn.keys(K.worker("*:t?")), 5, "the busy records to go")
    assert {wid: conn.get(K.stat("processed", wid)) for wid in wanted} == dict.fromkeys(wanted, "1")
    assert running[0].stop() == 4
    assert conn.smembers(K.workers) == set() and conn.hkeys(K.heartbeat) == []
    assert conn.keys(K.inprogress("*")) == [] and conn.hkeys(K.labqueue_workers) == []
    assert [conn.get(K.worker_started(w)) for w in wanted] == [None] * 4
    assert conn.get(K.stat("processed")) == "4"
    statuses = {labqueue.get_status(conn, i).status for i in ids}
    assert statuses == {labqueue.JobStatus.COMPLETE}


def test_a_burst_of_pushes_wakes_every_idle_thread(conn: Any, running: list[Running]) -> None:
    """Idle threads sleep on the process's one subscription; a push wakes one, and a thread
    that finds work wakes the next: eight held jobs run at once, long before the poll."""
    running.append(Running(conn, 8, poll_interval=30))
    wait_for(lambda: len(conn.smembers(K.workers)) == 8, 10, "eight threads")
    time.sleep(0.3)  # every thread asleep
    labqueue.Queue("q", conn).enqueue_many(Hold, [{"tag": i} for i in range(8)])
    wait_for(lambda: conn.llen(STARTED) == 8, 5, "eight jobs running at once")
    RELEASE.set()
    wait_for(lambda: conn.llen(DONE) == 8, 5, "the jobs to finish")
    assert running[0].stop() == 8


def test_an_idle_process_looks_at_its_queues_once_per_poll_not_once_per_thread(
    real: redis.Redis, running: list[Running]
) -> None:
    def scripts_run() -> int:
        stats = real.info("commandstats")
        return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("evalsha", "eval"))

    options = {"heartbeat_interval": 60, "scheduler_interval": None, "poll_interval": 0.25}
    running.append(Running(real, 8, **options))
    wait_for(lambda: len(real.smembers(K.workers)) == 8, 10, "eight threads")
    time.sleep(0.5)
    before, t0 = scripts_run(), time.monotonic()
    time.sleep(2.0)
    calls, polls = scripts_run() - before, (time.monotonic() - t0) / 0.25
    print(f"\nidle, 8 threads: {calls} script calls in {polls:.0f} poll intervals")
    assert calls <= polls + 3  # one look per poll interval (8 threads polling: 8 per interval)
    real.rpush(K.queue("q"), '{"class":"tests.threads.Hold","args":[{"tag":"ruby","seconds":0}]}')
    wait_for(lambda: real.lrange(DONE, 0, -1) == ["ruby"], 5, "a foreign push to run")


def test_a_second_worker_object_with_the_same_threads_is_refused(
    conn: Any, running: list[Running]
) -> None:
    running.append(Running(conn, 3))
    wait_for(lambda: len(conn.smembers(K.workers)) == 3, 10, "three threads")
    other = labqueue.Worker("q", conn, threads=3, poll_interval=0.2)
    with pytest.raises(ConfigurationError, match=r":t1 is taken by a live labqueue worker"):
        other.work()
    assert conn.smembers(K.workers) == thread_ids(3)  # the live one is left alone
    assert running[0].stop() == 0


@pytest.mark.parametrize("bad", [0, -1, 1025, 2.5, "3", True, None])
def test_threads_must_be_a_whole_number_from_1(conn: Any, bad: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"^threads must be a whole number from 1 "):
        labqueue.Worker("q", conn, threads=bad)


def test_fork_with_threads_is_refused_in_one_line(conn: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"^--fork cannot run with --threads > 1 \("):
        labqueue.Worker("q", conn, threads=2, fork=True)


@pytest.mark.parametrize(
    ("text", "queues", "thread"),
    [
        ("vm:1234:email,erp:t3", ("email", "erp"), 3),
        ("vm:1234:*:t25", ("*",), 25),
        ("vm:1234:email,erp", ("email", "erp"), None),
        ("vm:1234::t3", (":t3",), None),  # no queues before it: not a thread field
        ("vm:1234:a:b:tx", ("a:b:tx",), None),
    ],
)
def test_a_thread_id_carries_its_number_in_a_fourth_field(
    text: str, queues: tuple[str, ...], thread: int | None
) -> None:
    who = WorkerId.parse(text)
    assert (who.host, who.pid, who.queues, who.thread) == ("vm", "1234", queues, thread)
    assert who.process == 1234 and str(who) == text
    # Ruby Resque's prune reads `host, pid, queues = id.split(':')`: the pid is the process's
    host, pid, *_ = text.split(":")
    assert (host, pid) == ("vm", "1234")


def test_stats_and_the_monitor_label_each_thread(
    real: redis.Redis, running: list[Running], run: Any
) -> None:
    labqueue.Queue("q", real).enqueue_many(Hold, [{"tag": i} for i in range(2)])
    running.append(Running(real, 3))
    wait_for(lambda: real.llen(STARTED) == 2, 10, "two jobs to start")
    text = run("stats").output
    pid = os.getpid()
    assert "workers: 3 (2 busy)" in text
    lines = [ln for ln in text.splitlines() if f"process {pid}, thread" in ln]
    assert [ln.split(" (", 1)[1].split(")")[0] for ln in lines] == [
        f"process {pid}, thread {k} of 3" for k in (1, 2, 3)
    ]
    assert sum("running tests.threads.Hold from q" in ln for ln in lines) == 2
    workers = json.loads(run("stats", "--json").output)["workers"]
    assert [(w["thread"], w["threads"]) for w in workers] == [(1, 3), (2, 3), (3, 3)]
    page = create_app(real, {"TESTING": True}).test_client().get("/workers").get_data(True)
    assert page.count("of 3 <span") == 3 and "thread 2 of 3" in page


def test_burst_with_threads_runs_everything_and_records_each_threads_id(
    conn: Any, tmp_path: Any
) -> None:
    from labqueue.events import read_job_events

    RELEASE.set()
    jobs = [{"tag": i, "seconds": 0} for i in range(40)]
    labqueue.Queue("q", conn).enqueue_many(Hold, jobs)
    worker = labqueue.Worker("q", conn, threads=4, job_events=tmp_path, poll_interval=0.2)
    assert worker.work(burst=True) == 40 and worker.processed == 40
    assert sorted(map(int, conn.lrange(DONE, 0, -1))) == list(range(40))
    events = read_job_events(tmp_path)
    assert len(events) == 40 and {e.outcome for e in events} == {"done"}
    assert {e.worker for e in events} <= thread_ids(4)
    assert conn.smembers(K.workers) == set() and conn.keys(K.inprogress("*")) == []


def test_a_time_limit_in_a_thread_stops_python_code_and_says_so_at_start(
    conn: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A thread cannot be killed: a job over its limit gets an exception raised into its
    thread (Python code stops; a blocking C call would not), and the worker says so."""
    from fault_jobs import Spin

    labqueue.Queue("q", conn).enqueue_many(Spin, [{}, {}])
    worker = labqueue.Worker("q", conn, threads=2, job_timeout=5, poll_interval=0.2)
    t0 = time.monotonic()
    with caplog.at_level("WARNING", logger="labqueue.worker"):
        assert worker.work(burst=True) == 2
    assert time.monotonic() - t0 < 4  # Spin's own 0.5 s limit, in both threads at once
    failures = labqueue.FailedStore(conn).all()
    assert [f.exception for f in failures] == ["JobTimeout", "JobTimeout"]
    said = [r.getMessage() for r in caplog.records if "--timeout with --threads" in r.getMessage()]
    assert len(said) == 1 and "cannot interrupt a blocking C call" in said[0]
