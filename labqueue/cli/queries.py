"""The commands that look and poke: ``enqueue``, ``stats``, ``status``, ``delayed``, ``failed``."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from ..failures import FailedStore
from ..payload import check_queue_name
from ..queue import Queue
from ..stats import snapshot
from ..status import get_status
from .base import Group, common, open_connection, parse_args_json


@click.command()
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
    from ..delayed import parse_when

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


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@common
def stats(as_json: bool, url: str | None, namespace: str) -> None:
    """Queues and their depths, workers, processed and failed counts."""
    snap = snapshot(open_connection(url, announce=not as_json), namespace)
    if as_json:
        click.echo(snap.to_json())
    else:
        _print_snapshot(snap)


@click.command()
@click.argument("job_id")
@common
def status(job_id: str, url: str | None, namespace: str) -> None:
    """The php-resque status of a job: waiting, running, failed or complete."""
    from ..keys import Keys

    rec = get_status(open_connection(url), job_id, Keys(namespace))
    updated = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(rec.updated))
    click.echo(f"{job_id}: {rec.status.label} (updated {updated})")


@click.group(cls=Group)
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


@click.command()
@click.option("--json", "as_json", is_flag=True)
@common
def delayed(as_json: bool, url: str | None, namespace: str) -> None:
    """Delayed jobs and retries waiting for their time, soonest first."""
    from ..delayed import delayed_jobs

    jobs = delayed_jobs(open_connection(url, announce=False), namespace)
    if as_json:
        click.echo(json.dumps([j.to_dict() for j in jobs]))
        return
    click.echo("\n".join(j.describe() for j in jobs) or "no delayed jobs")


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
