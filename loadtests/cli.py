"""``python -m loadtests`` (``make loadtest``): the command line of the runner."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from labqueue.cli.base import BadUsage
from labqueue.demo.capacity import MAX_CAPACITY
from labqueue.demo.config import MAX_THREADS

from .config import RunConfig
from .shapes import CAPACITY_K, DEFAULT_SCENARIOS, GROUPS, presets
from .target import QUEUES


class OneLine(click.Command):
    """A usage mistake is one line and exit 2 (not click's usage block): the option, the
    value, what is wrong, where to look."""

    def make_context(self, info_name: str | None, args: list[str], *a: Any, **kw: Any) -> Any:
        try:
            return super().make_context(info_name, args, *a, **kw)
        except click.UsageError as exc:
            raise BadUsage(f"{exc.format_message()} (see `{info_name} --help`)") from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise BadUsage(f"{exc.format_message()} (see `{ctx.command_path} --help`)") from None


def _floats(text: str | None) -> tuple[float, ...]:
    if not text:
        return ()
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise click.BadParameter(f"expected numbers separated by commas, got {text!r}") from None


def _ints(text: str | None) -> tuple[int, ...]:
    return tuple(int(x) for x in _floats(text))


def _names(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in presets() and n not in GROUPS]
    if unknown:
        choices = ", ".join([*presets(), *GROUPS])
        raise click.BadParameter(f"unknown {unknown}; choose from {choices}")
    return names


def _per_queue(text: str | None) -> dict[str, int]:
    """``email=1,erp=5`` -> ``{"email": 1, "erp": 5}``: every queue once, counts >= 0."""
    if not text:
        return {}
    plan: dict[str, int] = {}
    for part in text.split(","):
        name, sep, count = (p.strip() for p in part.partition("="))
        if not sep or not name:
            raise click.BadParameter(f"expected QUEUE=N pairs such as email=1,erp=5, not {text!r}")
        if name in plan:
            raise click.BadParameter(f"queue {name!r} given twice in {text!r}")
        try:
            plan[name] = int(count)
        except ValueError:
            raise click.BadParameter(f"{name}={count!r}: expected a whole number") from None
    from labqueue.demo.stack import StackError, check_workers_per_queue

    try:
        return check_workers_per_queue(plan, ",".join(QUEUES))
    except StackError as exc:
        raise click.BadParameter(str(exc)) from None


def _loopback(url: str | None) -> str | None:
    from .net import is_loopback

    if url and not is_loopback(url):
        raise click.BadParameter(f"{url}: load only ever targets this machine (127.0.0.1)")
    return url


SCENARIO_HELP = (
    f"Comma-separated, from: {', '.join(presets())}; capacity = {','.join(GROUPS['capacity'])} "
    f"[default: {','.join(DEFAULT_SCENARIOS)}; --quick: all but sync-closed and the pauses]"
)


@click.command(
    cls=OneLine, context_settings={"help_option_names": ["-h", "--help"], "show_default": True}
)
@click.option("--quick", is_flag=True, help="Fewer, shorter steps (<= 90 s of load in all).")
@click.option("--scenarios", default=None, help=SCENARIO_HELP)
@click.option("--rates", default=None, help="Open-loop offered load per step, req/s [2,4,6,8,10].")
@click.option("--step-seconds", type=float, default=None, help="Length of each step [15; quick 5].")
@click.option("--users", default=None, help="Closed-loop users per step [2,4,6,8,10].")
@click.option("--closed-step-seconds", type=float, default=None, help="Closed-loop step [10].")
@click.option("--think-time", type=float, default=1.0, help="Closed loop: s between requests.")
@click.option("--arrival", type=click.Choice(["poisson", "constant"]), default="poisson")
@click.option("--seed", type=int, default=1, help="Arrivals, orders and service jitter.")
@click.option("--timeout", type=float, default=None, help="Client timeout, s [30; quick 10].")
@click.option("--web-workers", type=int, default=4, help="The store's gunicorn workers.")
@click.option(
    "--queue-workers", type=int, default=4, help="labqueue workers, each on email,erp (in order)."
)
@click.option(
    "--queue-workers-per-queue",
    "per_queue",
    callback=lambda ctx, param, value: _per_queue(value),
    metavar="Q=N,...",
    help="Instead: N workers on each queue alone, e.g. email=1,erp=5 (every scenario; "
    "`sized` then uses these too).",
)
@click.option(
    "--target-utilisation",
    type=click.FloatRange(0, 1, min_open=True),
    default=0.7,
    help="`sized`: the busy share its workers aim at (workers = load ÷ this).",
)
@click.option("--email-latency", type=float, default=0.3, help="Fake mail server, s per mail.")
@click.option("--erp-latency", type=float, default=0.25, help="Fake ERP, s per call.")
@click.option("--jitter", type=float, default=0.2, help="Spread of those latencies.")
@click.option("--error-rate", type=float, default=0.0, help="Share of mail/ERP calls failing.")
@click.option(
    "--erp-capacity",
    type=click.IntRange(0, MAX_CAPACITY),
    default=0,
    help="Calls the fake ERP serves at once, the rest wait inside it [0: unlimited; the "
    f"capacity scenarios: {CAPACITY_K}].",
)
@click.option(
    "--queue-threads",
    type=click.IntRange(1, MAX_THREADS),
    default=1,
    help="Threads per queue worker (labqueue worker --threads N).",
)
@click.option(
    "--erp-limit",
    type=click.IntRange(1, MAX_CAPACITY),
    default=None,
    help="At most K ERP jobs at once, across every worker (max_concurrency) [none; the "
    "capacity scenarios set their own].",
)
@click.option("--processes", type=int, default=1, help="Locust processes (--processes).")
@click.option("--drain-cap", type=float, default=90.0, help="Longest wait for queues to drain.")
@click.option("--redis-url", default=None, help="External Redis [default: embedded server].")
@click.option("--store-url", default=None, help="A store already running on this machine.")
@click.option("--port", type=int, default=0, help="The store's port [0: a free one].")
@click.option("--results", "results_dir", type=click.Path(path_type=Path), default="results")
@click.option("--no-graphs", is_flag=True, help="Skip drawing the graphs.")
def main(**opts: Any) -> None:
    """Load-test the toy store: sync vs deferred checkout, with queue depth, results and graphs.

    Starts Redis, the fake mail and ERP services, the store under gunicorn and the labqueue
    workers; runs each scenario under Locust (open loop: requests start on a schedule,
    latency counts from the intended start); stops everything; writes results/<timestamp>/
    and points results/latest at it.
    """
    if opts["store_url"] and not opts["redis_url"]:
        raise click.UsageError("--store-url needs --redis-url (the store's Redis, for the queues)")
    cfg = RunConfig(
        quick=opts["quick"],
        scenarios=_names(opts["scenarios"]),
        rates=_floats(opts["rates"]),
        step_seconds=opts["step_seconds"],
        users=_ints(opts["users"]),
        closed_step_seconds=opts["closed_step_seconds"],
        think_time=opts["think_time"],
        arrival=opts["arrival"],
        seed=opts["seed"],
        timeout=opts["timeout"],
        web_workers=opts["web_workers"],
        queue_workers=opts["queue_workers"],
        queue_workers_per_queue=opts["per_queue"],
        target_utilisation=opts["target_utilisation"],
        email_latency=opts["email_latency"],
        erp_latency=opts["erp_latency"],
        jitter=opts["jitter"],
        error_rate=opts["error_rate"],
        erp_capacity=opts["erp_capacity"],
        queue_threads=opts["queue_threads"],
        erp_limit=opts["erp_limit"],
        processes=opts["processes"],
        drain_cap=opts["drain_cap"],
        redis_url=opts["redis_url"],
        store_url=_loopback(opts["store_url"]),
        port=opts["port"],
        results_dir=opts["results_dir"],
        graphs=not opts["no_graphs"],
    )
    from .run import Runner

    sys.exit(Runner(cfg).run())
