"""The toy store inside a notebook: its real checkout code, its fake mail server and ERP.

    shop = Shop.open(lab)                          # fake mail + ERP (threads), SQLite, Store
    result = shop.store.checkout_sync(shop.order())
    result.timings_ms                              # ms per step, as the web app reports them
    shop.thread_workers()                          # workers for the email and erp queues
    shop.worker_env                                # what a `labqueue worker` process needs

Everything is stopped when the lab closes.
"""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labqueue.demo import jobs
from labqueue.demo.checkout import Store
from labqueue.demo.config import StoreConfig
from labqueue.demo.services import FakeServices

from ..worker import Worker
from .lab import Lab

#: The module a `labqueue worker` process imports to run the store's jobs.
JOBS_MODULE = "labqueue.demo.jobs"


@dataclass(frozen=True)
class JobRun:
    """One run of a store job: which step, which order, when (epoch seconds)."""

    step: str
    order_id: int
    start: float
    end: float
    outcome: str


@dataclass
class Shop:
    """The store's pieces, started for one notebook."""

    lab: Lab
    fakes: FakeServices
    config: StoreConfig
    store: Store
    job_runs: list[JobRun] = field(default_factory=list)
    #: ERP calls that have reached the ERP (answered or not yet)
    erp_calls_started: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def open(
        cls,
        lab: Lab,
        email_latency: float = 0.3,
        erp_latency: float = 0.25,
        jitter: float = 0.2,
        seed: int = 1,
    ) -> Shop:
        """Start the fake mail server and ERP in this process; a fresh SQLite store."""
        fakes = FakeServices(email_latency, erp_latency, jitter, seed=seed).start()
        lab.track(fakes.stop)
        db_path = str(lab.log_path("store").with_suffix(".db"))
        config = fakes.store_config(db_path=db_path, redis_url=lab.url)
        store = Store(config, lab.redis)
        lab.track(store.close)
        jobs.configure(config, lab.redis)  # thread workers in this kernel use this store
        lab.track(lambda: jobs.configure(None))
        shop = cls(lab, fakes, config, store)
        shop._time_jobs()
        shop._count_erp_calls()
        return shop

    def _count_erp_calls(self) -> None:
        """Count ERP calls as they arrive (the fake draws each call's delay first)."""
        faults = self.fakes.erp.faults if self.fakes.erp is not None else None
        if faults is None:
            return
        draw = faults.draw

        def counted() -> tuple[float, bool]:
            with self._lock:
                self.erp_calls_started += 1
            return draw()

        faults.draw = counted  # type: ignore[method-assign]

    def _time_jobs(self) -> None:
        """Record when each store job runs in this kernel (thread workers)."""
        job_store = jobs.store()
        run_step = job_store.run_step

        def timed(order_id: int, step: str) -> str:
            start = time.time()
            outcome = run_step(order_id, step)
            with self._lock:
                self.job_runs.append(JobRun(step, order_id, start, time.time(), outcome))
            return outcome

        job_store.run_step = timed  # type: ignore[method-assign]

    @staticmethod
    def order(email: str = "samir@example.com", *items: tuple[str, int]) -> dict[str, Any]:
        """A checkout body: ``order()`` is two toys for Samir."""
        lines = items or (("SKU-1", 1), ("SKU-2", 2))
        return {"email": email, "items": [{"sku": s, "qty": q} for s, q in lines]}

    def thread_workers(self) -> list[Worker]:
        """One worker thread for the ``email`` queue and one for ``erp``, as the stack runs."""
        return [
            self.lab.thread_worker([self.config.email_queue]),
            self.lab.thread_worker([self.config.erp_queue]),
        ]

    @property
    def worker_env(self) -> dict[str, str]:
        """The environment a ``labqueue worker --import labqueue.demo.jobs`` process needs."""
        return self.config.to_env()

    def worker_process(
        self, queues: str = "email,erp", concurrency: int = 1, name: str = "worker"
    ) -> subprocess.Popen[bytes]:
        """A real ``labqueue worker`` process running the store's jobs."""
        return self.lab.worker_process(
            queues,
            imports=[JOBS_MODULE],
            concurrency=concurrency,
            env=self.worker_env,
            name=name,
        )

    def job_timeline(
        self, since: float, order_id: int | None = None
    ) -> list[tuple[str, float, float]]:
        """(step, start ms, end ms) of the jobs run in this kernel, relative to ``since``."""
        with self._lock:
            runs = [j for j in self.job_runs if order_id in (None, j.order_id)]
        return [(j.step, (j.start - since) * 1000, (j.end - since) * 1000) for j in runs]

    # -- what the fakes received ----------------------------------------------------------
    def emails_for(self, order_id: int) -> list[dict[str, Any]]:
        assert self.fakes.mail is not None
        return self.fakes.mail.mailbox.list(order_id=order_id)

    def erp_sale(self, order_id: int) -> dict[str, Any] | None:
        assert self.fakes.erp is not None
        return self.fakes.erp.sales.get(order_id)

    def erp_stats(self) -> dict[str, Any]:
        assert self.fakes.erp is not None
        return self.fakes.erp.stats()

    def set_latency(self, email: float | None = None, erp: float | None = None) -> None:
        """Make the mail server or the ERP slower or faster from now on (seconds per call)."""
        if email is not None and self.fakes.mail is not None:
            self.fakes.mail.faults.update({"latency": email})
        if erp is not None and self.fakes.erp is not None:
            self.fakes.erp.faults.update({"latency": erp})

    @property
    def db_path(self) -> Path:
        return Path(self.config.db_path)


def timing_table(**runs: dict[str, float]) -> str:
    """Milliseconds per step, one column per run: ``timing_table(sync=..., deferred=...)``."""
    from .charts import STEP_LABELS

    names = list(runs)
    lines = [f"{'step':<26}" + "".join(f"{n:>12}" for n in names)]
    for step, label in [*STEP_LABELS.items(), ("total", "total (the shopper waits)")]:
        cells = [runs[n].get(step, 0.0) for n in names]
        if not any(cells):
            continue
        lines.append(
            f"{label:<26}" + "".join(f"{c:>9.1f} ms" if c else f"{'-':>12}" for c in cells)
        )
    return "\n".join(lines)
