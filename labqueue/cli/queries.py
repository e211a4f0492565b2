"""The commands that look and poke: ``enqueue``, ``stats``, ``status``, ``delayed``, ``failed``."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from ..failures import FailedStore
from ..payload import check_queue_name
from ..queue import Queue
from ..stats import oldest_ages, snapshot
from ..status import get_status
from .base import Group, Target, parse_args_json, pass_connection


@click.command()
@click.argument("job_class")
@click.option("--queue", "-q", default="default", show_default=True)
@click.option("--args", "args_json", metavar="JSON", help="e.g. '{\"to\": \"a@b.c\"}' or '[1, 2]'")
@click.option("--in", "delay", type=click.FloatRange(min=0), help="Run it in SECONDS.")
@click.option("--at", "at", metavar="TIME", help="Run it at TIME: epoch seconds or ISO 8601.")
@pass_connection()
def enqueue(
    job_class: str,
    queue: str,
    args_json: str | None,
    delay: float | None,
    at: str | None,
    target: Target,
) -> None:
    """Enqueue a job of class JOB_CLASS (now, --in SECONDS or --at TIME); prints its id."""
    from ..delayed import parse_when

    args, data = parse_args_json(args_json)
    check_queue_name(queue)
    if delay is not None and at is not None:
        raise click.UsageError("give --in or --at, not both")
    when = time.time() + delay if delay is not None else parse_when(at) if at else None
    q = Queue(queue, target.connection, namespace=target.namespace)
    if when is None:
        click.echo(q.enqueue(job_class, *args, **data))
    else:
        click.echo(q.enqueue_at(when, job_class, *args, **data))


def _age(seconds: float | None, depth: int) -> str:
    if not depth:
        return ""
    return "oldest waiting: unknown" if seconds is None else f"oldest waiting {seconds:.1f} s"


def _print_snapshot(snap: Any, ages: dict[str, float | None]) -> None:
    click.echo(
        f"processed {snap.processed} ({snap.succeeded} succeeded)  failed {snap.failed}  "
        f"in failed store {snap.failed_store}  delayed {snap.delayed}"
    )
    click.echo("queues:" if snap.queues else "queues: none")
    for name, depth in snap.queues.items():
        click.echo(f"  {name:<20} {depth:>8}  {_age(ages.get(name), depth)}".rstrip())
    click.echo(f"workers: {len(snap.workers)} ({snap.busy_workers} busy)")
    for w in snap.workers:
        doing = f"running {w.job_class} from {w.queue} since {w.run_at}" if w.busy else "idle"
        beat = "" if w.heartbeat_age is None else f", beat {w.heartbeat_age:.0f}s ago"
        click.echo(f"  {w.id}: {doing}{beat}")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_connection()
def stats(as_json: bool, target: Target) -> None:
    """Queues, their depths and oldest waiting job's age, workers, processed (failed ones
    too, as Resque counts) and failed counts.

    ``--json``'s ``oldest_age`` maps each queue to seconds (0 when empty; null when the job
    at its head carries no queue_time, as Ruby Resque's do), measured on Redis's clock."""
    snap = snapshot(target.connection, target.namespace)
    ages = oldest_ages(target.connection, snap.queues, target.namespace)
    if as_json:
        click.echo(json.dumps({**snap.to_dict(), "oldest_age": ages}))
    else:
        _print_snapshot(snap, ages)


@click.command()
@click.argument("job_id")
@pass_connection()
def status(job_id: str, target: Target) -> None:
    """The php-resque status of a job: waiting, running, failed or complete."""
    from ..keys import Keys

    rec = get_status(target.connection, job_id, Keys(target.namespace))
    updated = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(rec.updated))
    click.echo(f"{job_id}: {rec.status.label} (updated {updated})")


@click.group(cls=Group)
def failed() -> None:
    """The failed store: list, requeue, remove."""


@failed.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_connection(announce=False)
def failed_list(as_json: bool, target: Target) -> None:
    """Every failure, oldest first, with its position."""
    records = FailedStore(target.connection, target.namespace).all()
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


@click.group(cls=Group, invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@pass_connection(announce=False)
def delayed(ctx: click.Context, as_json: bool, target: Target) -> None:
    """Delayed jobs and retries waiting for their time, soonest first (or: remove)."""
    from ..delayed import delayed_jobs

    if ctx.invoked_subcommand is not None:
        return
    jobs = delayed_jobs(target.connection, target.namespace)
    if as_json:
        click.echo(json.dumps([j.to_dict() for j in jobs]))
        return
    click.echo("\n".join(j.describe() for j in jobs) or "no delayed jobs")


@delayed.command("remove")
@click.argument("job_class", required=False)
@click.option("--args", "args_json", metavar="JSON", help="Its arguments: '[1, 2]' or '{...}'.")
@click.option("--queue", "-q", default="default", show_default=True)
@click.option("--id", "job_id", metavar="ID", help="The one delayed job (or retry) with this id.")
@pass_connection(announce=False)
def delayed_remove(
    job_class: str | None, args_json: str | None, queue: str, job_id: str | None, target: Target
) -> None:
    """Cancel delayed jobs: every one of JOB_CLASS with these --args on --queue, as
    resque-scheduler's remove_delayed does (Ruby's and PHP's too), or the one with --id."""
    from ..delayed_index import remove_delayed, remove_delayed_id
    from ..keys import Keys

    if (job_class is None) == (job_id is None):
        raise click.UsageError("give a JOB_CLASS (with its --args) or --id, not both")
    keys = Keys(target.namespace)
    if job_id is not None:
        n = remove_delayed_id(target.connection, keys, job_id)
    else:
        positional, data = parse_args_json(args_json)
        args = [data] if data else positional
        n = remove_delayed(target.connection, keys, str(job_class), args, check_queue_name(queue))
    click.echo(f"removed {n} delayed job{'s' if n != 1 else ''}")


def _take(action: str, job_id: str | None, all_: bool, target: Target) -> None:
    if (job_id is None) == (not all_):
        raise click.UsageError(
            f"give a JOB_ID (or position), or --all: `labqueue failed {action} --all`"
        )
    store = FailedStore(target.connection, target.namespace)
    n = store.requeue(job_id) if action == "requeue" else store.remove(job_id)
    click.echo(f"{action}d {n} job{'s' if n != 1 else ''}")


@failed.command("requeue")
@click.argument("job_id", required=False)
@click.option("--all", "all_", is_flag=True, help="Every failed job.")
@pass_connection(announce=False)
def failed_requeue(job_id: str | None, all_: bool, target: Target) -> None:
    """Put a failed job (or --all) back on its queue."""
    _take("requeue", job_id, all_, target)


@failed.command("remove")
@click.argument("job_id", required=False)
@click.option("--all", "all_", is_flag=True, help="Every failed job.")
@pass_connection(announce=False)
def failed_remove(job_id: str | None, all_: bool, target: Target) -> None:
    """Delete a failure record (or --all)."""
    _take("remove", job_id, all_, target)
