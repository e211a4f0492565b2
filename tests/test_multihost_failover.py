"""Durable enqueues (WAIT) and a Redis failover under load (issue 17)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis

import labqueue
from labqueue import wire
from labqueue.errors import ConfigurationError, NotReplicated
from labqueue.keys import Keys
from labqueue.queue import Payload, enqueue_together
from labqueue.testing.failover import failover_under_load
from labqueue.testing.jobs import Tick
from labqueue.testing.sentinel import SentinelStack

K = Keys()


def test_call_many_reads_every_reply_before_raising(real: redis.Redis) -> None:
    real.set("text", "not a number")
    with pytest.raises(redis.ResponseError):
        wire.call_many(real, ("INCR", "text"), ("SET", "after", "1"))
    assert real.get("after") == "1"  # the second command ran, and its reply was read
    assert wire.call_many(real, ("PING",), ("GET", "after")) == ["PONG", "1"]


def test_durable_enqueue_returns_once_the_replica_has_the_job(sentinel_stack: Any) -> None:
    queue = labqueue.Queue("durable", labqueue.connect(sentinel_stack.url), durable=True)
    replica = next(n for n in sentinel_stack.nodes if n.port != sentinel_stack.primary_port())
    on_replica = redis.Redis(port=replica.port, decode_responses=True)
    for _ in range(20):
        job_id = queue.enqueue(Tick)
        assert on_replica.exists(K.status(job_id))  # there already, when enqueue returned
    ids = queue.enqueue_many(Tick, [{"n": i} for i in range(50)])
    assert on_replica.llen(K.queue("durable")) == 70 and on_replica.exists(K.status(ids[-1]))
    job_id = queue.enqueue_in(60, Tick)
    assert on_replica.exists(K.status(job_id))


def test_without_a_replica_a_durable_enqueue_says_so_and_the_job_is_queued(
    real: redis.Redis,
) -> None:
    queue = labqueue.Queue("durable", real, durable=True, wait_timeout=0.05)
    with pytest.raises(NotReplicated, match="0 of 1 replicas"):
        queue.enqueue(Tick)
    assert real.llen(K.queue("durable")) == 1
    plain = labqueue.Queue("plain", real)
    plain.enqueue(Tick)  # not durable: no WAIT
    with pytest.raises(NotReplicated, match="0 of 2 replicas"):
        plain.enqueue(Tick, wait_replicas=2)
    with pytest.raises(NotReplicated) as caught:
        queue.enqueue_many(Tick, [{"n": 1}, {"n": 2}])
    assert len(caught.value.job_ids) == 2 and caught.value.wanted == 1
    with pytest.raises(NotReplicated):
        enqueue_together([(queue, Payload.new("labqueue.testing.Tick", [{}]))])
    assert real.llen(K.queue("durable")) == 4


def test_durable_settings_are_checked_early() -> None:
    fake = fakeredis.FakeRedis(decode_responses=True)
    with pytest.raises(ConfigurationError, match="replicas"):
        labqueue.Queue("q", fake, durable=True)
    with pytest.raises(ConfigurationError, match="replicas"):
        labqueue.Queue("q", fake).enqueue(Tick, wait_replicas=1)
    with pytest.raises(ConfigurationError, match="wait_replicas"):
        labqueue.Queue("q", fake, wait_replicas=-1)
    with pytest.raises(ConfigurationError, match="wait_timeout"):
        labqueue.Queue("q", fake, wait_timeout=0)
    assert labqueue.Queue("q", fake).wait_replicas == 0


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_failover_under_load_loses_acknowledged_enqueues_only_without_wait(
    redis_server: Any, tmp_path: Path
) -> None:
    """Kill the primary under load: the workers and producers carry on with the promoted
    replica, no restart, within the failover time plus one backoff. Without WAIT the jobs
    acknowledged in the replica's last ``replica_delay`` are gone; with WAIT, none."""
    delay = 0.05
    runs = {}
    for durable in (False, True):
        stack = SentinelStack(redis_server.binary, replica_delay=delay)
        run = failover_under_load(stack, tmp_path / f"durable-{durable}", durable=durable)
        runs[durable] = run
        print(
            f"durable={durable}: acked {len(run.acked)}, lost {len(run.lost)}, failover "
            f"{run.failover_s:.2f} s, workers out {run.worker_outages}, "
            f"{run.per_enqueue_ms:.2f} ms per acknowledged enqueue"
        )
        assert run.workers_survived
        assert len(run.worker_outages) == 2  # each worker: one outage, then back
        assert all(out <= run.failover_s + 2.0 + 1.5 for out in run.worker_outages)
        assert run.unfinished == []
        assert len(run.acked) > 0 and run.refused > 0  # enqueues failed during the failover
    plain, durable_run = runs[False], runs[True]
    assert max(plain.acked_at.values()) > plain.killed_at + plain.failover_s  # and resumed
    # the durable producer reached the promoted replica too, which had no replica to confirm
    assert durable_run.not_replicated > 0
    assert durable_run.lost == []
    # what asynchronous replication lost were exactly the last acknowledgements before the kill
    for job_id in plain.lost:
        assert plain.killed_at - delay - 0.25 <= plain.acked_at[job_id] <= plain.killed_at + 0.05
