"""Shared pieces of the benchmark: the run's context, worker processes, waiting.

The names its processes agree on (keys, the URL's variable) are in :mod:`bench.names`.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psutil

from labqueue import procs
from labqueue.payload import Payload

from .names import URL_ENV

REPO_ROOT = Path(__file__).resolve().parent.parent

#: The queue every system drains, and the side queue jobs wait in until a drain starts.
BENCH_QUEUE = "bench"
STAGING_QUEUE = "bench-staging"

#: Pause between polls while waiting for a drain to finish (the figure's resolution).
POLL = 0.002


#: A bulk push takes tens of ms, so it is repeated (alternating with its ceiling, each batch
#: from an empty server) until each has been timed this long: one burst of load cannot
#: decide it. At most MAX_BATCHES batches each.
MIN_BATCH_SECONDS = 0.5
MAX_BATCHES = 20


class BenchError(Exception):
    """The benchmark could not measure something (a worker died, a job failed, a timeout)."""


@dataclass
class Context:
    """What one run measures with: the server, a client, and the sizes."""

    url: str
    r: Any  # redis.Redis with decode_responses=True
    jobs: int
    rq_jobs: int
    latency_samples: int
    workers: int
    timeout: float = 120.0

    def flush(self) -> Any:
        """FLUSHALL (every measurement starts from an empty server); returns the client."""
        self.r.flushall()
        return self.r

    def used_memory(self) -> int:
        """Bytes Redis holds for data (used_memory less the clients' buffers, which grow and
        shrink with the traffic, not with what is stored), once settled: Redis shrinks idle
        clients' buffers from a timer (clientsCron), so a reading right after heavy traffic
        can be ~100 KB high. Reads until two readings 0.2 s apart agree (2 s at most)."""
        last = self._used_memory()
        for _ in range(10):
            time.sleep(0.2)
            now = self._used_memory()
            if now == last:
                break
            last = now
        return last

    def _used_memory(self) -> int:
        info = self.r.info("memory")
        return int(info["used_memory"]) - int(info.get("mem_clients_normal", 0))

    def server_cpu(self) -> float:
        """CPU seconds redis-server has used (user + system)."""
        info = self.r.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def sample_payload() -> str:
    """A typical job's payload (what labqueue pushes for a no-op job with one argument)."""
    return Payload.new("Bench\\Noop", [{"n": 1234}]).to_json()


def percentiles(values: list[float]) -> tuple[float, float]:
    """(p50, p99) of ``values``."""
    if len(values) < 2:
        return values[0], values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return statistics.median(values), cuts[98]


def worker_env(url: str) -> dict[str, str]:
    """A worker process's environment: the server's URL, and the bench importable."""
    env = {**os.environ, URL_ENV: url, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    return env


class Workers:
    """Worker processes for one measurement; always stopped on exit (TERM, then KILL)."""

    def __init__(self, commands: list[list[str]], url: str) -> None:
        self.commands = commands
        self.env = worker_env(url)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[IO[bytes]] = []

    def __enter__(self) -> Workers:
        try:
            for command in self.commands:
                log = tempfile.TemporaryFile()
                self.logs.append(log)
                self.procs.append(
                    subprocess.Popen(
                        command,
                        cwd=REPO_ROOT,
                        env=self.env,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def check(self) -> None:
        """BenchError with the end of its output if a worker has exited."""
        for proc, log in zip(self.procs, self.logs, strict=True):
            if proc.poll() is not None:
                log.seek(0)
                tail = log.read().decode(errors="replace").strip().splitlines()[-5:]
                raise BenchError(
                    f"worker {' '.join(proc.args[1:4])} exited with {proc.returncode}: "  # type: ignore[index]
                    + " | ".join(tail)
                )

    def running(self) -> bool:
        """Whether every worker process still runs."""
        return all(proc.poll() is None for proc in self.procs)

    def pids(self) -> list[int]:
        """The process ids of the commands started (not of their children)."""
        return [p.pid for p in self.procs]

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) the worker processes have used, all threads."""
        times = [psutil.Process(p.pid).cpu_times() for p in self.procs]
        return sum(t.user + t.system for t in times)

    def rss_mb(self) -> float:
        """Mean resident memory of the worker processes, in MB."""
        sizes = [psutil.Process(p.pid).memory_info().rss for p in self.procs]
        return sum(sizes) / len(sizes) / 1e6

    def stop(self) -> None:
        for proc in self.procs:
            procs.terminate(proc)
        for proc in self.procs:
            procs.wait_stopped(proc, grace=10)
        for log in self.logs:
            log.close()
        self.procs, self.logs = [], []


python_module = procs.python_cmd


def wait_until(
    done: Callable[[], bool],
    what: str,
    workers: Workers | None,
    timeout: float,
    interval: float = POLL,
) -> float:
    """Poll ``done`` every ``interval`` seconds; returns perf_counter() when it holds.

    Raises BenchError when ``timeout`` passes or a worker process exits first.
    """
    next_check = [0.0]

    def alive() -> bool:  # every 0.5 s, not every poll
        now = time.monotonic()
        if workers is None or now < next_check[0]:
            return True
        next_check[0] = now + 0.5
        return workers.running()

    def failed(_why: str) -> Exception:
        if workers is not None:
            workers.check()  # a worker exited: its BenchError, with the end of its output
        return BenchError(f"timed out after {timeout:.0f} s waiting for {what}")

    procs.wait_until(done, timeout, interval=interval, alive=alive, fail=failed)
    return time.perf_counter()


class CpuMeter:
    """CPU time per job of a drain: the worker processes' and redis-server's, in us.

    A drain's rate depends on how busy the machine is; CPU time per job much less, so it
    shows where a job's cost goes (worker Python or Redis) even on a noisy machine.
    """

    def __init__(self, ctx: Context, workers: Workers) -> None:
        self.ctx, self.workers = ctx, workers
        self.start = (workers.cpu_seconds(), ctx.server_cpu())

    def per_job(self, n: int) -> dict[str, float]:
        worker, server = self.workers.cpu_seconds(), self.ctx.server_cpu()
        return {
            "worker_cpu_us": (worker - self.start[0]) * 1e6 / n,
            "redis_cpu_us": (server - self.start[1]) * 1e6 / n,
        }


class System:
    """One queue under test, as the rounds (bench.rounds) drive it.

    Subclasses: bench.labq.Labqueue, bench.peers.Huey and bench.peers.RQ. Each uses its own
    keys, so all three can have idle workers on one server at the same time.
    """

    name = ""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        #: jobs per drain (RQ is slower: ctx.rq_jobs)
        self.jobs = ctx.jobs

    def enqueue(self, i: int) -> None:
        """Enqueue no-op job number ``i``: one call, as an application would."""
        raise NotImplementedError

    def worker_commands(self, count: int) -> list[list[str]]:
        """Commands starting ``count`` worker processes."""
        raise NotImplementedError

    def ready(self, workers: Workers, count: int = 1) -> None:
        """Wait until the workers run jobs (each has run a warm-up job) and are idle."""
        raise NotImplementedError

    def stage(self, n: int) -> None:
        """Put ``n`` no-op jobs where the workers do not see them yet."""
        raise NotImplementedError

    def release(self) -> None:
        """Make the staged jobs visible to the idle workers at once (the drain's start)."""
        raise NotImplementedError

    def done(self) -> bool:
        """Whether every staged job has been run."""
        raise NotImplementedError

    def check(self) -> None:
        """BenchError if the drain went wrong (failed jobs)."""

    def probe(self) -> None:
        """Enqueue one probe job (it pushes its start time to PROBE_KEY)."""
        raise NotImplementedError

    def close(self) -> None:
        """Let go of connections."""
