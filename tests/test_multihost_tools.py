"""The tools that simulate more than one machine: the fault proxy and the simulated hosts."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis

from labqueue.embedded import EmbeddedRedis
from labqueue.testing import FaultProxy, SimHost, hosts_unavailable


@pytest.fixture
def proxy(redis_server: EmbeddedRedis) -> Iterator[FaultProxy]:
    with FaultProxy(redis_server.port) as p:
        yield p


def _client(proxy: FaultProxy, timeout: float = 3.0) -> redis.Redis:
    return redis.Redis.from_url(proxy.url, socket_timeout=timeout, retry=None)


def _timed_ping(client: redis.Redis) -> float:
    start = time.monotonic()
    assert client.ping()
    return time.monotonic() - start


def test_proxy_passes_then_delays_both_ways(proxy: FaultProxy) -> None:
    client = _client(proxy)
    assert _timed_ping(client) < 0.5
    proxy.delay(0.1)
    assert _timed_ping(client) >= 0.2  # 0.1 s there, 0.1 s back
    proxy.heal()
    assert _timed_ping(client) < 0.1


def test_blackhole_holds_the_bytes_and_delivers_them_when_it_heals(proxy: FaultProxy) -> None:
    client = _client(proxy)
    client.ping()
    proxy.blackhole(0.8)
    assert proxy.blackholed
    took = _timed_ping(client)  # the reply comes, late: a partition that healed
    assert 0.7 <= took < 2.5
    assert not proxy.blackholed


def test_blackhole_with_drop_loses_the_bytes(proxy: FaultProxy) -> None:
    client = _client(proxy, timeout=0.5)
    client.ping()
    proxy.blackhole(1.0, drop=True)
    with pytest.raises(redis.TimeoutError):
        client.ping()
    assert proxy.stats.dropped > 0


def test_cut_closes_connections_and_refuses_new_ones_for_a_while(proxy: FaultProxy) -> None:
    client = _client(proxy)
    client.ping()
    proxy.cut(0.6)
    with pytest.raises(redis.ConnectionError):
        client.ping()
    with pytest.raises(redis.ConnectionError):
        _client(proxy).ping()  # a new connection, during the cut
    time.sleep(0.7)
    assert _client(proxy).ping()
    assert proxy.stats.cuts >= 1 and proxy.stats.refused >= 1


def test_proxy_refuses_any_address_but_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        FaultProxy(6379, target_host="10.0.0.1")
    with pytest.raises(ValueError, match="loopback"):
        FaultProxy(6379, host="0.0.0.0")


# -- simulated hosts -----------------------------------------------------------------------

needs_hosts = pytest.mark.skipif(hosts_unavailable() is not None, reason=str(hosts_unavailable()))

_SHOW = (
    "import os, socket, time; print(socket.gethostname(), os.getpid(), flush=True); time.sleep(60)"
)
_SPAWN = (
    "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; "
    "time.sleep(60)']); print('spawned', flush=True); time.sleep(60)"
)


@pytest.fixture
def host(tmp_path: Path) -> Iterator[SimHost]:
    h = SimHost("sim-a", tmp_path).start()
    yield h
    h.kill()


def _wait_log(host: SimHost, name: str) -> str:
    deadline = time.monotonic() + 10
    while not (text := host.log_path(name).read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return text


@needs_hosts
def test_a_host_has_its_own_hostname_and_pids(host: SimHost) -> None:
    host.run([sys.executable, "-c", _SHOW], name="show")
    name, pid = _wait_log(host, "show").split()
    assert name == "sim-a" != subprocess.run(["hostname"], capture_output=True, text=True).stdout
    assert int(pid) < 100  # numbered in its own pid namespace (1 is the host's init)


@needs_hosts
def test_killing_a_host_kills_every_process_in_it_at_once(host: SimHost) -> None:
    first = host.run([sys.executable, "-c", _SHOW], name="one")
    host.run([sys.executable, "-c", _SPAWN], name="two")
    assert "spawned" in _wait_log(host, "two")
    inside = host.pids()
    assert host.inner_pid(first) in inside and host.init_pid in inside
    assert len(inside) >= 4  # init, the sleeper, the spawner and its child
    host.kill()
    time.sleep(0.2)
    still = [p for p in inside if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert still == []
    assert host.alive() == [] and not host.running
    with pytest.raises(RuntimeError, match="not running"):
        host.run(["true"])


@needs_hosts
def test_a_host_shares_the_machines_loopback(host: SimHost, redis_server: EmbeddedRedis) -> None:
    ping = (
        f"import redis; print(redis.Redis(port={redis_server.port}).ping(), flush=True); "
        "import time; time.sleep(30)"
    )
    host.run([sys.executable, "-c", ping], name="ping")
    assert _wait_log(host, "ping").strip() == "True"


def test_hosts_unavailable_gives_a_reason_or_none() -> None:
    reason = hosts_unavailable()
    assert reason is None or "unshare" in reason or "root" in reason or "Linux" in reason
