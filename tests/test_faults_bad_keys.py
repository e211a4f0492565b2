"""Issue 15 item 7, the worker's side: a key of the wrong type never takes a worker down.

Before: a ``*`` worker exited on WRONGTYPE from one bad queue; a wrong-typed ``stat:failed``,
``stat:processed``, per-worker counter, ``resque:failed`` or in-progress hash killed the
worker as it recorded a job's outcome, after the script's first INCRs; one ``delayed:<ts>``
that was not a list stopped every delayed job, with a warning every 0.5 s. Now the bad key
is moved aside (content intact, one warning) and everything else goes on; the job whose
outcome met it is recorded once, in full. On fakeredis and a real redis-server."""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

import pytest
import redis
from badkey_tools import contents, type_of
from hard_jobs import DONE, Clobber, Done

import labqueue
from labqueue import badkeys
from labqueue.delayed import BUDGET, DelayedMover, move_due
from labqueue.keys import Keys

K = Keys()


@pytest.fixture(autouse=True)
def fresh_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test a new process, as far as the once-per-problem warnings go."""
    monkeypatch.setattr(badkeys, "_said", {})


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def aside(conn: Any) -> dict[bytes, tuple[str, Any]]:
    """The keys set aside, by their original name (what follows the stamp)."""
    prefix = K.aside_prefix.encode()
    return {
        key[len(prefix) :].split(b":", 1)[1]: value
        for key, value in contents(conn).items()
        if key.startswith(prefix)
    }


@pytest.mark.parametrize("queues", ["*", "a-bad,default,z"])
def test_a_queue_of_the_wrong_type_is_set_aside_and_the_others_served(
    conn: Any, caplog: pytest.LogCaptureFixture, queues: str
) -> None:
    jobs = [labqueue.Queue(q, conn).enqueue(Done) for q in ("default", "z", "default")]
    conn.sadd(K.queues, "a-bad")  # sorted first: the first queue a '*' worker looks at
    conn.hset(K.queue("a-bad"), "not", "a list")
    with caplog.at_level(logging.INFO, "labqueue"):
        assert labqueue.Worker(queues, conn, poll_interval=0.05).work(burst=True) == 3
    assert sorted(conn.lrange(DONE, 0, -1)) == sorted(jobs)
    assert aside(conn) == {K.queue("a-bad").encode(): ("hash", [(b"not", b"a list")])}
    said = [m for m in warnings(caplog) if "a-bad" in m]
    assert len(said) == 1 and "moved it aside" in said[0], warnings(caplog)
    labqueue.Queue("a-bad", conn).enqueue(Done)  # the queue works again
    assert labqueue.Worker("a-bad", conn).work(burst=True) == 1


# (key, kind, the clobbering job fails?): the job writes the bad value while it runs, so the
# step recording its outcome is the first to meet it (as another client's write would be)
CLOBBERED = [
    (K.stat("processed"), "hash", False),
    (K.stat("processed"), "abc", False),
    (K.stat("processed"), "9223372036854775807", False),
    (K.stat("failed"), "list", True),
    (K.stat("processed", "{W}"), "set", False),
    (K.stat("failed", "{W}"), "1.5", True),
    (K.failed, "not a list", True),
    (K.inprogress("{W}"), "hash", False),  # a hash, but not the job: counted as not ours
    (K.inprogress("{W}"), "set", False),
    (K.worker("{W}"), "list", False),  # SET replaces these whatever they held: no BadKey
    ("@status", "hash", False),
]


@pytest.mark.parametrize(("key", "kind", "fail"), CLOBBERED)
def test_a_wrong_typed_key_met_when_recording_an_outcome_never_kills_the_worker(
    conn: Any, caplog: pytest.LogCaptureFixture, key: str, kind: str, fail: bool
) -> None:
    w = labqueue.Worker("default", conn, poll_interval=0.05)
    q = labqueue.Queue("default", conn)
    key = key.replace("{W}", w.id)
    text = {} if kind in ("hash", "list", "set") else {"text": kind}
    job = q.enqueue(Clobber, key=key, kind=kind, fail=fail, **text)
    key = K.status(job) if key == "@status" else key
    after = q.enqueue(Done)
    with caplog.at_level(logging.INFO, "labqueue"):
        assert w.work(burst=True) == 2
    done = conn.lrange(DONE, 0, -1)
    assert done == ([after] if fail else [job, after])
    failed = [r.job_id for r in labqueue.FailedStore(conn).all()]
    assert failed == ([job] if fail else [])
    assert conn.keys(K.inprogress("*")) == [] and conn.llen(K.queue("default")) == 0
    moved = aside(conn)
    replaced = key in (K.worker(w.id), K.status(job)) or (kind == "hash" and "inprogress" in key)
    if replaced:
        assert moved == {}
    else:
        assert list(moved) == [key.encode()] and moved[key.encode()][0] == type_of_kind(kind)
        said = [m for m in warnings(caplog) if "moved it aside" in m]
        assert len(said) == 1 and key in said[0], warnings(caplog)
    if key == K.stat("failed" if fail else "processed"):
        assert conn.get(key) == ("1" if fail else "2")  # both counted, in the fresh counter


def type_of_kind(kind: str) -> str:
    return kind if kind in ("hash", "list", "set") else "string"


def test_a_bad_delayed_entry_never_stops_the_others(
    conn: Any, caplog: pytest.LogCaptureFixture
) -> None:
    now = math.floor(time.time())
    q = labqueue.Queue("default", conn)
    good = [q.enqueue_at(now - 30, Done), q.enqueue_at(now - 1, Done)]
    conn.zadd(K.delayed_schedule, {str(now - 20): now - 20, "not-a-number": now - 10})
    conn.set(K.delayed(now - 20), "not a list")  # a delayed:<ts> that is not a list
    conn.rpush(K.delayed_prefix + "not-a-number", '{"class":"Hard::Done","queue":"default"}')
    conn.zadd(K.delayed_schedule, {str(now - 5): math.inf})  # never due; never hurries
    conn.rpush(K.delayed(now - 5), '{"class":"Hard::Done","queue":"default"}')
    with caplog.at_level(logging.INFO, "labqueue"):
        moved, soonest = move_due(conn, K)
        assert moved == 3 and soonest is None
        assert move_due(conn, K) == (0, None)
    assert sorted(conn.zrange(K.delayed_schedule, 0, -1)) == [str(now - 5)]
    assert aside(conn) == {K.delayed(now - 20).encode(): ("string", b"not a list")}
    said = [m for m in warnings(caplog) if "moved it aside" in m]
    assert len(said) == 1 and K.delayed(now - 20) in said[0]
    assert labqueue.Worker("default", conn).work(burst=True) == 3
    assert set(good) <= set(conn.lrange(DONE, 0, -1))


def test_a_delayed_job_for_a_wrong_typed_queue_waits_and_the_rest_move(conn: Any) -> None:
    now = math.floor(time.time())
    conn.hset(K.queue("other"), "not", "a list")
    for queue in ("other", "default", "default"):
        conn.rpush(K.delayed(now - 3), f'{{"class":"Hard::Done","queue":"{queue}"}}')
    conn.zadd(K.delayed_schedule, {str(now - 3): now - 3})
    assert move_due(conn, K) == (3, None)  # the bad queue set aside, then all three moved
    assert conn.llen(K.queue("other")) == 1 and conn.llen(K.queue("default")) == 2
    assert list(aside(conn)) == [K.queue("other").encode()]


def test_the_mover_reports_a_lasting_problem_once_and_never_hurries(conn: Any) -> None:
    now = math.floor(time.time())
    conn.zadd(K.delayed_schedule, {str(now - 5): math.inf, "nan": now + 3600})
    errors: list[Exception] = []
    mover = DelayedMover(conn, K, threading.Event(), errors.append, max_pause=0.5)
    assert [mover.tick() for _ in range(3)] == [0.5, 0.5, 0.5]  # nothing soon: no hot loop
    broken = DelayedMover(Broken(), K, threading.Event(), errors.append, max_pause=0.5)
    assert [broken.tick() for _ in range(5)] == [0.5] * 5
    assert len(errors) == 1 and broken.failing and BUDGET > 0


class Broken:
    """A connection whose every command fails the same way (an ACL refusing EVALSHA)."""

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        raise redis.ResponseError("NOPERM this user has no permissions to run 'evalsha'")


def test_producers_raise_a_clear_error_and_write_nothing(conn: Any) -> None:
    conn.hset(K.queue("default"), "not", "a list")
    conn.set(K.delayed_schedule, "not a zset")
    before = contents(conn)
    q = labqueue.Queue("default", conn)
    with pytest.raises(labqueue.BadKey, match="queue:default holds a hash"):
        q.enqueue(Done)
    with pytest.raises(labqueue.BadKey, match="delayed_queue_schedule holds a string"):
        q.enqueue_in(60, Done)
    assert contents(conn) == before
    assert type_of(conn, K.queue("default")) == "hash"


def test_a_side_thread_problem_is_logged_once_not_at_every_beat(
    conn: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The heartbeat hash clobbered while a job runs: the heartbeat thread fails at every beat
    (every 20 ms here), and says so once."""
    w = labqueue.Worker("default", conn, poll_interval=0.05, heartbeat_interval=0.02)
    labqueue.Queue("default", conn).enqueue(Clobber, key=K.heartbeat, kind="stall", text="x")
    with caplog.at_level(logging.INFO, "labqueue"):
        assert w.work(burst=True) == 1
    # the heartbeat is BEAT, whose preflight names the key (a plain pipeline said WRONGTYPE)
    said = [m for m in warnings(caplog) if "heartbeat holds a string" in m]
    assert len(said) == 1, warnings(caplog)


def test_bytes_that_are_not_utf8_stop_neither_the_mover_nor_a_release(conn: Any) -> None:
    """Found by the content rule test: a delayed item that is not UTF-8 (fakeredis' cjson
    raised on it, stopping every delayed job; Redis' wrote a record no reader could decode),
    and a dead worker's in-progress payload that is not UTF-8 (its release, at start-up,
    killed the worker decoding the payload it returns)."""
    now = math.floor(time.time())
    conn.zadd(K.delayed_schedule, {str(now - 9): now - 9})
    conn.rpush(K.delayed(now - 9), b"\x80 not text", b'{"class":"Hard::Done","queue":"default"}')
    dead = "elsewhere:1:default"
    conn.sadd(K.workers, dead)
    conn.hset(K.heartbeat, dead, "2000-01-01T00:00:00+00:00")  # dead for long
    conn.hset(K.inprogress(dead), mapping={"queue": "default", "payload": b"\xff\xfe"})
    w = labqueue.Worker("default", conn, poll_interval=0.05)
    assert w.work(burst=True) == 2 and w.failed == 1  # the delayed job ran, the bytes failed
    payloads = [r.payload for r in labqueue.FailedStore(conn).all()]
    assert "not UTF-8, in hex: 80206e6f742074657874" in payloads  # the mover's record
    assert conn.lrange(DONE, 0, -1) == ["-"] and conn.zcard(K.delayed_schedule) == 0
