"""One notebook's private world: a redis-server, workers and services, all stopped at the end.

    lab = Lab()                       # a private redis-server; REDIS_URL points at it
    r = lab.redis                     # or labqueue.connect(): the same server
    w = lab.thread_worker(["default"])            # a Worker in a background thread
    p = lab.worker_process("email,erp", imports=["labqueue.demo.jobs"])   # a real process
    lab.cli.dump()                    # what Redis holds, as redis-cli shows it
    lab.close()                       # everything stops (also at exit, or if the kernel dies)

Nothing started here outlives the notebook: ``close()`` runs at the end of the notebook,
at interpreter exit (atexit, via ``weakref.finalize``), and child processes get SIGTERM
from the kernel if the notebook's process is killed outright (Linux ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from .. import procs
from ..connection import connect, fake_client
from ..embedded import EmbeddedRedis, find_redis_server, free_port
from ..errors import ConfigurationError
from ..stats import Snapshot, snapshot
from ..status import JobStatus, get_status
from ..worker import Worker
from .rediscli import RedisCli

#: Set it, and every process a Lab starts carries it in its environment (redis-server, which
#: rewrites its environment for its title, runs in a directory named after it), so a test
#: can check that none is left behind.
TAG_ENV = "LABQUEUE_NOTEBOOK_TAG"


@dataclass
class _State:
    """What close() must stop; kept apart from Lab so the finalizer holds no reference to it."""

    redis_server: EmbeddedRedis | None = None
    workdir: str = ""
    threads: list[tuple[Worker, threading.Thread]] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    services: list[Any] = field(default_factory=list)
    old_env: dict[str, str | None] = field(default_factory=dict)
    logs: list[Any] = field(default_factory=list)


def _close(state: _State) -> None:
    """Stop workers, processes, services and the redis-server, newest first; never raises."""
    for worker, _thread in state.threads:
        with contextlib.suppress(Exception):
            worker.stop()
    for _worker, thread in state.threads:
        thread.join(10)
    state.threads.clear()
    for proc in reversed(state.processes):
        with contextlib.suppress(Exception):
            procs.stop(proc)
    state.processes.clear()
    for service in reversed(state.services):
        with contextlib.suppress(Exception):
            service()
    state.services.clear()
    if state.redis_server is not None:
        with contextlib.suppress(Exception):
            state.redis_server.stop()
        state.redis_server = None
    for handle in state.logs:
        with contextlib.suppress(Exception):
            handle.close()
    state.logs.clear()
    for key, value in state.old_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    state.old_env.clear()
    if state.workdir:
        shutil.rmtree(state.workdir, ignore_errors=True)
        state.workdir = ""


class Lab:
    """A private redis-server (or ``url``) and everything a notebook starts against it."""

    def __init__(self, *, persistent: bool = False, url: str | None = None) -> None:
        """``persistent``: append-only file on, so :meth:`restart_redis` keeps the data."""
        tag = os.environ.get(TAG_ENV) or "lab"
        self._state = _State(workdir=tempfile.mkdtemp(prefix=f"labqueue-notebook-{tag}-"))
        self._finalizer = weakref.finalize(self, _close, self._state)
        self.persistent = persistent
        self._set_env(TAG_ENV, tag)
        logging.getLogger("labqueue").setLevel(logging.ERROR)  # keep worker chatter out of cells
        self.url = url or self._start_redis()
        if self.url is not None:
            self._set_env("REDIS_URL", self.url)
        self.redis: redis.Redis = connect(self.url) if self.url else fake_client()
        self.cli = RedisCli(self.redis, prompt=self._prompt())

    # -- redis ---------------------------------------------------------------------------
    def _start_redis(self) -> str | None:
        binary = find_redis_server()
        if binary is None:
            return None
        extra = ("--appendonly", "yes", "--appendfsync", "always") if self.persistent else ()
        workdir = str(Path(self._state.workdir) / "redis")
        os.makedirs(workdir, exist_ok=True)
        embedded = EmbeddedRedis(binary, workdir=workdir, extra_args=extra)
        self._state.redis_server = embedded.start()
        return embedded.url

    def _prompt(self) -> str:
        embedded = self._state.redis_server
        return f"127.0.0.1:{embedded.port}" if embedded else "redis"

    def _set_env(self, key: str, value: str) -> None:
        self._state.old_env.setdefault(key, os.environ.get(key))
        os.environ[key] = value

    def flush(self) -> None:
        """Empty the lab's Redis (only ever the lab's own server)."""
        if self._state.redis_server is None and self.url is not None:
            raise ConfigurationError("flush() only empties the lab's own redis-server")
        self.redis.flushall()

    def stop_redis(self) -> None:
        """Stop the redis-server as an outage would (SIGTERM: with AOF on, data is kept)."""
        embedded = self._need_server()
        proc, embedded.process = embedded.process, None
        if proc is not None:
            procs.stop(proc, grace=10)  # SIGKILL if it lingers: no longer close()'s to stop

    def start_redis(self) -> None:
        """Start it again on the same port, in the same directory (its AOF reloads)."""
        embedded = self._need_server()
        if embedded.running:
            return
        embedded.process = None
        restarted = EmbeddedRedis(
            embedded.binary,
            port=embedded.port,
            workdir=embedded.workdir,
            extra_args=embedded.extra_args,
        ).start()
        embedded.process = restarted.process
        if restarted.port != embedded.port:
            raise ConfigurationError(f"port {embedded.port} was taken while Redis was down")

    def restart_redis(self, down_for: float = 1.0) -> None:
        """Stop the server, wait ``down_for`` seconds, start it again on the same port."""
        self.stop_redis()
        time.sleep(down_for)
        self.start_redis()

    def _need_server(self) -> EmbeddedRedis:
        if self._state.redis_server is None:
            raise ConfigurationError("only the lab's own redis-server can be stopped or restarted")
        return self._state.redis_server

    # -- workers -------------------------------------------------------------------------
    def thread_worker(
        self, queues: str | Sequence[str] = "*", *, poll_interval: float = 0.2, **kwargs: Any
    ) -> Worker:
        """A Worker in a background thread of this kernel (runs jobs defined in the notebook)."""
        conn = connect(self.url) if self.url else self.redis
        worker = Worker(queues, conn, poll_interval=poll_interval, **kwargs)
        if any(w.id == worker.id for w, t in self._state.threads if t.is_alive()):
            raise ConfigurationError(f"a thread worker {worker.id} runs already: stop it first")
        thread = threading.Thread(target=worker.work, name=f"worker {worker.id}", daemon=True)
        thread.start()
        self._state.threads.append((worker, thread))
        return worker

    def stop_thread_worker(self, worker: Worker, timeout: float = 10.0) -> None:
        """Ask it to finish its job and wait until it has."""
        worker.stop()
        for w, thread in self._state.threads:
            if w is worker:
                thread.join(timeout)
        self._state.threads = [(w, t) for w, t in self._state.threads if t.is_alive()]

    def worker_process(
        self,
        queues: str = "*",
        *,
        imports: Iterable[str] = (),
        concurrency: int = 1,
        env: Mapping[str, str] | None = None,
        burst: bool = False,
        name: str = "worker",
    ) -> subprocess.Popen[bytes]:
        """``labqueue worker`` as a child process; its log goes to :meth:`log_path`."""
        if self.url is None:
            raise ConfigurationError(
                "worker processes need a redis-server (fakeredis lives in this process only)"
            )
        command = procs.worker_command(
            queues=queues,
            poll_interval=0.2,
            url=self.url,
            imports=list(imports),
            concurrency=concurrency,
            burst=burst,
        )
        return self.process(command, env, name)

    def process(
        self, command: Sequence[str], env: Mapping[str, str] | None = None, name: str = "process"
    ) -> subprocess.Popen[bytes]:
        """Start any command as a child the lab stops at the end; output to its log file."""
        log = open(self.log_path(name), "ab")  # noqa: SIM115 - closed by close()
        self._state.logs.append(log)
        proc = subprocess.Popen(
            list(command),
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=procs.die_with_parent(own_group=True),
        )
        self._state.processes.append(proc)
        return proc

    def log_path(self, name: str) -> Path:
        return Path(self._state.workdir) / f"{name}.log"

    def kill(self, proc: subprocess.Popen[bytes]) -> int:
        """SIGKILL, as a power cut would: no cleanup of any kind. Returns the pid."""
        proc.kill()
        proc.wait()
        return proc.pid

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM (finish the job, then exit), SIGKILL after 5 s."""
        procs.stop(proc)

    def track(self, stop: Callable[[], object]) -> None:
        """Call ``stop`` when the lab closes (a fake service's ``stop``, say)."""
        self._state.services.append(stop)

    def monitor(self, timeout: float = 30.0) -> str:
        """Start ``labqueue web`` on the lab's Redis (a free loopback port); returns its URL."""
        if self.url is None:
            raise ConfigurationError("the monitor needs a redis-server")
        port = free_port()
        web = procs.python_cmd("labqueue", "web", "--port", str(port), "--url", self.url)
        proc = self.process(web, name="monitor")
        url, log = f"http://127.0.0.1:{port}/", self.log_path("monitor")

        def answers() -> bool:
            with urllib.request.urlopen(url + "api/stats", timeout=1) as resp:
                return bool(resp.status == 200)

        def failed(what: str) -> Exception:
            if proc.poll() is not None:
                return RuntimeError(f"labqueue web exited: see {log}")
            return TimeoutError(
                f"labqueue web did not answer on {url} within {timeout:.0f} s: see {log}"
            )

        try:
            procs.wait_until(
                answers, timeout, interval=0.2, alive=lambda: proc.poll() is None, fail=failed,
                errors=(OSError,),
            )  # fmt: skip
        except TimeoutError:
            procs.stop(proc)  # not left running, unanswering, until the lab closes
            raise
        return url

    def sh(self, command: str, timeout: float = 30.0) -> None:
        """Run a ``labqueue ...`` command against the lab's Redis and print what it prints."""
        argv = shlex.split(command)
        if argv and argv[0] == "labqueue":
            argv = [sys.executable, "-m", "labqueue", *argv[1:]]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        print(f"$ {command}\n{done.stdout}{done.stderr}".rstrip())

    # -- looking -------------------------------------------------------------------------
    def stats(self) -> Snapshot:
        return snapshot(self.redis)

    def wait_until(
        self, condition: Callable[[], object], timeout: float = 20.0, every: float = 0.05
    ) -> float:
        """Poll ``condition`` until true; returns the seconds it took (TimeoutError if never)."""
        start = time.monotonic()
        procs.wait_until(
            condition,
            timeout,
            interval=every,
            fail=lambda _what: TimeoutError(f"still waiting after {timeout:.0f} s"),
        )
        return time.monotonic() - start

    def follow(
        self, job_id: str, timeout: float = 20.0, every: float = 0.01
    ) -> list[tuple[float, JobStatus]]:
        """The job's status changes from now until it completes or fails: (seconds, status)."""
        start = time.monotonic()
        seen: list[tuple[float, JobStatus]] = []
        while time.monotonic() - start < timeout:
            status = get_status(self.redis, job_id).status
            if not seen or seen[-1][1] != status:
                seen.append((time.monotonic() - start, status))
            if status in (JobStatus.COMPLETE, JobStatus.FAILED):
                return seen
            time.sleep(every)
        raise TimeoutError(f"job {job_id} still {seen[-1][1].label} after {timeout:.0f} s")

    def wait_drained(self, timeout: float = 60.0) -> float:
        """Until every queue is empty and no worker is busy."""
        return self.wait_until(lambda: self._idle(), timeout, every=0.1)

    def _idle(self) -> bool:
        snap = self.stats()
        return snap.queued == 0 and snap.busy_workers == 0

    # -- the end -------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def close(self) -> None:
        """Stop everything this lab started (safe to call twice)."""
        with contextlib.suppress(Exception):
            self.cli.close()
            self.redis.close()
        self._finalizer()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.url or "fakeredis (in this process only)"
        return f"Lab({where}, {len(self._state.processes)} processes)"
