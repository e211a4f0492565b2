"""A Redis that fails over, on loopback: a primary, a replica and three sentinels.

    stack = SentinelStack().start()       # from the redis-server labqueue finds
    stack.url                             # redis+sentinel://127.0.0.1:p1,...:p3/labqueue/0
    stack.kill_primary()                  # SIGKILL, as a power cut would
    stack.wait_failover()                 # seconds until the sentinels name the replica
    stack.stop()

Short timeouts (the primary is judged down after ``down_after_ms`` of silence, 1 s by
default), so a failover takes seconds, not the production minute. ``replica_delay`` puts
a :class:`~labqueue.testing.FaultProxy` with that latency on the replication link: the
replica lags behind the primary by that much, as across a slow or busy network, and a
failover loses the primary's last ``replica_delay`` seconds of writes that nobody WAITed for.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from .. import procs
from ..embedded import EmbeddedRedis, answers, find_redis_server, free_port
from ..errors import ConfigurationError
from .faultproxy import FaultProxy

_SENTINEL_CONF = """port {port}
bind 127.0.0.1
daemonize no
dir {workdir}
logfile {workdir}/sentinel-{port}.log
sentinel monitor {service} 127.0.0.1 {primary} 2
sentinel down-after-milliseconds {service} {down_after}
sentinel failover-timeout {service} {failover_timeout}
sentinel parallel-syncs {service} 1
"""


@dataclass
class SentinelStack:
    """Primary, replica, three sentinels (quorum 2), all on free 127.0.0.1 ports."""

    binary: str = ""
    service: str = "labqueue"
    down_after_ms: int = 1000
    failover_timeout_ms: int = 2000
    replica_delay: float = 0.0
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="labqueue-sent-")))
    nodes: list[EmbeddedRedis] = field(default_factory=list)
    sentinels: list[tuple[int, subprocess.Popen[bytes]]] = field(default_factory=list)
    link: FaultProxy | None = None
    killed: list[int] = field(default_factory=list)

    def start(self, timeout: float = 20.0) -> SentinelStack:
        self.binary = self.binary or find_redis_server() or ""
        if not self.binary:
            raise ConfigurationError("no redis-server binary for the sentinel stack")
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, timeout: float) -> None:
        primary = self._node("primary").start()
        self.nodes.append(primary)
        upstream = primary.port
        if self.replica_delay > 0:
            self.link = FaultProxy(primary.port).start()
            self.link.delay(self.replica_delay)
            upstream = self.link.port
        replica = self._node("replica", "--replicaof", "127.0.0.1", str(upstream)).start()
        self.nodes.append(replica)
        self._wait(lambda: self._linked(replica.port), timeout, "replica in sync")
        for _ in range(3):
            self.sentinels.append(self._sentinel(primary.port))
        self._wait(self._sentinels_ready, timeout, "sentinels agreeing on the primary")

    def _node(self, name: str, *extra: str) -> EmbeddedRedis:
        workdir = self.workdir / name
        workdir.mkdir(parents=True, exist_ok=True)
        return EmbeddedRedis(self.binary, workdir=str(workdir), extra_args=extra)

    def _sentinel(self, primary_port: int) -> tuple[int, subprocess.Popen[bytes]]:
        port = free_port()
        conf = self.workdir / f"sentinel-{port}.conf"
        conf.write_text(
            _SENTINEL_CONF.format(
                port=port,
                workdir=self.workdir,
                service=self.service,
                primary=primary_port,
                down_after=self.down_after_ms,
                failover_timeout=self.failover_timeout_ms,
            )
        )
        proc = subprocess.Popen(
            [self.binary, str(conf), "--sentinel"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=procs.die_with_parent(own_group=True),
        )
        self._wait(lambda: answers(port), 10, f"sentinel on port {port}")
        return port, proc

    @staticmethod
    def _wait(ready: object, timeout: float, what: str) -> None:
        procs.wait_until(ready, timeout, interval=0.05, what=what, errors=(redis.RedisError,))  # type: ignore[arg-type]

    @staticmethod
    def _linked(port: int) -> bool:
        with redis.Redis(port=port, decode_responses=True) as r:
            return r.info("replication").get("master_link_status") == "up"

    def _sentinels_ready(self) -> bool:
        for port, _ in self.sentinels:
            with redis.Redis(port=port, decode_responses=True) as r:
                state = r.sentinel_master(self.service)
                if int(state["num-other-sentinels"]) < 2 or int(state["num-slaves"]) < 1:
                    return False
        return True

    # -- what a test looks at ----------------------------------------------------------
    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port, _ in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}/0"

    def primary_port(self) -> int | None:
        """The port the sentinels name as the primary now (None if none answers)."""
        for port, _ in self.sentinels:
            with contextlib.suppress(redis.RedisError), redis.Redis(port=port) as r:
                found = r.sentinel_get_master_addr_by_name(self.service)
                if found:
                    return int(found[1])
        return None

    def node(self, port: int) -> EmbeddedRedis:
        return next(n for n in self.nodes if n.port == port)

    def kill_primary(self) -> int:
        """SIGKILL the current primary; returns its port. The replication stream still on
        its way to the replica (``replica_delay`` of it) dies with it."""
        port = self.primary_port()
        if port is None:
            raise ConfigurationError("no sentinel names a primary")
        node = self.node(port)
        if self.link is not None:
            self.link.cut(3600)
        if node.process is not None:
            node.process.kill()
            node.process.wait(10)
        self.killed.append(port)
        return port

    def wait_failover(self, old_port: int, timeout: float = 30.0) -> float:
        """Seconds until the sentinels name another primary and it takes writes."""
        start = time.monotonic()

        def promoted() -> bool:
            port = self.primary_port()
            if port is None or port == old_port:
                return False
            with redis.Redis(port=port, decode_responses=True) as r:
                return r.info("replication").get("role") == "master"

        self._wait(promoted, timeout, "failed over")
        return time.monotonic() - start

    def stop(self) -> None:
        for _, proc in self.sentinels:
            with contextlib.suppress(Exception):
                procs.stop(proc, grace=2)
        self.sentinels.clear()
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.stop()
        self.nodes.clear()
        if self.link is not None:
            self.link.stop()
            self.link = None
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> SentinelStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
