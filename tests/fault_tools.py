"""Helpers for the fault tests: worker processes that always get stopped, and waiting."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from labqueue.keys import Keys
from labqueue.procs import worker_command

K = Keys()


class Workers:
    """``labqueue worker`` processes, each logging to its own file under ``logs``."""

    def __init__(self, env: dict[str, str], logs: Path, *args: str) -> None:
        self.env = env
        self.logs = logs
        self.args = args
        self.procs: list[subprocess.Popen[bytes]] = []
        self.started = 0

    def start(self, *extra: str) -> subprocess.Popen[bytes]:
        self.started += 1
        log = (self.logs / f"worker-{self.started}.log").open("wb")
        cmd = worker_command("--poll-interval", "0.1", *self.args, *extra)
        proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs.append(proc)
        return proc

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def signal_all(self, signum: int = signal.SIGTERM) -> None:
        for proc in self.alive():
            proc.send_signal(signum)

    def wait_all(self, timeout: float = 30.0) -> list[int]:
        deadline = time.monotonic() + timeout
        return [p.wait(max(0.1, deadline - time.monotonic())) for p in self.procs]

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("*.log")))


@contextlib.contextmanager
def workers(env: dict[str, str], logs: Path, *args: str) -> Iterator[Workers]:
    """Workers that are killed on the way out, whatever happened."""
    logs.mkdir(parents=True, exist_ok=True)
    group = Workers(env, logs, *args)
    try:
        yield group
    finally:
        group.kill_all()


def leftovers(client: redis.Redis, queue: str) -> dict[str, int]:
    """What should be empty once every job is done: the queue, in-progress hashes, failures."""
    return {
        "queued": int(client.llen(K.queue(queue))),
        "in progress": len(client.keys(K.inprogress("*"))),
        "failed": int(client.llen(K.failed)),
        "delayed": int(client.zcard(K.delayed_schedule)),
    }


def statuses(client: redis.Redis, ids: list[str]) -> dict[int, int]:
    """How many of ``ids`` have each php-resque status (0: no status)."""
    import json

    with client.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.get(K.status(job_id))
        raws = pipe.execute()
    counts: dict[int, int] = {}
    for raw in raws:
        code = json.loads(raw)["status"] if raw else 0
        counts[code] = counts.get(code, 0) + 1
    return counts
