"""Issue 15 item 1: a worker that may not SUBSCRIBE (an ACL user limited to ``resque:*``
channels, or to none; a proxy without pub/sub) logs one warning and polls every
``poll_interval``: before, it spun (thousands of connections and EVALSHA + LPOP a second,
nothing logged). Counted on a real redis-server with INFO commandstats; the proxy case on
fakeredis, counting the worker's steps."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis
from hard_jobs import DONE, Done, FailsOnce
from waiting import wait_for

import labqueue
from labqueue.embedded import EmbeddedRedis
from labqueue.worker import loop

USER, PASSWORD = "jobs", "jobs-secret"


@pytest.fixture
def admin(redis_server: EmbeddedRedis, redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.execute_command("ACL", "DELUSER", USER)
    client.close()


def acl_user(admin: redis.Redis, url: str, *channel_rules: str) -> redis.Redis:
    """A client of an ACL user allowed every command on resque:* (and the tests') keys, and
    only the pub/sub channels ``channel_rules`` allow."""
    keys = ("~resque:*", "~labqueue-test:*")
    admin.execute_command(
        "ACL", "SETUSER", USER, "reset", "on", f">{PASSWORD}", *keys, *channel_rules, "+@all"
    )
    return redis.Redis.from_url(
        url.replace("redis://", f"redis://{USER}:{PASSWORD}@"), decode_responses=True
    )


class Running:
    """A non-burst worker in a thread, stopped on the way out."""

    def __init__(self, worker: labqueue.Worker) -> None:
        self.worker = worker
        self.thread = threading.Thread(target=worker.work, daemon=True)

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.worker.stop()
        self.thread.join(10)
        assert not self.thread.is_alive(), "the worker did not stop"


def idle_commands(admin: redis.Redis, seconds: float) -> tuple[int, int]:
    """EVALSHA calls and new connections while the worker idles ``seconds``."""
    admin.config_resetstat()
    time.sleep(seconds)
    stats = admin.info("commandstats")
    calls = int(stats.get("cmdstat_evalsha", {}).get("calls", 0))
    return calls, int(admin.info("stats")["total_connections_received"])


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize(
    ("rules", "poll", "woken"),
    [(("resetchannels", "&resque:*"), 3.0, True), (("resetchannels",), 0.25, False)],
    ids=["resque-channels-only", "no-channels"],
)
def test_a_worker_that_may_not_subscribe_polls_and_says_so_once(
    admin: redis.Redis,
    redis_url: str,
    caplog: pytest.LogCaptureFixture,
    rules: tuple[str, ...],
    poll: float,
    woken: bool,
) -> None:
    client = acl_user(admin, redis_url, *rules)
    w = labqueue.Worker("default", client, poll_interval=poll, scheduler_interval=None)
    with caplog.at_level(logging.INFO, "labqueue"), Running(w):
        wait_for(lambda: admin.scard(labqueue.Keys().workers), what="the worker to start")
        time.sleep(0.3)  # its first waits: subscribe, hear the refusal, fall back
        window = 1.5
        steps, connections = idle_commands(admin, window)
        # polling: one step per poll interval (woken: it sleeps on the wake-up channel)
        assert steps <= window / poll + 2, f"{steps} EVALSHA in {window} s: spinning"
        assert connections <= 2, f"{connections} new connections in {window} s"
        job = labqueue.Queue("default", client).enqueue(Done)  # PUBLISH refused: still queued
        started = time.monotonic()
        wait_for(lambda: admin.lrange(DONE, 0, -1) == [job], timeout=10, what="the job")
        took = time.monotonic() - started
    assert took < (1.0 if woken else poll + 1.0), f"the job waited {took:.2f} s"
    said = [m for m in warnings(caplog) if "subscribe" in m.lower()]
    assert len(said) == 1, warnings(caplog)
    assert "polling every" in said[0] and (("keyevent" in said[0]) == woken)


def test_refused_wake_ups_never_fail_a_script_after_its_writes(
    admin: redis.Redis, redis_url: str
) -> None:
    """ENQUEUE, RETRY and MOVE_DUE publish a wake-up after writing: a PUBLISH the ACL refuses
    must not fail them (before: the enqueue raised with the job already queued)."""
    client = acl_user(admin, redis_url, "resetchannels")
    q = labqueue.Queue("default", client)
    jobs = [q.enqueue(Done), q.enqueue(FailsOnce), q.enqueue_at(time.time() - 1, Done)]
    w = labqueue.Worker("default", client, poll_interval=0.05)
    assert w.work(burst=True) == 4  # FailsOnce twice: its retry went straight back
    assert sorted(admin.lrange(DONE, 0, -1)) == sorted(jobs) and w.failed == 1


class NoPubSub:
    """A proxy without pub/sub: every SUBSCRIBE is answered with an error."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def subscribe(self, *channels: Any) -> None:
        raise redis.ResponseError("unknown command 'SUBSCRIBE'")

    def get_message(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("never subscribed")

    def close(self) -> None:
        pass


def test_without_pub_sub_an_idle_worker_polls_every_poll_interval(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    conn = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    monkeypatch.setattr(conn, "pubsub", lambda **kw: NoPubSub())
    steps: list[float] = []
    real_step = loop.Worker._finish_and_fetch

    def counted(self: loop.Worker, *args: Any, **kwargs: Any) -> Any:
        steps.append(time.monotonic())
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(loop.Worker, "_finish_and_fetch", counted)
    w = labqueue.Worker("default", conn, poll_interval=0.2, scheduler_interval=None)
    with caplog.at_level(logging.INFO, "labqueue"), Running(w):
        time.sleep(1.0)
        job = labqueue.Queue("default", conn).enqueue(Done)
        wait_for(lambda: conn.lrange(DONE, 0, -1) == [job], timeout=5, what="the job")
    assert len(steps) <= 1.0 / 0.2 + 4, f"{len(steps)} steps in about a second: spinning"
    said = [m for m in warnings(caplog) if "subscribe" in m.lower()]
    assert len(said) == 1 and "polling every 0.2 s" in said[0], warnings(caplog)


def test_a_notification_that_is_not_utf8_wakes_the_worker_and_no_more(real: redis.Redis) -> None:
    """A push to a key whose name is not UTF-8 (its keyevent carries the name) and a wake-up
    that is not text: before, the idle worker died of a UnicodeDecodeError."""
    w = labqueue.Worker("default", real, poll_interval=0.5, scheduler_interval=None)
    with Running(w) as running:
        wait_for(lambda: real.scard(labqueue.Keys().workers), what="the worker to start")
        time.sleep(0.3)
        real.rpush(b"resque:queue:\xff", b"x")
        real.publish(labqueue.Keys().wakeup_channel, b"\xfe")
        time.sleep(0.3)
        job = labqueue.Queue("default", real).enqueue(Done)
        wait_for(lambda: real.lrange(DONE, 0, -1) == [job], timeout=5, what="the job")
        assert running.thread.is_alive()
