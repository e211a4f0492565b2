"""The I/O-bound drain: jobs that each sleep 50 ms, drained by four contenders in turn.

- labqueue-threads: ``labqueue worker --threads 25``, one process.
- labqueue-procs: ``labqueue worker --concurrency 4``, a supervisor and 4 workers of 1 thread.
- huey: ``huey_consumer -w 25 -k thread``, one process.
- dramatiq: ``dramatiq --processes 1 --threads 25``, its main process and one forked worker.

Each contender has a database of its own on the bench's redis-server (FLUSHDB first). Its
jobs are all enqueued before its workers start; the clock runs from the first job's start
to the last job's end, as the jobs themselves note them (bench.sleepjob), the same rule for
all, so no worker's start-up (imports, forking) is drain time: that is reported apart as
start-up. Meanwhile bench.rss samples the resident memory of every process of the
contender's tree every 50 ms. Memory per in-flight job divides the peak by the jobs the
contender can run at once (its slots: 25, 4, 25, 25).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from labqueue import Queue
from labqueue.connection import client_for
from labqueue.procs import python_cmd, worker_command

from . import dramatiq_io, huey_io, sleepjob
from .common import REPO_ROOT, BenchError, Workers, wait_until, worker_env
from .labqueue_io import Sleep
from .names import IO_DONE, IO_QUEUE
from .rss import PeakRss

#: Each job's sleep, the threads of a threaded contender, labqueue's processes.
SLEEP = 0.05
THREADS = 25
PROCESSES = 4

#: Seconds between checks that a drain is over (the figure itself comes from the jobs).
IO_POLL = 0.02

#: contender -> metric -> one value per repetition
Samples = dict[str, dict[str, list[float]]]


@dataclass(frozen=True)
class Contender:
    """One way to drain the sleep jobs: its worker command and its enqueue, for a URL."""

    name: str
    label: str
    slots: int  #: jobs it can run at once
    db: int  #: its own database on the bench's server
    command: Callable[[str], list[str]]
    enqueue: Callable[[str, int, float], None]


def _labqueue_command(**options: object) -> Callable[[str], list[str]]:
    def command(url: str) -> list[str]:
        imports = ["bench.labqueue_io"]
        return worker_command(queues=IO_QUEUE, imports=imports, url=url, **options)

    return command


def _labqueue_enqueue(url: str, n: int, seconds: float) -> None:
    r = client_for(url)
    Queue(IO_QUEUE, r).enqueue_many(Sleep, [{"i": i, "seconds": seconds} for i in range(n)])
    r.close()


def _huey_command(url: str) -> list[str]:
    threads = str(THREADS)
    return python_cmd(
        "huey.bin.huey_consumer", "bench.huey_io.huey", "-w", threads, "-k", "thread", "-q"
    )


def _huey_enqueue(url: str, n: int, seconds: float) -> None:
    _, task = huey_io.app(url)
    for i in range(n):
        task(i, seconds)


def _dramatiq_command(url: str) -> list[str]:
    return python_cmd(
        "dramatiq", "bench.dramatiq_io:broker", "--processes", "1", "--threads", str(THREADS),
        "--queues", IO_QUEUE,
    )  # fmt: skip


def _dramatiq_enqueue(url: str, n: int, seconds: float) -> None:
    _, actor = dramatiq_io.app(url)
    for i in range(n):
        actor.send(i, seconds)


CONTENDERS = {
    c.name: c
    for c in (
        Contender(
            "labqueue-threads",
            f"labqueue --threads {THREADS}",
            THREADS,
            1,
            _labqueue_command(threads=THREADS),
            _labqueue_enqueue,
        ),
        Contender(
            "labqueue-procs",
            f"labqueue --concurrency {PROCESSES}",
            PROCESSES,
            2,
            _labqueue_command(concurrency=PROCESSES),
            _labqueue_enqueue,
        ),
        Contender("huey", f"huey -w {THREADS} -k thread", THREADS, 3, _huey_command, _huey_enqueue),
        Contender(
            "dramatiq",
            f"Dramatiq 1 process x {THREADS} threads",
            THREADS,
            4,
            _dramatiq_command,
            _dramatiq_enqueue,
        ),
    )
}


def preflight(names: Sequence[str]) -> None:
    """BenchError naming the first contender whose command fails with ``--help`` added (an
    option its version lacks, a package not installed): said before any round runs."""
    url = "redis://127.0.0.1:6379/0"  # not connected to: --help only
    env = worker_env(url)
    for name in names:
        argv = [*CONTENDERS[name].command(url), "--help"]
        done = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, timeout=60)
        if done.returncode != 0:
            said = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
            raise BenchError(
                f"the I/O round's {name} cannot start: {' '.join(argv[1:-1])}: "
                + (said[-1] if said else f"exit {done.returncode}")
            )


def db_url(url: str, db: int) -> str:
    """``url`` with its database number replaced by ``db``."""
    return urlsplit(url)._replace(path=f"/{db}").geturl()


def peak_in_flight(records: Sequence[tuple[int, float, float]]) -> int:
    """The most jobs that ran at the same moment, from their (i, start, end)."""
    events = sorted([(s, 1) for _, s, _ in records] + [(e, -1) for _, _, e in records])
    running = peak = 0
    for _, step in events:  # at equal times an end (-1) sorts before a start
        running += step
        peak = max(peak, running)
    return peak


def summarise(
    c: Contender, records: list[tuple[int, float, float]], jobs: int, launched: float, rss: PeakRss
) -> dict[str, float]:
    """One drain's figures; BenchError unless every job ran exactly once."""
    ran = sorted(i for i, _, _ in records)
    if ran != list(range(jobs)):
        raise BenchError(
            f"{c.name}: {len(ran)} job runs of {len(set(ran))} distinct jobs, {jobs} expected"
        )
    first = min(start for _, start, _ in records)
    rate = jobs / (max(end for _, _, end in records) - first)
    return {
        "io_rate": rate,
        "io_peak_rss_mb": rss.peak_mb,
        "io_rate_per_100mb": rate / (rss.peak_mb / 100),
        "io_mb_per_slot": rss.peak_mb / c.slots,
        "io_in_flight": peak_in_flight(records),
        "io_processes": rss.peak_processes,
        "io_startup_s": first - launched,
    }


def drain(url: str, c: Contender, jobs: int, seconds: float, timeout: float) -> dict[str, float]:
    """Enqueue ``jobs`` sleep jobs on ``c``'s own database, start its workers, wait until
    every job has noted its end; the figures of :func:`summarise`."""
    url = db_url(url, c.db)
    r = client_for(url)
    try:
        r.flushdb()
        c.enqueue(url, jobs, seconds)
        launched = time.time()
        with Workers([c.command(url)], url) as workers, PeakRss(workers.pids()) as rss:
            wait_until(
                lambda: int(r.llen(IO_DONE)) >= jobs,
                f"{c.name}'s I/O drain",
                workers,
                max(timeout, 3 * jobs * seconds / c.slots + 60),
                interval=IO_POLL,
            )
        records = [sleepjob.parse(x) for x in r.lrange(IO_DONE, 0, -1)]
        r.flushdb()
    finally:
        r.close()
    return summarise(c, records, jobs, launched, rss)


def collect(
    url: str, names: Sequence[str], jobs: int, repeat: int, timeout: float = 120.0
) -> Samples:
    """Every contender in ``names`` drains ``jobs`` jobs, ``repeat`` times (the order
    reversed every other time)."""
    samples: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for rep in range(1, repeat + 1):
        print(f"  I/O round {rep}/{repeat} ...", file=sys.stderr, flush=True)
        for name in names if rep % 2 else names[::-1]:
            for metric, value in drain(url, CONTENDERS[name], jobs, SLEEP, timeout).items():
                samples[name][metric].append(value)
    return {name: dict(samples[name]) for name in names}
