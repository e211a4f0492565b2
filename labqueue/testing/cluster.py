"""Several simulated hosts, each with its workers and its own faulty link to one Redis.

    cluster = Cluster(redis_port, workdir, dead_after=1.5, heartbeat=0.3).start()
    cluster.link("host-c").blackhole(5)      # a partition between host-c and Redis
    cluster.kill("host-b")                   # a power cut: every worker of host-b at once
    cluster.stop()

Each host reaches Redis through a :class:`~labqueue.testing.FaultProxy` of its own, so a
fault on one host's link leaves the others alone, as a network partition would.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis

from .. import procs
from ..keys import Keys
from .faultproxy import LOOPBACK, FaultProxy
from .hosts import SimHost

NAMES = ("host-a", "host-b", "host-c")


@dataclass
class Cluster:
    """``hosts`` x ``per_host`` workers on ``queues``, all on the Redis at ``redis_port``."""

    redis_port: int
    workdir: Path
    names: tuple[str, ...] = NAMES
    per_host: int = 2
    queues: str = "multi"
    heartbeat: float = 0.3
    dead_after: float = 1.5
    hosts: dict[str, SimHost] = field(default_factory=dict)
    links: dict[str, FaultProxy] = field(default_factory=dict)
    workers: dict[str, list[subprocess.Popen[bytes]]] = field(default_factory=dict)

    @classmethod
    def for_url(cls, url: str, workdir: Path, **settings: Any) -> Cluster:
        """A cluster on the loopback Redis at ``url`` (``redis://127.0.0.1:PORT/0``)."""
        parts = urlsplit(url)
        if parts.hostname not in LOOPBACK or parts.port is None:
            raise ValueError(f"a cluster needs a loopback redis:// URL with a port, not {url!r}")
        return cls(parts.port, Path(workdir), **settings)

    def start(self) -> Cluster:
        try:
            for name in self.names:
                self.links[name] = FaultProxy(self.redis_port).start()
                self.hosts[name] = SimHost(name, self.workdir).start()
                self.workers[name] = [self._worker(name, i) for i in range(self.per_host)]
        except BaseException:
            self.stop()
            raise
        return self

    def _worker(self, name: str, index: int) -> subprocess.Popen[bytes]:
        argv = [
            *procs.python_cmd("labqueue.testing.hostworker"),
            *("--queues", self.queues, "--url", self.links[name].url),
            *("--heartbeat", str(self.heartbeat), "--dead-after", str(self.dead_after)),
        ]
        env = procs.child_env({"REDIS_URL": self.links[name].url})
        return self.hosts[name].run(argv, env=env, name=f"worker-{index}")

    def wait_registered(self, client: redis.Redis, timeout: float = 20.0) -> None:
        """Until every worker of every host is registered in Redis."""
        want = {name for name in self.names}
        count = len(self.names) * self.per_host

        def ready() -> bool:
            ids = [str(w) for w in client.smembers(Keys().workers)]
            return len(ids) >= count and {w.split(":")[0] for w in ids} >= want

        procs.wait_until(ready, timeout, interval=0.05, what="workers registered")

    def link(self, name: str) -> FaultProxy:
        return self.links[name]

    def kill(self, name: str) -> float:
        """Kill every process of host ``name`` at once; returns the time (time.time())."""
        return self.hosts[name].kill()

    def log(self, name: str) -> str:
        """Every worker log of host ``name``, one after the other."""
        paths = sorted(self.workdir.glob(f"{name}-worker-*.log"))
        return "\n".join(p.read_text(errors="replace") for p in paths)

    def alive(self, name: str) -> int:
        return sum(p.poll() is None for p in self.workers.get(name, []))

    def stop(self) -> None:
        for host in self.hosts.values():
            with contextlib.suppress(Exception):
                host.stop(grace=3)
        for link in self.links.values():
            link.stop()
        self.hosts.clear()
        self.links.clear()

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def holders(client: redis.Redis) -> dict[str, str]:
    """Worker id -> the id of the job its in-progress hash holds, for every worker."""
    prefix = Keys().inprogress_prefix
    out = {}
    for key in client.scan_iter(match=prefix + "*"):
        raw = client.hget(key, "payload")
        if raw:
            out[str(key)[len(prefix) :]] = str(json.loads(raw).get("id"))
    return out
