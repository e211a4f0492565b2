"""Mixed fleets (issue 13; issue 15 items 2, 3, 10 and 7's registry part): labqueue workers
beside Resque's and php-resque's on one Redis, each judged by its owner's rule. Every test
runs on fakeredis and on a real redis-server, with the records Resque writes
(resque-vectors.json) and Resque's rules reimplemented in ``resque_rules``."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jobs_for_tests import Slow
from resque_rules import ruby_beat, server_time, unregister
from waiting import wait_for

import labqueue
from labqueue.keys import Keys
from labqueue.worker import liveness, presence
from labqueue.worker.liveness import DIRTY_EXIT, PRUNED_EXIT, prune_dead_workers
from labqueue.worker.presence import Presence, WorkerRecord, pid_namespace

VECTORS = json.loads((Path(__file__).parent / "data" / "resque-vectors.json").read_text())
K = Keys()
HOST = socket.gethostname()
BUSY = next(iter(VECTORS["worker_record_while_busy"].values()))


@pytest.fixture
def live_pid() -> Iterator[int]:
    """A live process whose title matches Resque's pattern (a Ruby worker, as ps shows it)."""
    code = (
        "import setproctitle, time; "
        "setproctitle.setproctitle('resque-3.0.0: Processing default since 1764413115 "
        "[Job::Work::TestJob]'); time.sleep(120)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    yield proc.pid
    proc.kill()
    proc.wait()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def ruby_worker(r: Any, pid: int, beat_age: int, host: str = HOST) -> str:
    """A Ruby worker's registry, as Resque 3.0 writes it, busy with the vector's job."""
    wid = f"{host}:{pid}:default,high"
    r.sadd(K.workers, wid)
    r.set(K.worker(wid), BUSY)
    r.set(K.worker_started(wid), "2026-11-29 10:45:15 +0000")
    r.hset(K.heartbeat, wid, ruby_beat(server_time(r) - beat_age))
    r.set(K.stat("processed", wid), 7)
    return wid


def php_worker(r: Any, pid: int, host: str = HOST) -> str:
    """A php-resque worker (no heartbeat), busy with a job."""
    wid = f"{host}:{pid}:default"
    r.sadd(K.workers, wid)
    r.set(K.worker_started(wid), "2026-11-29T10:45:15+00:00")
    r.set(K.worker(wid), BUSY.replace('"run_at":"2026-11-29T10:45:15Z"', '"run_at":"x"'))
    return wid


def failures(r: Any) -> list[dict[str, Any]]:
    return [json.loads(x) for x in r.lrange(K.failed, 0, -1)]


# -- Resque's workers: by Resque's prune interval ---------------------------------------
def test_a_live_ruby_worker_with_a_61_s_old_heartbeat_is_kept(conn: Any, live_pid: int) -> None:
    wid = ruby_worker(conn, live_pid, 61)
    before = {k: conn.dump(k) for k in (K.worker(wid), K.worker_started(wid))}
    labqueue.Worker("default", conn, poll_interval=0.05).work(burst=True)
    assert conn.sismember(K.workers, wid) and conn.hget(K.heartbeat, wid)
    assert {k: conn.dump(k) for k in before} == before and failures(conn) == []
    assert conn.get(K.stat("processed", wid)) == "7"


@pytest.mark.parametrize("age, pruned", [(300, False), (301, True)])
def test_a_ruby_worker_is_dead_after_resques_prune_interval(
    conn: Any, live_pid: int, age: int, pruned: bool
) -> None:
    """Resque's own rule: more than 300 whole seconds on Redis' clock (its pid is not looked at)."""
    wid = ruby_worker(conn, live_pid, age)
    released = prune_dead_workers(conn, K, "me")
    assert (wid in released) is pruned and conn.sismember(K.workers, wid) is not pruned
    if not pruned:
        return
    [record] = failures(conn)
    [ruby_record] = [json.loads(x) for x in VECTORS["failed_list"]]
    busy = json.loads(BUSY)
    assert list(record) == list(ruby_record)  # Resque's keys, Resque's order
    assert record["exception"] == PRUNED_EXIT == "Resque::PruneDeadWorkerDirtyExit"
    assert (
        record["error"]
        == f"Worker {wid} did not gracefully exit while processing {busy['payload']['class']}"
    )
    assert record["payload"] == busy["payload"] and record["queue"] == busy["queue"]
    assert record["backtrace"] == [] and record["worker"] == wid
    assert time.strptime(record["failed_at"], "%Y/%m/%d %H:%M:%S UTC")
    for key in (K.worker(wid), K.worker_started(wid), K.stat("processed", wid)):
        assert not conn.exists(key)
    assert conn.hget(K.heartbeat, wid) is None
    assert conn.get(K.stat("processed")) is None and conn.get(K.stat("failed")) is None


def test_an_orphan_ruby_heartbeat_is_dropped_without_a_record(conn: Any) -> None:
    """Ids come from the heartbeat hash too (php-resque's prune leaves the field behind)."""
    conn.hset(K.heartbeat, "gone:1:default", ruby_beat(server_time(conn) - 400))
    assert prune_dead_workers(conn, K, "me") == ["gone:1:default"]
    assert conn.hlen(K.heartbeat) == 0 and failures(conn) == []


# -- php-resque's workers: by pid, on this host, when pids can be checked -----------------
def test_a_dead_php_worker_on_this_host_gets_resques_dirty_exit(conn: Any, live_pid: int) -> None:
    gone, alive = php_worker(conn, dead_pid()), php_worker(conn, live_pid)
    elsewhere = php_worker(conn, dead_pid(), host="other-host")
    assert prune_dead_workers(conn, K, "me") == [gone]
    assert conn.smembers(K.workers) == {alive, elsewhere}
    [record] = failures(conn)
    assert (
        (record["exception"], record["error"])
        == DIRTY_EXIT
        == (
            "Resque::DirtyExit",
            "Job still being processed",
        )
    )
    assert record["worker"] == gone and record["queue"] == "default" and record["backtrace"] == []
    assert not conn.exists(K.worker(gone)) and not conn.exists(K.worker_started(gone))


def test_php_pids_are_not_checked_when_this_hostname_spans_pid_namespaces(conn: Any) -> None:
    gone = php_worker(conn, dead_pid())
    other = f"{HOST}:1:erp"  # a labqueue worker of this hostname in another container
    record = WorkerRecord("other-boot/4026532000", "t", float(server_time(conn)), 5.0)
    conn.hset(K.labqueue_workers, other, record.to_json())
    assert prune_dead_workers(conn, K, "me") == []
    assert conn.sismember(K.workers, gone) and failures(conn) == []


def test_a_busy_record_that_changed_meanwhile_is_left_for_later(
    conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = php_worker(conn, dead_pid())
    call = liveness.DROP_FOREIGN.call

    def racing(client: Any, keys: Any, args: Any) -> Any:
        conn.set(K.worker(gone), '{"queue":"default","run_at":"y","payload":{}}')
        return call(client, keys, args)

    monkeypatch.setattr(liveness.DROP_FOREIGN, "call", racing)
    assert prune_dead_workers(conn, K, "me") == []
    assert conn.sismember(K.workers, gone) and failures(conn) == []


# -- labqueue's own: its record, its pid namespace, Redis' clock (issue 15, items 2, 3) ----
def hold_a_job(r: Any, wid: str) -> None:
    labqueue.Queue("default", r).enqueue(Slow, tag="x", seconds=0)
    fetcher = labqueue.worker.reliable.ReliableFetch(r, K)
    assert fetcher.fetch(wid, ["default"], time.time(), "x")


@pytest.mark.parametrize("same_namespace", [True, False])
def test_the_pid_check_is_trusted_only_in_the_same_pid_namespace(
    conn: Any, same_namespace: bool
) -> None:
    """Issue 15, item 2: a worker of this hostname whose pid is absent here, but whose record
    names another pid namespace (another container), runs: its job is not run twice."""
    wid = f"{HOST}:{dead_pid()}:default"
    pidns = pid_namespace() if same_namespace else "other-boot/4026532000"
    conn.sadd(K.workers, wid)
    conn.hset(K.labqueue_workers, wid, WorkerRecord(pidns, "t", server_time(conn), 5.0).to_json())
    hold_a_job(conn, wid)
    released = prune_dead_workers(conn, K, "me")
    assert (released == [wid]) is same_namespace
    assert conn.exists(K.inprogress(wid)) is not same_namespace
    assert conn.llen(K.queue("default")) == int(same_namespace)
    assert conn.hexists(K.labqueue_workers, wid) is not same_namespace


def test_a_labqueue_worker_silent_for_dead_after_is_dead_anywhere(conn: Any) -> None:
    wid = "far-host:7:default"
    old = WorkerRecord("x/1", "t", server_time(conn) - 61.0, 5.0)
    conn.hset(K.labqueue_workers, wid, old.to_json())
    conn.sadd(K.workers, wid)
    hold_a_job(conn, wid)
    assert prune_dead_workers(conn, K, "me") == [wid]
    assert conn.llen(K.queue("default")) == 1 and failures(conn) == []


def test_heartbeats_use_redis_clock_and_a_skewed_clock_is_reported_once(
    conn: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 15, item 3: this machine's clock 120 s behind Redis' changes nothing."""
    monkeypatch.setattr(presence, "local_clock", lambda: time.time() - 120)
    wid = f"{HOST}:{os.getpid()}:default"
    mine = Presence(conn, K, wid, 5.0)
    with caplog.at_level(logging.WARNING, "labqueue.worker"):
        for _ in range(3):
            mine.beat()
            assert prune_dead_workers(conn, K, "someone-else") == []
    assert sum("clock" in r.message for r in caplog.records) == 1
    redis_now = server_time(conn)
    beat = labqueue.timefmt.parse(conn.hget(K.heartbeat, wid))
    record = WorkerRecord.from_json(conn.hget(K.labqueue_workers, wid))
    assert beat is not None and abs(beat - redis_now) <= 2
    assert record is not None and abs(record.beat - redis_now) <= 2


# -- one id, one worker (issue 15, item 10) -------------------------------------------------
def test_a_second_live_worker_with_a_taken_id_is_refused(conn: Any) -> None:
    labqueue.Queue("default", conn).enqueue(Slow, tag="a", seconds=0.8)
    first = labqueue.Worker("default", conn, poll_interval=0.05)
    t = threading.Thread(target=first.work, kwargs={"burst": True})
    t.start()
    try:
        wait_for(lambda: conn.lrange("labqueue-test:started", 0, -1), 10, "the first job")
        second = labqueue.Worker("default", conn, poll_interval=0.05)
        assert second.id == first.id
        with pytest.raises(labqueue.ConfigurationError, match="taken by a live labqueue worker"):
            second.work(burst=True)
        assert conn.sismember(K.workers, first.id) and conn.exists(K.inprogress(first.id))
    finally:
        t.join(10)
    assert conn.lrange("labqueue-test:done", 0, -1) == ["a"]  # ran once, never requeued
    assert labqueue.Worker("default", conn).work(burst=True) == 0  # free again once gone


# -- a registry nobody can read (issue 15, item 7) -------------------------------------------
def test_non_utf8_registry_members_are_skipped_and_reported_once(
    conn: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(liveness, "_reported", set())  # once per process: this test's own
    conn.sadd(K.workers, b"\xff\xfe:1:default")
    conn.hset(K.heartbeat, b"\xff:2:default", b"\xfe")
    conn.hset(K.labqueue_workers, "x:3:default", "not json")
    conn.hset(K.heartbeat, "y:4:default", "not a time")
    labqueue.Queue("default", conn).enqueue(Slow, tag="ok", seconds=0)
    with caplog.at_level(logging.WARNING, "labqueue.worker"):
        for _ in range(2):
            assert labqueue.Worker("default", conn, poll_interval=0.05).work(burst=True) in (0, 1)
    assert conn.lrange("labqueue-test:done", 0, -1) == ["ok"]
    told = [r.message for r in caplog.records if "skipped" in r.message]
    assert len(told) == len(set(told)) >= 3  # each once, though the worker started twice


# -- a wrong prune heals within one heartbeat ---------------------------------------------
@pytest.mark.parametrize("pruner", ["ruby", "php"])
def test_a_wrongly_pruned_worker_registers_again_within_one_heartbeat(
    conn: Any, pruner: str
) -> None:
    labqueue.Queue("default", conn).enqueue(Slow, tag="long", seconds=1.5)
    w = labqueue.Worker("default", conn, poll_interval=0.05, heartbeat_interval=0.5)
    t = threading.Thread(target=w.work, kwargs={"burst": True})
    t.start()
    try:
        wait_for(lambda: conn.lrange("labqueue-test:started", 0, -1), 10, "the job to start")
        started, busy = conn.get(K.worker_started(w.id)), conn.get(K.worker(w.id))
        unregister(conn, K, w.id, None, php=pruner == "php")  # what their prune does
        pruned_at = time.monotonic()
        wait_for(lambda: conn.sismember(K.workers, w.id), 2, "registered again")
        assert time.monotonic() - pruned_at < 0.5 + 0.4  # one heartbeat, and some slack
        wait_for(lambda: conn.get(K.worker(w.id)), 1, "the busy record again")
        assert json.loads(conn.get(K.worker(w.id)))["payload"] == json.loads(busy)["payload"]
        assert conn.hget(K.heartbeat, w.id) and conn.get(K.worker_started(w.id))
        assert started
    finally:
        t.join(10)
    assert conn.lrange("labqueue-test:done", 0, -1) == ["long"]
    assert conn.smembers(K.workers) == set() and conn.hlen(K.labqueue_workers) == 0
