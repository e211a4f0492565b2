"""Three simulated hosts, two workers each, one Redis: drained, a host killed, a host cut off.

Each host has its own hostname and pid namespace (so workers on different hosts are judged
by their heartbeats alone, as on real machines) and its own fault proxy to Redis. Workers
beat every 0.3 s and are judged dead after 2.5 s without a beat. A heartbeat is written in
whole seconds (Resque's format), so a beat can look up to 1 s older than it is: a worker
is released between dead-after - 1 s - one beat and dead-after + one beat after it died,
and a live one is safe while a beat never takes longer than dead-after - 1 s to land.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import labqueue
from labqueue.embedded import EmbeddedRedis
from labqueue.keys import Keys
from labqueue.testing import hosts_unavailable
from labqueue.testing.cluster import Cluster, holders
from labqueue.testing.jobs import Nap

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(hosts_unavailable() is not None, reason=str(hosts_unavailable())),
]

K = Keys()
LOG = "labqueue-test:naps"
DEAD_AFTER, HEARTBEAT = 2.5, 0.3
#: Resque's heartbeat format keeps whole seconds: a beat looks up to this much older.
STAMP = 1.0


@pytest.fixture
def cluster(real: redis.Redis, redis_server: EmbeddedRedis, tmp_path: Path) -> Iterator[Cluster]:
    with Cluster(redis_server.port, tmp_path, heartbeat=HEARTBEAT, dead_after=DEAD_AFTER) as c:
        c.wait_registered(real)
        yield c


def _wait(condition: Any, timeout: float, what: str) -> float:
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < timeout, f"not {what} after {timeout} s"
        time.sleep(0.02)
    return time.monotonic() - start


def _naps(client: redis.Redis, count: int, seconds: float, **extra: Any) -> list[str]:
    items = [{"seconds": seconds, "log": LOG, **extra} for _ in range(count)]
    return labqueue.Queue("multi", client).enqueue_many(Nap, items)


def _runs(client: redis.Redis) -> list[dict[str, Any]]:
    """Every finished run of a Nap: {id, host, event: end, at}."""
    records = (json.loads(r) for r in client.lrange(LOG, 0, -1))
    return [r for r in records if r["event"] == "end"]


def _complete(client: redis.Redis, ids: list[str]) -> bool:
    statuses = labqueue.get_statuses(client, ids)
    return all(s is not None and s.status == labqueue.JobStatus.COMPLETE for s in statuses.values())


def test_three_hosts_drain_one_queue(cluster: Cluster, real: redis.Redis) -> None:
    ids = _naps(real, 60, 0.05)
    _wait(lambda: _complete(real, ids), 30, "all complete")
    hosts = Counter(run["host"] for run in _runs(real))
    assert set(hosts) == {"host-a", "host-b", "host-c"} and sum(hosts.values()) == 60
    assert int(real.get(K.stat("processed"))) == 60
    workers = {labqueue.keys.WorkerId.parse(w).host for w in real.smembers(K.workers)}
    assert workers == {"host-a", "host-b", "host-c"}


def test_a_killed_hosts_jobs_come_back_after_dead_after_never_before(
    cluster: Cluster, real: redis.Redis
) -> None:
    ids = _naps(real, 6, DEAD_AFTER + 1.5)
    _wait(lambda: len(holders(real)) == 6, 10, "six jobs running")
    time.sleep(DEAD_AFTER + 0.2)  # longer than dead-after, every host alive: nothing moves
    assert len(holders(real)) == 6 and real.llen(K.queue("multi")) == 0
    theirs = {job for wid, job in holders(real).items() if wid.startswith("host-c:")}
    assert len(theirs) == 2
    killed = time.monotonic()
    cluster.kill("host-c")
    assert cluster.alive("host-c") == 0
    back = _wait(lambda: not any(w.startswith("host-c:") for w in holders(real)), 10, "released")
    print(f"host-c's jobs came back {back:.2f} s after the kill (dead after {DEAD_AFTER} s)")
    assert DEAD_AFTER - STAMP - HEARTBEAT <= back <= DEAD_AFTER + 3 * HEARTBEAT + 1.0
    _wait(lambda: _complete(real, ids), 30, "all complete")
    finished = Counter(run["id"] for run in _runs(real))
    assert all(finished[job] == 1 for job in ids)  # host-c never finished its two
    assert {run["host"] for run in _runs(real) if run["id"] in theirs} <= {"host-a", "host-b"}
    assert int(real.get(K.stat("processed"))) == 6
    assert time.monotonic() - killed < 20


def test_a_healed_partition_does_not_count_or_fail_a_job_twice(
    cluster: Cluster, real: redis.Redis
) -> None:
    """host-c is cut off (blackholed, held) for longer than dead-after: its jobs go back to
    the queue and hosts a and b finish them. When the partition heals, host-c's held finish
    (a failure: its Nap fails on host-c) reaches Redis: it must neither count the job again
    nor mark a completed job failed."""
    ids = _naps(real, 6, 1.0, fail_on="host-c")
    _wait(lambda: len(holders(real)) == 6, 10, "six jobs running")
    theirs = {job for wid, job in holders(real).items() if wid.startswith("host-c:")}
    cluster.link("host-c").blackhole(DEAD_AFTER + 3.5)
    _wait(lambda: _complete(real, ids), 15, "the others finished every job")
    assert cluster.link("host-c").blackholed  # all done while host-c was still cut off
    _wait(lambda: not cluster.link("host-c").blackholed, 5, "healed")
    _wait(lambda: len(_runs(real)) == 8, 5, "host-c's two runs recorded")
    time.sleep(0.5)  # host-c's held finishes have reached Redis
    runs = Counter((run["id"], run["host"] == "host-c") for run in _runs(real))
    assert all(runs[(job, True)] == 1 and runs[(job, False)] == 1 for job in theirs)
    assert _complete(real, ids)
    assert real.llen(K.failed) == 0 and int(real.get(K.stat("failed")) or 0) == 0
    assert int(real.get(K.stat("processed"))) == 6
    assert cluster.alive("host-c") == 2  # and host-c's workers carry on
    more = _naps(real, 12, 0.2)
    _wait(lambda: _complete(real, more), 15, "the next jobs complete")
    assert "host-c" in {run["host"] for run in _runs(real)[8:]}
