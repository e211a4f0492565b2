"""Jobs for the concurrency-limit tests, in-process and in worker subprocesses
(``--import limit_jobs``). Each measures how many jobs of its limiter run at once itself: it
adds one to a counter when it starts (keeping the highest value seen, atomically) and takes
one off when it ends, so the peak is what the jobs saw, whichever process ran them."""

from __future__ import annotations

import time

import labqueue

RUNNING = "labqueue-test:limit:running"
PEAK = "labqueue-test:limit:peak"
DONE = "labqueue-test:limit:done"
FREE_DONE = "labqueue-test:limit:free-done"
STARTED = "labqueue-test:limit:started"
GO = "labqueue-test:limit:go"  #: set it to let every Held job finish

#: INCR the running count and keep its maximum in PEAK, in one atomic step.
_ENTER = """
local n = redis.call('INCR', KEYS[1])
if n > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], n) end
return n
"""


class Counted(labqueue.Job):
    """Runs ``seconds`` (default 0.02) between entering and leaving the count."""

    def perform(self) -> None:
        r = self.connection
        assert r is not None
        r.eval(_ENTER, 2, RUNNING, PEAK)
        try:
            time.sleep(float(self.args.get("seconds", 0.02)))
        finally:
            r.decr(RUNNING)
        r.rpush(DONE, str(self.args.get("tag", "-")))


@labqueue.job("tests.limits.Erp", max_concurrency=2, limiter="tests-erp")
class Erp(Counted):
    """At most 2 at once, shared with ErpToo."""


@labqueue.job("tests.limits.ErpToo", max_concurrency=2, limiter="tests-erp")
class ErpToo(Counted):
    """A second class on the same limiter: the 2 slots are shared."""


@labqueue.job("tests.limits.Free")
class Free(labqueue.Job):
    """No limit."""

    def perform(self) -> None:
        assert self.connection is not None
        self.connection.rpush(FREE_DONE, str(self.args.get("tag", "-")))


@labqueue.job("tests.limits.Held", max_concurrency=1, limiter="tests-held")
class Held(labqueue.Job):
    """One at a time; each runs until GO is set (or ``seconds``, default 30)."""

    def perform(self) -> None:
        r = self.connection
        assert r is not None
        r.rpush(STARTED, str(self.args.get("tag", "-")))
        r.eval(_ENTER, 2, RUNNING, PEAK)
        deadline = time.monotonic() + float(self.args.get("seconds", 30))
        try:
            while not r.get(GO) and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            r.decr(RUNNING)
        r.rpush(DONE, str(self.args.get("tag", "-")))
