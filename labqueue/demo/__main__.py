"""``python -m labqueue.demo``: the toy store, whole or piece by piece, in the foreground.

    python -m labqueue.demo up       Redis, fake mail, fake ERP, gunicorn, workers (make store)
    python -m labqueue.demo mail     the fake mail server (SMTP 8025, HTTP API 8026)
    python -m labqueue.demo erp      the fake ERP (HTTP 8027)
    python -m labqueue.demo web      gunicorn serving the store (8000)
    python -m labqueue.demo relay    the outbox relay: jobs of orders whose request died
    python -m labqueue.demo initdb   create and seed the SQLite database
    labqueue worker --queues email,erp --import labqueue.demo.jobs    the store's workers

Every piece binds 127.0.0.1 and stops on Ctrl-C (or TERM).
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable
from typing import Any

import click

from labqueue.cli.base import Group

from . import config as cfg
from .capacity import MAX_CAPACITY
from .errors import StoreError
from .netfake import LIMITS
from .procs import write_ready_file

HOST = "127.0.0.1"
PORT = click.IntRange(0, 65535)


class Finite(click.ParamType):
    """A finite number between ``low`` and ``high``: click's FloatRange lets NaN through."""

    name = "number"

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = low, high

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number) or not self.low <= number <= self.high:
            self.fail(f"{value!r} is not between {self.low:g} and {self.high:g}", param, ctx)
        return number

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return f"[{self.low:g}-{self.high:g}]"


LATENCY, JITTER, ERROR_RATE = (Finite(*LIMITS[k]) for k in ("latency", "jitter", "error_rate"))
#: The fake ERP's capacity (0: unlimited), a worker's threads, the ERP jobs' limit.
CAPACITY = click.IntRange(0, MAX_CAPACITY)
THREADS = click.IntRange(1, cfg.MAX_THREADS)
ERP_LIMIT = click.IntRange(1, MAX_CAPACITY)
CAPACITY_HELP = (
    "Calls the ERP serves at once; more callers wait inside it, first come first served "
    "[0: unlimited]."
)


def fault_options(latency: float, seed: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        options = [
            click.option("--host", default=HOST, show_default=True),
            click.option("--latency", type=LATENCY, default=latency, show_default=True,
                         help="Mean seconds per call."),
            click.option("--jitter", type=JITTER, default=0.2, show_default=True,
                         help="Spread of the delay (coefficient of variation)."),
            click.option("--error-rate", type=ERROR_RATE, default=0.0,
                         show_default=True, help="Fraction of calls that fail."),
            click.option("--seed", type=int, default=seed, show_default=True),
            click.option("--verbose", "-v", is_flag=True, help="Log every request."),
            click.option("--ready-file", hidden=True),
        ]  # fmt: skip
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


def wait_for_signal(check: Callable[[], str | None] = lambda: None) -> str | None:
    """Block until INT, TERM or HUP (None), or until ``check()`` returns a reason."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(0.5):
        reason = check()
        if reason:
            return reason
    return None


@click.group(
    cls=Group,
    errors=(StoreError, OSError, sqlite3.Error),
    context_settings={"help_option_names": ["-h", "--help"]},
)
def main() -> None:
    """The toy store: a checkout, synchronous or with its slow steps deferred to jobs."""


@main.command()
@click.option("--smtp-port", type=PORT, default=cfg.DEFAULT_SMTP_PORT, show_default=True)
@click.option("--http-port", type=PORT, default=cfg.DEFAULT_MAIL_HTTP_PORT, show_default=True)
@fault_options(latency=0.3, seed=1)
def mail(smtp_port: int, http_port: int, ready_file: str | None, **faults: Any) -> None:
    """The fake mail server: SMTP, and an HTTP API showing what it received."""
    from .fakemail import FakeMail

    verbose = faults.pop("verbose")
    server = FakeMail(smtp_port=smtp_port, http_port=http_port, verbose=verbose, **faults)
    server.start()
    if ready_file:
        write_ready_file(ready_file, {"smtp_port": server.smtp_port, "http_port": server.http_port})
    click.echo(
        f"fake mail: SMTP {server.host}:{server.smtp_port}, messages at {server.url}/messages"
    )
    try:
        wait_for_signal()
    finally:
        server.stop()


@main.command()
@click.option("--port", type=PORT, default=cfg.DEFAULT_ERP_PORT, show_default=True)
@click.option("--capacity", type=CAPACITY, default=0, show_default=True, help=CAPACITY_HELP)
@fault_options(latency=0.25, seed=2)
def erp(port: int, capacity: int, ready_file: str | None, **faults: Any) -> None:
    """The fake ERP: sales and inventory over HTTP, keyed on the order id."""
    from .fakeerp import FakeERP

    server = FakeERP(port=port, capacity=capacity, **faults).start()
    if ready_file:
        write_ready_file(ready_file, {"port": server.port})
    limit = f", at most {capacity} calls at once" if capacity else ""
    click.echo(f"fake ERP at {server.url} (GET /sales, GET /inventory, GET /calls){limit}")
    try:
        wait_for_signal()
    finally:
        server.stop()


@main.command()
@click.option("--db", "db_path", envvar="STORE_DB", default=None, help="SQLite file.")
@click.option("--fresh", is_flag=True, help="Delete the database first.")
def initdb(db_path: str | None, fresh: bool) -> None:
    """Create the database (WAL mode) and seed SKU-1..SKU-20."""
    from . import db

    path = db_path or cfg.default_db_path()
    try:
        if fresh:
            db.remove_db(path)
        db.init_db(path)
    except (OSError, sqlite3.Error) as exc:
        raise click.ClickException(f"cannot create the database {path}: {exc}") from None
    click.echo(f"database ready: {path}")


@main.command()
@click.option("--host", default=HOST, show_default=True)
@click.option("--port", type=PORT, default=cfg.DEFAULT_STORE_PORT, show_default=True)
@click.option("--workers", "-w", type=click.IntRange(1, 64), default=4, show_default=True)
def web(host: str, port: int, workers: int) -> None:
    """gunicorn serving the store, with the settings in the environment (see config.py)."""
    from .stack import gunicorn_argv

    argv = gunicorn_argv(f"{host}:{port}", workers)
    os.execv(sys.executable, argv)


@main.command()
@click.option(
    "--interval",
    type=Finite(0.01, 60),
    default=0.5,
    show_default=True,
    help="Seconds between passes.",
)
@click.option("--once", is_flag=True, help="One pass, then exit.")
def relay(interval: float, once: bool) -> None:
    """The outbox relay: enqueue the jobs of deferred checkouts whose request died after
    its commit (see outbox.py), with the settings in the environment (see config.py)."""
    from .checkout import Store
    from .config import StoreConfig

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    store = Store(StoreConfig.from_env())
    if once:
        click.echo(f"relayed {store.relay().run_once()} jobs")
        return
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())
    click.echo(f"outbox relay: every {interval:g} s, database {store.config.db_path}")
    sent = store.relay().run(stop, interval)
    click.echo(f"outbox relay stopped after enqueueing {sent} jobs")


@main.command()
@click.option(
    "--port",
    type=PORT,
    default=cfg.DEFAULT_STORE_PORT,
    show_default=True,
    help="The store's port (0: any free port).",
)
@click.option("--host", default=HOST, show_default=True)
@click.option("--web-workers", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option("--queue-workers", type=click.IntRange(0, 64), default=2, show_default=True)
@click.option("--email-latency", type=LATENCY, default=0.3, show_default=True)
@click.option("--erp-latency", type=LATENCY, default=0.25, show_default=True)
@click.option("--erp-capacity", type=CAPACITY, default=0, show_default=True, help=CAPACITY_HELP)
@click.option(
    "--queue-threads",
    type=THREADS,
    default=1,
    show_default=True,
    help="Threads per queue worker (passed to each as `labqueue worker --threads N`).",
)
@click.option(
    "--erp-limit",
    type=ERP_LIMIT,
    default=None,
    help="At most K ERP jobs run at once across all workers (max_concurrency=K, "
    "limiter 'erp'; through STORE_ERP_LIMIT) [default: no limit].",
)
@click.option("--jitter", type=JITTER, default=0.2, show_default=True)
@click.option("--error-rate", type=ERROR_RATE, default=0.0, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--smtp-port", type=PORT, default=0, help="Default: any free port.")
@click.option("--mail-port", type=PORT, default=0, help="Default: any free port.")
@click.option("--erp-port", type=PORT, default=0, help="Default: any free port.")
@click.option("--log-dir", default="var/store", show_default=True)
@click.option("--db", "db_path", default=None, help="Default: LOG_DIR/store.db, fresh each run.")
@click.option(
    "--redis-url",
    envvar="REDIS_URL",
    default=None,
    help="Default: $REDIS_URL, else an embedded redis-server.",
)
def up(**options: Any) -> None:
    """Everything, in the foreground, until Ctrl-C."""
    from .stack import Stack

    stack = Stack(**options)
    click.echo("starting the toy store ...", err=True)
    with stack:
        click.echo(f"toy store up (Ctrl-C stops everything):\n{stack.describe()}")
        click.echo(
            f"try:  curl -s -X POST {stack.store_url}/checkout/deferred -H "
            "'Content-Type: application/json' "
            """-d '{"email": "a@b.c", "items": [{"sku": "SKU-1", "qty": 2}]}'"""
        )
        dead = wait_for_signal(stack.first_dead)
        click.echo(f"\n{dead} stopped on its own, stopping everything" if dead else "\nstopping")
    click.echo("toy store stopped.")
    if dead:
        sys.exit(1)


if __name__ == "__main__":
    main(prog_name="python -m labqueue.demo")
