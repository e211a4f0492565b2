"""``--threads N`` past redis-py's default pool size (100 connections since redis-py 8): each
of N threads may hold a connection at once (its job blocked on Redis, its own fetch), and
a pool that cannot open one more raises MaxConnectionsError ("Too many connections"), which
the worker reads as a Redis outage and the job as its failure. The thread pool makes room
for a connection per thread (issue 14, attacked from outside: ``--threads 1000``)."""

from __future__ import annotations

import threading
from typing import Any

from waiting import wait_for

import labqueue
from labqueue.keys import Keys

K = Keys()
THREADS = 120  #: past redis-py 8's default of 100 connections per pool
STARTED = "labqueue-test:many:started"
GO = "labqueue-test:many:go"
DONE = "labqueue-test:many:done"


@labqueue.job("tests.many.Blocked")
class Blocked(labqueue.Job):
    """Holds a connection in BLPOP until the test lets every job go at once."""

    def perform(self) -> None:
        r = self.connection
        assert r is not None
        r.incr(STARTED)
        assert r.blpop([GO], timeout=30) is not None, "never let go"
        r.rpush(DONE, "1")


def test_more_threads_than_a_default_pool_holds_all_run_at_once(conn: Any) -> None:
    q = labqueue.Queue("many", conn)
    for _ in range(THREADS):
        q.enqueue(Blocked)
    worker = labqueue.Worker("many", connection=conn, poll_interval=0.05, threads=THREADS)
    thread = threading.Thread(target=worker.work, kwargs={"burst": True}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: int(conn.get(STARTED) or 0) == THREADS, what="every job", timeout=60)
        conn.rpush(GO, *["go"] * THREADS)
        wait_for(lambda: conn.llen(DONE) == THREADS, what="every job done", timeout=60)
    finally:
        conn.rpush(GO, *["go"] * THREADS)
        thread.join(60)
    assert not thread.is_alive()
    assert conn.llen(K.failed) == 0, conn.lrange(K.failed, 0, 0)
    assert int(conn.get(K.stat("processed")) or 0) == THREADS
