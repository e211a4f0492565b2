"""Redis restart: a redis-server with AOF on is killed and started again while workers run.

Every job enqueued before and after is done, no worker dies, and each worker logs the outage
in one line (and its end in another): no traceback, no crash loop. A job that was recording
its id when Redis went away fails that run and is retried (its class has retries).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import redis
from fault_jobs import DONE, MarkRetrying
from fault_tools import K, leftovers, statuses, workers
from waiting import wait_for

import labqueue
from labqueue.embedded import EmbeddedRedis, find_redis_server, free_port


@pytest.fixture
def aof_redis(tmp_path: Path) -> EmbeddedRedis:
    binary = find_redis_server()
    if binary is None:
        pytest.skip("no redis-server binary on this machine")
    data = tmp_path / "data"
    data.mkdir()
    persist = ("--appendonly", "yes", "--appendfsync", "always", "--dir", str(data))
    server = EmbeddedRedis(binary, port=free_port(), extra_args=persist).start()
    yield server
    server.stop()


def client(server: EmbeddedRedis) -> redis.Redis:
    return redis.Redis.from_url(server.url, decode_responses=True)


@pytest.mark.slow
def test_workers_ride_out_a_redis_restart(
    aof_redis: EmbeddedRedis, worker_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**worker_env, "REDIS_URL": aof_redis.url}
    before = labqueue.Queue("default", client(aof_redis)).enqueue_many(
        MarkRetrying, [{"ms": 10}] * 400
    )
    args = ("--queues", "default", "--import", "fault_jobs")
    with workers(env, tmp_path / "logs", *args) as group:
        procs = [group.start(), group.start()]
        wait_for(lambda: client(aof_redis).llen(DONE) >= 50, what="50 jobs done")
        assert aof_redis.process is not None
        aof_redis.process.send_signal(signal.SIGKILL)  # no goodbye; the AOF has every write
        aof_redis.process.wait(10)
        port = aof_redis.port
        time.sleep(1.5)
        assert [p.poll() for p in procs] == [None, None], group.log_text()[-3000:]
        aof_redis.process = None
        aof_redis.start()  # the same port and data directory
        assert aof_redis.port == port
        r = client(aof_redis)
        after = labqueue.Queue("default", r).enqueue_many(MarkRetrying, [{"ms": 1}] * 200)
        wanted = set(before) | set(after)
        wait_for(lambda: wanted <= set(r.lrange(DONE, 0, -1)), timeout=60, what="every job")
        wait_for(lambda: not any(leftovers(r, "default").values()), what="nothing left")
        group.signal_all(signal.SIGTERM)
        codes = group.wait_all(30)
        log = group.log_text()
    done = r.lrange(DONE, 0, -1)
    print(
        f"\nredis restart: jobs {len(wanted)}, done {len(set(done))}, lost "
        f"{len(wanted - set(done))}, run twice {len(done) - len(set(done))}, "
        f"retried {r.get(K.stat('failed')) or 0} runs"
    )
    assert set(done) == wanted and codes == [0, 0], log[-3000:]
    assert statuses(r, [*before, *after]) == {int(labqueue.JobStatus.COMPLETE): len(wanted)}
    assert log.count("Redis unreachable") == 2, log[-3000:]  # one line per worker
    assert log.count("Redis is back") >= 2 and "Traceback" not in log, log[-3000:]
    print("\n".join(line for line in log.splitlines() if "Redis" in line))
