"""Reading the layout: the worker id, the one reader of workers and the one of delayed jobs,
on fakeredis and a real redis-server, with what Ruby Resque wrote (resque-vectors.json)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
import time
from pathlib import Path
from typing import Any

import fakeredis
import pytest

import labqueue
from labqueue import timefmt
from labqueue.delayed import delayed_jobs, read_delayed
from labqueue.keys import Keys, WorkerId
from labqueue.stats import read_workers, snapshot
from labqueue.web import create_app

VECTORS = json.loads((Path(__file__).parent / "data" / "resque-vectors.json").read_text())
K = Keys()


@pytest.mark.parametrize(
    ("text", "host", "pid", "queues"),
    [
        ("vm:16422:default,high", "vm", "16422", ("default", "high")),
        ("vm:1:*", "vm", "1", ("*",)),
        ("vm:1:", "vm", "1", ()),
        ("vm", "vm", "", ()),
    ],
)
def test_worker_id_parses_what_anyone_wrote(
    text: str, host: str, pid: str, queues: tuple[str, ...]
) -> None:
    who = WorkerId.parse(text)
    assert (who.host, who.pid, who.queues) == (host, pid, queues)
    assert who.process == (int(pid) if pid else None)
    if pid:
        assert str(who) == text


def test_worker_id_formats_as_resque_does() -> None:
    [ruby] = VECTORS["workers_set_while_busy"]
    assert str(WorkerId.of("vm", 16422, ["default", "high"])) == ruby
    worker = labqueue.Worker(["high", "low"], fakeredis.FakeRedis(decode_responses=True))
    assert WorkerId.parse(worker.id) == WorkerId.of(
        socket.gethostname(), os.getpid(), ["high", "low"]
    )


def test_workers_reader_reads_a_ruby_worker(conn: Any) -> None:
    [wid] = VECTORS["workers_set_while_busy"]
    conn.sadd(K.workers, wid)
    conn.set(K.worker(wid), VECTORS["worker_record_while_busy"][wid])
    conn.set(K.worker_started(wid), VECTORS["worker_started_key"][wid])
    conn.hset(K.heartbeat, wid, VECTORS["workers_heartbeat_hash"][wid])
    conn.set(K.stat("processed", wid), 2)
    [w] = read_workers(conn)
    assert (w.id, w.host, w.pid, w.queues) == (wid, "vm", "16422", ["default", "high"])
    assert w.busy and w.queue == "default" and w.job_class == "Job::Work::TestJob"
    assert w.run_at == "2026-11-29T10:45:15Z" and w.processed == 2 and w.failed == 0
    assert w.started == w.heartbeat == timefmt.parse("2026-11-29T10:45:15Z")
    assert json.loads(w.payload or "")["args"][0]["to_name"] == "Samir Patel"
    [same] = snapshot(conn).workers  # the snapshot reads workers the same way
    assert dataclasses.replace(same, heartbeat_age=None) == dataclasses.replace(
        w, heartbeat_age=None
    )


def test_workers_reader_shows_a_record_it_cannot_read(conn: Any) -> None:
    conn.sadd(K.workers, "h:1:q", "h:2:q")
    conn.set(K.worker("h:1:q"), "not json")
    conn.set(K.worker("h:2:q"), json.dumps({"queue": "q", "run_at": "x", "payload": "raw {"}))
    odd, raw = read_workers(conn)
    assert odd.busy and odd.payload == "not json" and odd.job_class is None
    assert raw.busy and raw.payload == "raw {" and raw.queue == "q" and raw.heartbeat is None


def test_one_delayed_reader_with_the_exact_due_time(conn: Any) -> None:
    """The CLI, the monitor and delayed_jobs() read the same time: not truncated to the second."""
    at = math.floor(time.time()) + 100.7
    job_id = labqueue.Queue("email", conn).enqueue_at(at, "Store::Remind", user=1)
    ruby_second = math.floor(time.time()) + 50
    conn.zadd(K.delayed_schedule, {str(ruby_second): ruby_second})
    conn.rpush(K.delayed(ruby_second), '{"class":"Ruby::Job","args":[],"queue":"erp"}')
    jobs, total = read_delayed(conn)
    assert total == 2 and [j.due for j in jobs] == [ruby_second, at]
    assert [j.due for j in delayed_jobs(conn, limit=1)] == [ruby_second]
    items = create_app(conn).test_client().get("/api/delayed").get_json()["items"]
    assert [(i["id"], i["due"]) for i in items] == [(None, ruby_second), (job_id, at)]


def test_the_cli_lists_the_exact_due_time(run: Any, real: Any) -> None:
    at = math.floor(time.time()) + 100.7
    labqueue.Queue("email", real).enqueue_at(at, "Store::Remind")
    [listed] = json.loads(run("delayed", "--json").output)
    assert listed["due"] == at
