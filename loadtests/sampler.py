"""Every 0.5 s, what the system is doing: queue depths, jobs parked by the concurrency
limits, the age of the oldest job waiting for each queue (``age_<queue>``, seconds, on Redis's
clock, in the queue or parked: :func:`labqueue.stats.waiting_ages`), jobs processed and
failed, busy labqueue workers, the store's web workers, and how hard Locust works (CPU per
process).

One CSV row per sample (``sampler.csv``). ``queued`` counts the jobs in the queues and
``parked`` those a limiter holds back (in no queue until a slot frees): waiting in Redis is
their sum. Per limiter the sampler is given, ``parked_<limiter>`` (jobs) and
``parked_age_<limiter>`` (the longest-parked job's age, s). ``processed`` (jobs that
succeeded) and ``failed`` count from the sampler's start; ``enqueued`` is processed + failed
+ queued + parked + running, so "processed catching up with enqueued" is visible on one
graph. Redis' ``stat:processed`` counts failed jobs too (as Resque's does): successes are its
difference.
"""

from __future__ import annotations

import csv
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from labqueue.keys import DEFAULT_NAMESPACE
from labqueue.stats import snapshot, waiting_ages

log = logging.getLogger("loadtests.sampler")

BASE_COLUMNS = [
    "t",
    "phase",
    "queued",
    "parked",
    "busy_workers",
    "workers",
    "processed",
    "failed",
    "failed_store",
    "enqueued",
    "web_workers",
    "locust_cpu",
    "locust_cpu_total",
]


class CpuMeter:
    """CPU percent of a process tree (e.g. Locust's master and its forked workers)."""

    def __init__(self, root_pid: Callable[[], int | None]) -> None:
        self.root_pid = root_pid
        self._procs: dict[int, psutil.Process] = {}

    def _tree(self) -> list[psutil.Process]:
        pid = self.root_pid()
        if pid is None:
            return []
        try:
            root = psutil.Process(pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def read(self) -> tuple[float, float]:
        """(busiest process %, sum %), since the previous read; 0 on the first."""
        per = []
        for proc in self._tree():
            known = self._procs.setdefault(proc.pid, proc)
            try:
                per.append(known.cpu_percent(None))
            except psutil.Error:
                continue
        return (max(per, default=0.0), sum(per))


@dataclass
class Sample:
    values: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.values[key]


class Sampler(threading.Thread):
    """Samples until ``stop()``; ``latest`` is the newest sample (None before the first)."""

    def __init__(
        self,
        path: Path,
        connection: Any,
        queues: list[str],
        web_workers: Callable[[], int | None] = lambda: None,
        locust_pid: Callable[[], int | None] = lambda: None,
        interval: float = 0.5,
        namespace: str = DEFAULT_NAMESPACE,
        limiters: Sequence[str] = (),
    ) -> None:
        super().__init__(name="loadtest-sampler", daemon=True)
        self.path = path
        self.connection = connection
        self.queues = list(queues)
        self.limiters = list(limiters)  #: whose parked jobs get columns of their own
        self.web_workers = web_workers
        self.cpu = CpuMeter(locust_pid)
        self.interval = interval
        self.namespace = namespace
        self.phase = "setup"
        self.latest: Sample | None = None
        self.error: str | None = None
        self.count = 0
        self._stop_event = threading.Event()
        self._base: tuple[int, int] | None = None

    @property
    def columns(self) -> list[str]:
        return (
            BASE_COLUMNS
            + [f"queue_{q}" for q in self.queues]
            + [f"age_{q}" for q in self.queues]
            + [f"parked_{n}" for n in self.limiters]
            + [f"parked_age_{n}" for n in self.limiters]
        )

    def take(self) -> Sample:
        snap = snapshot(self.connection, self.namespace)
        if self._base is None:
            self._base = (snap.succeeded, snap.failed)
        processed = snap.succeeded - self._base[0]
        failed = snap.failed - self._base[1]
        cpu_max, cpu_total = self.cpu.read()
        web = self.web_workers()
        parked = sum(lim.parked for lim in snap.limiters)
        values: dict[str, Any] = {
            "t": f"{snap.time:.3f}",
            "phase": self.phase,
            "queued": snap.queued,
            "parked": parked,
            "busy_workers": snap.busy_workers,
            "workers": len(snap.workers),
            "processed": processed,
            "failed": failed,
            "failed_store": snap.failed_store,
            "enqueued": processed + failed + snap.queued + parked + snap.busy_workers,
            "web_workers": "" if web is None else web,
            "locust_cpu": round(cpu_max, 1),
            "locust_cpu_total": round(cpu_total, 1),
        }
        ages = waiting_ages(self.connection, self.queues, self.namespace)
        waiting = ages.waiting
        for q in self.queues:
            values[f"queue_{q}"] = snap.queues.get(q, 0)
            values[f"age_{q}"] = _cell(waiting[q])
        for name in self.limiters:
            held = ages.parked.get(name)
            values[f"parked_{name}"] = held.count if held else 0
            values[f"parked_age_{name}"] = _cell(held.age) if held else 0.0
        return Sample(values)

    def oldest(self) -> float | None:
        """The oldest waiting job's age in the last sample, over every queue, parked jobs
        included (seconds)."""
        s = self.latest
        ages = [s[f"age_{q}"] for q in self.queues] if s is not None else []
        return max((a for a in ages if a != ""), default=None)

    def run(self) -> None:
        with self.path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore")
            writer.writeheader()
            next_at = time.monotonic()
            while not self._stop_event.is_set():
                try:
                    sample = self.take()
                except Exception as exc:  # Redis gone: record it, keep trying until stopped
                    self.error = f"{type(exc).__name__}: {exc}"
                    log.warning("sampler: %s", self.error)
                else:
                    writer.writerow(sample.values)
                    f.flush()
                    self.latest = sample
                    self.count += 1
                next_at += self.interval
                self._stop_event.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=5)

    def idle(self) -> bool:
        """True when the last sample saw empty queues, nothing parked and no busy worker."""
        s = self.latest
        return s is not None and s["queued"] == 0 and s["parked"] == 0 and s["busy_workers"] == 0


def _cell(age: float | None) -> float | str:
    """An age as the CSV keeps it: empty when unknown."""
    return "" if age is None else age
