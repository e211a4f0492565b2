"""Retry jitter: jobs that failed together no longer retry together (issue 12).

200 jobs fail in the same instant (the ERP went down under all of them). On the exact
schedule (``retry_jitter = None``) every retry is due in the same second, a herd; with full
jitter they spread over the whole backoff, with equal jitter over its second half. Measured
on fakeredis and a real redis-server, from the schedule and from the retried runs themselves.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

import pytest
from waiting import wait_for

import labqueue
from labqueue.delayed import delayed_jobs
from labqueue.worker import retry

HERD = 200
RAN = "labqueue-test:jitter:ran"  #: "id attempt epoch" per run


@labqueue.job("Jitter::Herd")
class Herd(labqueue.Job):
    """Fails its first run (the ERP is down), succeeds the second; records each run."""

    retry_limit = 1
    retry_backoff = (10.0,)
    retry_on = (ConnectionError,)

    def perform(self) -> None:
        attempt = int(self.payload.extra.get("attempts", 0)) + 1
        self.connection.rpush(RAN, f"{self.job_id} {attempt} {time.time()!r}")
        if attempt == 1:
            raise ConnectionError("the ERP is down")


@labqueue.job("Jitter::HerdExact")
class HerdExact(Herd):
    retry_jitter = None


@labqueue.job("Jitter::HerdEqual")
class HerdEqual(Herd):
    retry_jitter = "equal"


@labqueue.job("Jitter::Soon")
class Soon(Herd):
    """The same, due within a second: for watching the retried runs themselves."""

    retry_backoff = (1.0,)


@labqueue.job("Jitter::SoonExact")
class SoonExact(Soon):
    retry_jitter = None


def spread(times: list[float]) -> dict[str, float]:
    """Range, and the most that fall in one second (a herd: all of them)."""
    seconds = Counter(int(t) for t in times)
    return {"range": max(times) - min(times), "busiest second": max(seconds.values())}


def fail_together(conn: Any, job: type[Herd]) -> tuple[float, list[float]]:
    """Enqueue HERD jobs and fail them all in one burst: (how long the burst took, each
    retry's due time from the burst's start)."""
    labqueue.Queue("herd", conn).enqueue_many(job, [{"n": i} for i in range(HERD)])
    started = time.time()
    worker = labqueue.Worker("herd", conn, scheduler_interval=None, rng=random.Random(7))
    assert worker.work(burst=True) == HERD
    burst = time.time() - started
    return burst, [d.due - started for d in delayed_jobs(conn, limit=HERD)]


def test_the_default_is_full_jitter_and_bad_settings_fail_at_registration() -> None:
    assert labqueue.Job.retry_jitter == "full" and retry.RETRY_JITTERS == ("full", "equal", None)
    for bad in ("fulll", True, 0.5):

        class Bad(labqueue.Job):
            retry_jitter = bad  # type: ignore[assignment]

        with pytest.raises(labqueue.ConfigurationError, match="retry_jitter must be"):
            labqueue.job("Jitter::Bad")(Bad)


def test_jitter_stays_in_its_window_and_repeats_with_its_seed() -> None:
    a, b = random.Random(42), random.Random(42)
    full = [retry.jittered(60.0, "full", a) for _ in range(1000)]
    assert full == [retry.jittered(60.0, "full", b) for _ in range(1000)]
    assert all(0 <= d <= 60 for d in full) and max(full) - min(full) > 55
    equal = [retry.jittered(60.0, "equal", a) for _ in range(1000)]
    assert all(30 <= d <= 60 for d in equal) and max(equal) - min(equal) > 27
    assert retry.jittered(60.0, None, a) == 60.0 and retry.jittered(0.0, "full", a) == 0.0
    payload = labqueue.Payload.new("Jitter::Herd", [{}])
    plans = [
        retry.plan(Herd, payload, "q", ConnectionError(), 1000.0, random.Random(3))
        for _ in range(2)
    ]
    assert plans[0] == plans[1] and plans[0] is not None and 1000 <= (plans[0].due or 0) <= 1010


def test_a_herd_that_failed_together_is_due_together_only_without_jitter(conn: Any) -> None:
    burst, exact = fail_together(conn, HerdExact)
    conn.flushall()
    _, full = fail_together(conn, Herd)
    conn.flushall()
    _, equal = fail_together(conn, HerdEqual)
    figures = {"exact": spread(exact), "full": spread(full), "equal": spread(equal)}
    print(f"\n{HERD} retries due, backoff 10 s (the herd failed within {burst:.2f} s): {figures}")
    # exactly as they failed, 10 s later: however long the burst took, a herd again
    assert all(10.0 <= d <= 10.0 + burst for d in exact), (burst, min(exact), max(exact))
    assert all(0 <= d <= 10.5 for d in full) and figures["full"]["range"] > 9.0
    assert figures["full"]["busiest second"] <= HERD // 5  # ~20 a second, not 200
    assert all(4.9 <= d <= 10.5 for d in equal) and figures["equal"]["range"] > 4.5
    assert figures["equal"]["busiest second"] <= HERD // 3


def retried_runs(conn: Any, job: type[Herd], count: int = 60) -> tuple[float, list[float]]:
    """Run ``count`` jobs that fail together, in a live worker (its mover on), until every
    retry has run: (first to last failed run, the times of the retried runs)."""
    conn.delete(RAN)
    labqueue.Queue("herd", conn).enqueue_many(job, [{"n": i} for i in range(count)])
    worker = labqueue.Worker(
        "herd", conn, poll_interval=0.02, scheduler_interval=0.02, rng=random.Random(11)
    )
    thread = threading.Thread(target=worker.work, daemon=True)
    thread.start()
    try:
        wait_for(lambda: conn.llen(RAN) >= 2 * count, timeout=20, what="every retry to run")
    finally:
        worker.stop()
        thread.join(10)
    runs = [line.split() for line in conn.lrange(RAN, 0, -1)]
    failed = sorted(float(at) for _, attempt, at in runs if attempt == "1")
    return failed[-1] - failed[0], sorted(float(at) for _, attempt, at in runs if attempt == "2")


def test_the_retried_runs_themselves_come_as_a_herd_only_without_jitter(conn: Any) -> None:
    burst, exact = retried_runs(conn, SoonExact)
    _, full = retried_runs(conn, Soon)
    gaps = {"exact": exact[-1] - exact[0], "full": full[-1] - full[0]}
    print(f"\n60 retries, backoff 1 s, failed within {burst:.2f} s: first to last retry {gaps}")
    assert gaps["exact"] < burst + 0.25  # the herd again, as close together as it failed
    assert gaps["full"] > 0.6  # spread over the backoff
