"""What the load is aimed at: the store stack the runner starts, or one already running.

Either way the runner sees the same small face: ``store_url``, ``redis_url``, the queue
names, a count of the store's web workers, the component logs, the fake services' URLs
(``mail_url``, ``erp_url``; None when someone else runs them), and ``check()``, which
raises ComponentFailed naming the component and its log when one has died.
"""

from __future__ import annotations

import contextlib
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from labqueue.connection import redact

from .config import RunConfig

QUEUES = ["email", "erp"]


class ComponentFailed(RuntimeError):
    """A part of the stack stopped: ``component`` says which, ``log`` where to look."""

    def __init__(self, component: str, log: Path | str | None, detail: str = "") -> None:
        self.component = component
        self.log = log
        where = f"; see its log: {log}" if log else ""
        super().__init__(f"{component} failed{': ' + detail if detail else ''}{where}")


def healthy(store_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(store_url.rstrip("/") + "/healthz", timeout=timeout) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def count_children(pid: int | None) -> int | None:
    """Worker processes under a pre-fork server's master (gunicorn's web workers)."""
    if pid is None:
        return None
    try:
        return len(psutil.Process(pid).children(recursive=False))
    except psutil.Error:
        return None


class ExternalTarget:
    """A store and Redis someone else started (``--store-url``, ``--redis-url``)."""

    def __init__(self, store_url: str, redis_url: str | None) -> None:
        self.store_url = store_url.rstrip("/")
        self.redis_url = redis_url
        self.queues = list(QUEUES)
        self.logs: dict[str, Path] = {}
        self.mail_url: str | None = None
        self.erp_url: str | None = None

    def web_workers(self) -> int | None:
        return None

    def check(self) -> None:
        if not healthy(self.store_url):
            raise ComponentFailed("the store", None, f"{self.store_url}/healthz does not answer")

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "external",
            "store_url": self.store_url,
            "redis_url": redact(self.redis_url or ""),
        }


class StackTarget:
    """The whole store stack, started by ``labqueue.demo.stack.Stack`` for one scenario."""

    def __init__(self, stack: Any) -> None:
        self.stack = stack
        self.store_url = str(stack.store_url).rstrip("/")
        self.redis_url = stack.redis_url
        self.queues = [q for q in str(stack.worker_queues).split(",") if q]
        self.mail_url: str | None = stack.mail_url
        self.erp_url: str | None = stack.erp_url

    def web_workers(self) -> int | None:
        web = self.stack.web
        return count_children(web.pid if web is not None else None)

    def check(self) -> None:
        name = self.stack.first_dead()
        if name is None:
            return
        logs = [c.log_path for c in self.stack.children() if c.name == name]
        raise ComponentFailed(name, logs[0] if logs else None, "it stopped on its own")

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "stack",
            "store_url": self.store_url,
            "redis_url": redact(self.redis_url or ""),
            "pids": self.stack.pids(),
        }


@contextlib.contextmanager
def open_target(
    cfg: RunConfig,
    log_dir: Path,
    redis_url: str | None,
    workers_per_queue: dict[str, int] | None = None,
    job_events: Path | None = None,
    options: dict[str, Any] | None = None,
) -> Iterator[Any]:
    """The target for one scenario: external if ``--store-url`` was given, else a fresh
    stack (its own logs in ``log_dir``), stopped on the way out whatever happened. Its
    queue workers: ``workers_per_queue`` (``{"email": 1, "erp": 5}``), else
    ``cfg.queue_workers`` on every queue; ``job_events``: where they record each job;
    ``options``: the stack's ERP capacity, ERP limit and worker threads
    (:meth:`RunConfig.stack_options`)."""
    if cfg.store_url:
        yield ExternalTarget(cfg.store_url, cfg.redis_url)
        return

    with tempfile.TemporaryDirectory(prefix="loadtest-store-") as scratch:
        yield from _stack(
            cfg, log_dir, redis_url, scratch, workers_per_queue, job_events, options or {}
        )


def _stack(
    cfg: RunConfig,
    log_dir: Path,
    redis_url: str | None,
    scratch: str,
    workers_per_queue: dict[str, int] | None,
    job_events: Path | None,
    options: dict[str, Any],
) -> Iterator[Any]:
    from labqueue.demo.stack import Stack

    stack = Stack(
        redis_url=redis_url,
        web_workers=cfg.web_workers,
        queue_workers=cfg.queue_workers,
        email_latency=cfg.email_latency,
        erp_latency=cfg.erp_latency,
        jitter=cfg.jitter,
        error_rate=cfg.error_rate,
        seed=cfg.seed,
        port=cfg.port,
        log_dir=log_dir,
        db_path=str(Path(scratch) / "store.db"),
        workers_per_queue=workers_per_queue,
        job_events=job_events,
        **options,
    )
    with stack:
        yield StackTarget(stack)
