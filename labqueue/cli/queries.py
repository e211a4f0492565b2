"""The commands that look and poke: ``enqueue``, ``stats``, ``status``, ``delayed``, ``failed``.

What they print from Redis goes through :func:`say`: control characters and bytes that are
not UTF-8 are escaped, and JSON output is strict (no NaN or Infinity).
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import click
import redis

from ..errors import ConfigurationError, UnreadableData
from ..failures import FailedStore, StoredFailure
from ..keys import Keys
from ..payload import check_queue_name
from ..queue import Queue
from ..reading import epoch, excerpt, key_problem, printable
from ..stats import snapshot, waiting_ages
from ..status import get_status
from .base import Group, Target, parse_args_json, pass_connection


def say(text: str, err: bool = False) -> None:
    """One line to the terminal, with nothing in it that a terminal would act on."""
    click.echo(printable(text), err=err)


def strict(value: Any) -> Any:
    """``value`` with NaN and the infinities as null, so its JSON is JSON everywhere."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strict(v) for v in value]
    return value


def local_time(ts: float) -> str:
    """``2026-11-29 10:45:15`` in local time, or the number when no calendar has it."""
    if epoch(ts) is None:
        return f"no calendar time ({ts})"
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
    except (OverflowError, OSError, ValueError):
        return f"no local time ({ts})"


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
    args, data = parse_args_json(args_json)
    check_queue_name(queue)
    when = due(delay, at)
    q = Queue(queue, target.connection, namespace=target.namespace)
    if when is None:
        click.echo(q.enqueue(job_class, *args, **data))
    else:
        click.echo(q.enqueue_at(when, job_class, *args, **data))


def _age(seconds: float | None, depth: int) -> str:
    if not depth:
        return ""
    return "oldest waiting: unknown" if seconds is None else f"oldest waiting {seconds:.1f} s"


def due(delay: float | None, at: str | None) -> float | None:
    """When a job given ``--in`` or ``--at`` is due: a time a calendar has, or a usage
    error naming the option."""
    from ..delayed import parse_when

    if delay is not None and at is not None:
        raise click.UsageError("give --in or --at, not both")
    if delay is None and at is None:
        return None
    option = "--in" if delay is not None else "--at"
    try:
        when = time.time() + delay if delay is not None else parse_when(str(at))
    except (ConfigurationError, OverflowError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None
    if epoch(when) is None:
        raise click.BadParameter(
            "that is no time a calendar has (years 1 to 9999)", param_hint=option
        )
    return when


def _print_snapshot(
    snap: Any, ages: dict[str, float | None], parked: dict[str, float | None]
) -> None:
    say(
        f"processed {snap.processed} ({snap.succeeded} succeeded)  failed {snap.failed}  "
        f"in failed store {snap.failed_store}  delayed {snap.delayed}"
    )
    say("queues:" if snap.queues else "queues: none")
    for name, depth in snap.queues.items():
        say(f"  {name:<20} {depth:>8}  {_age(ages.get(name), depth)}".rstrip())
    say(f"workers: {len(snap.workers)} ({snap.busy_workers} busy)")
    for w in snap.workers:
        if w.busy and w.job_class is None:  # its busy record cannot be read
            doing = "busy, its current job unreadable" + "".join(f"; {p}" for p in w.problems)
        else:
            doing = f"running {w.job_class} from {w.queue} since {w.run_at}" if w.busy else "idle"
        beat = "" if w.heartbeat_age is None else f", beat {w.heartbeat_age:.0f}s ago"
        label = f" ({w.label})" if w.label else ""
        say(f"  {w.id}{label}: {doing}{beat}")
    _print_limiters(snap.limiters, parked)
    if snap.unreadable:
        say("unreadable (counted as empty):")
        for problem in snap.unreadable.values():
            say(f"  {problem}")


def _print_limiters(limiters: list[Any], ages: dict[str, float | None]) -> None:
    """Each concurrency limit: its slots, who holds them, what waits (parked jobs are in no
    queue meanwhile: counted here, and in their queue's oldest-job age)."""
    for lim in limiters:
        size = "?" if lim.limit is None else lim.limit
        oldest = f" ({_age(ages.get(lim.name, 0.0), lim.parked)})" if lim.parked else ""
        say(
            f"limit {printable(lim.name)}: {lim.running} of {size} running, "
            f"{lim.parked} parked{oldest}"
        )
        for wid, left in lim.holders.items():
            say(f"  held by {printable(wid)} ({_lease(left)})")
        for job in lim.next_parked:
            say(f"  parked {job.job_class or '?'} {job.id or '-'} for queue {printable(job.queue)}")
        if lim.parked > len(lim.next_parked):
            say(f"  ... and {lim.parked - len(lim.next_parked)} more parked")


def _lease(left: float) -> str:
    """``lease 12s left``; a lease no worker sets (1e300 s, a foreign zset score) in short."""
    if left <= 0:
        return "lease expired"
    return f"lease {left:.0f}s left" if left < 1e9 else f"lease {left:.3g}s left"


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_connection()
def stats(as_json: bool, target: Target) -> None:
    """Queues, their depths and oldest waiting job's age, workers, processed (failed ones
    too, as Resque counts) and failed counts.

    ``--json``'s ``oldest_age`` maps each queue to seconds (0 when nothing waits; null when
    the job carries no queue_time, as Ruby Resque's do), measured on Redis's clock: the oldest
    job waiting for the queue, in it or parked by a concurrency limit. ``oldest_parked_age``
    maps each limiter to its longest-parked job's age."""
    snap = snapshot(target.reader, target.namespace)
    found = waiting_ages(target.reader, snap.queues, target.namespace)
    parked = {name: p.age for name, p in found.parked.items()}
    if as_json:
        data = {**snap.to_dict(), "oldest_age": found.waiting, "oldest_parked_age": parked}
        click.echo(json.dumps(strict(data)))
    else:
        _print_snapshot(snap, found.waiting, parked)


@click.command()
@click.argument("job_id")
@pass_connection()
def status(job_id: str, target: Target) -> None:
    """The php-resque status of a job: waiting, running, failed or complete."""
    keys = Keys(target.namespace)
    try:
        rec = get_status(target.reader, job_id, keys)
    except UnreadableData as exc:
        raise UnreadableData(f"{job_id}: its status record is unreadable: {exc}") from None
    except redis.ResponseError as exc:
        why = key_problem(target.reader, keys.status(job_id), "string", exc)
        raise UnreadableData(f"{job_id}: its status record is unreadable: {why}") from None
    say(f"{job_id}: {rec.status.label} (updated {local_time(rec.updated)})")


@click.group(cls=Group)
def failed() -> None:
    """The failed store: list, requeue, remove."""


@failed.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_connection(announce=False)
def failed_list(as_json: bool, target: Target) -> None:
    """Every failure, oldest first, with its position (what is no record, as its text)."""
    items = FailedStore(target.reader, target.namespace).items()
    if as_json:
        click.echo(json.dumps([_item_json(item) for item in items]))
        return
    if not items:
        say("no failed jobs")
    for item in items:
        say(_item_line(item))


def _item_json(item: StoredFailure) -> Any:
    if item.record is None:
        return {"unreadable": item.problem, "raw": item.text, "digest": item.digest}
    return strict(json.loads(item.record.to_json()))


def _item_line(item: StoredFailure) -> str:
    r, i = item.record, item.position
    if r is None:
        return f"{i:>3} {item.digest:<32} unreadable, {item.problem}: {excerpt(item.text, 200)}"
    tries = f" after {r.extra['attempts']} attempts" if r.extra.get("attempts") else ""
    return (
        f"{i:>3} {r.job_id or '-':<32} {r.job_class} on {r.queue} at {r.failed_at}{tries}: "
        f"{r.exception}: {r.error}"
    )


@click.group(cls=Group, invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@pass_connection(announce=False)
def delayed(ctx: click.Context, as_json: bool, target: Target) -> None:
    """Delayed jobs and retries waiting for their time, soonest first (or: remove)."""
    from ..delayed import read_delayed

    if ctx.invoked_subcommand is not None:
        return
    problems: dict[str, str] = {}
    jobs, _total = read_delayed(target.reader, target.namespace, 1000, problems)
    for problem in problems.values():
        say(f"unreadable (counted as empty): {problem}", err=True)
    if as_json:
        click.echo(json.dumps([strict(j.to_dict()) for j in jobs]))
        return
    for job in jobs:
        say(job.describe())
    if not jobs:
        say("no delayed jobs")


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
    store = FailedStore(target.reader, target.namespace)
    left = 0
    if action == "requeue" and job_id is None:
        n, left = store.requeue_all()
    else:
        n = store.requeue(job_id) if action == "requeue" else store.remove(job_id)
    say(f"{action}d {n} job{'s' if n != 1 else ''}")
    if left:
        records = f"{left} failure record{'s' if left != 1 else ''}"
        say(
            f"{records} cannot be requeued (no job in it, or no queue to go to) and stay: "
            "see `labqueue failed list`",
            err=True,
        )


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
