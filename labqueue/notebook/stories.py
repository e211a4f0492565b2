"""What notebook 5's failure stories need besides the store: its jobs at a faster clock, a
job that kills its worker, and a sampler that records numbers over time.

    registry = store_jobs(speedup=4)   # the store's three jobs; ERP backoff 4 times shorter
    lab.thread_worker(["erp"], registry=registry)
    sampler = Sampler(lambda: {"delayed": lab.stats().delayed}).start()
    ...; sampler.stop(); sampler.rows   # [(seconds since start, {"delayed": 3}), ...]

A ``labqueue worker --import labqueue.notebook.stories`` process runs :class:`Poison` and
:class:`Nap`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import labqueue
from labqueue.demo import jobs as store_jobs_module
from labqueue.demo.checkout import JOB_NAMES

#: The exit status a Poison job leaves its worker process with.
POISON_EXIT = 13


@labqueue.job("Notebook::Poison")
class Poison(labqueue.Job):
    """Ends the process running it at once (``os._exit``), as a segfault or the OOM killer
    would: no exception, no cleanup, no FINISH."""

    def perform(self) -> None:
        os._exit(POISON_EXIT)


@labqueue.job("Notebook::Nap")
class Nap(labqueue.Job):
    """An ordinary job: sleeps ``seconds`` (args ``{"seconds": 0.05}``) and is done."""

    def perform(self) -> None:
        time.sleep(float(self.args.get("seconds", 0.05)))


def store_jobs(speedup: float = 1.0) -> labqueue.Registry:
    """A registry of the store's three jobs under their own names, with the ERP jobs'
    backoff schedule divided by ``speedup`` (limit, jitter and ``retry_on`` unchanged), for
    a notebook whose clock runs ``speedup`` times faster than production. The store's
    classes themselves are not changed."""
    if not speedup > 0:
        raise ValueError(f"speedup must be > 0, not {speedup!r}")
    backoff = tuple(d / speedup for d in store_jobs_module.ERPJob.retry_backoff)
    registry = labqueue.Registry()
    registry.register(store_jobs_module.SendReceiptEmail, JOB_NAMES["send_email"])
    for step, cls in (
        ("erp_record_sale", store_jobs_module.RecordSaleInERP),
        ("erp_decrease_inventory", store_jobs_module.DecreaseInventoryInERP),
    ):
        faster = type(cls.__name__, (cls,), {"retry_backoff": backoff})
        registry.register(faster, JOB_NAMES[step])
    return registry


class Sampler:
    """Calls ``read`` every ``every`` seconds in a thread: ``rows`` holds (seconds since
    start, what it returned)."""

    def __init__(self, read: Callable[[], Mapping[str, Any]], every: float = 0.2) -> None:
        self.read = read
        self.every = every
        self.rows: list[tuple[float, Mapping[str, Any]]] = []
        self.start_time = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def start(self) -> Sampler:
        self.start_time = time.monotonic()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.rows.append((time.monotonic() - self.start_time, self.read()))
            self._stop.wait(self.every)

    def stop(self) -> list[tuple[float, Mapping[str, Any]]]:
        self._stop.set()
        self._thread.join(10)
        return self.rows

    def series(self, name: str) -> tuple[list[float], list[Any]]:
        """(times, values) of one field."""
        return [t for t, _ in self.rows], [row[name] for _, row in self.rows]
