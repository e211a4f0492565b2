"""The I/O round's figures, its targets (issue 14) and its table (bench.iobound measures)."""

from __future__ import annotations

from typing import Any

from . import report
from .iobound import CONTENDERS, PROCESSES, SLEEP, THREADS, Samples
from .report import Target

#: Every figure of the I/O round: key -> (label, unit). MB is 10^6 bytes.
METRICS: dict[str, tuple[str, str]] = {
    "io_rate": ("I/O drain, first job start to last job end", "jobs/s"),
    "io_peak_rss_mb": ("peak RSS of all its worker processes", "MB"),
    "io_rate_per_100mb": ("jobs/s per 100 MB of peak RSS", "jobs/s per 100 MB"),
    "io_mb_per_slot": ("peak RSS per in-flight job", "MB"),
    "io_in_flight": ("most jobs running at once, measured", "jobs"),
    "io_processes": ("worker processes, most seen", "processes"),
    "io_startup_s": ("workers started to first job started", "s"),
}

#: How the figures are taken, stored with them in the JSON.
METHOD = {
    "clock": "from the first job's start to the last job's end, as the jobs note them "
    "(wall clock); start-up (workers started to first job) is reported apart",
    "rss": "sum of VmRSS (/proc/PID/status) over the worker command's process and all its "
    "descendants, sampled every 50 ms from worker start to the last job's end; the peak "
    "sample. Shared pages count in each process, as ps counts them. MB = 10^6 bytes",
    "mb_per_in_flight_job": "peak RSS / the jobs the contender can run at once (slots)",
}

SUBJECT = "labqueue-threads"


def targets(seconds: float = SLEEP) -> list[Target]:
    """The issue's targets for labqueue --threads 25 (ideal: 25 jobs per ``seconds``)."""
    ideal = THREADS / seconds
    peers = [("huey", f"huey -w {THREADS}"), ("dramatiq", f"Dramatiq 1x{THREADS}")]
    out = [
        Target(
            f"--threads {THREADS} >= 0.8 x ideal {ideal:,.0f} jobs/s",
            "io_rate",
            0.8 * ideal,
            system=SUBJECT,
        )
    ]
    for peer, label in peers:
        text = f"--threads {THREADS} jobs/s >= {label}'s"
        out.append(Target(text, "io_rate", 1.0, (peer, "io_rate"), system=SUBJECT))
    for peer, label in peers:
        text, other = f"MB per in-flight job below {label}'s", (peer, "io_mb_per_slot")
        out.append(
            Target(text, "io_mb_per_slot", 1.0, other, at_most=True, system=SUBJECT, strict=True)
        )
    return out


def result(samples: Samples, jobs: int, repeat: int) -> dict[str, Any]:
    """The JSON's "io" part: settings and method, contenders, figures, targets."""
    figs = report.figures(samples, METRICS)
    return {
        "settings": {
            "jobs": jobs,
            "sleep_s": SLEEP,
            "repeat": repeat,
            "threads": THREADS,
            "processes": PROCESSES,
        },
        "method": METHOD,
        "contenders": {
            name: {"label": CONTENDERS[name].label, "slots": CONTENDERS[name].slots}
            for name in samples
        },
        "figures": figs,
        "targets": report.evaluate(figs, targets()),
    }


def _row(label: str, figs: dict[str, Any]) -> str:
    rate = figs["io_rate"]

    def med(metric: str, fmt: str) -> str:
        return format(figs[metric]["median"], fmt)

    return (
        f"{label:<34}{rate['median']:>7,.0f} ({rate['min']:,.0f}-{rate['max']:,.0f})".ljust(53)
        + f"{med('io_peak_rss_mb', ',.1f'):>9}{med('io_rate_per_100mb', ',.0f'):>9}"
        + f"{med('io_mb_per_slot', ',.2f'):>10}{med('io_in_flight', '.0f'):>8}"
        + f"{med('io_processes', '.0f'):>7}{med('io_startup_s', '.2f'):>9}"
    )


def table(io: dict[str, Any]) -> list[str]:
    """The terminal table's lines: one row per contender (medians), then the targets."""
    s = io["settings"]
    lines = [
        f"I/O-bound drain: {s['jobs']:,} jobs that each sleep {s['sleep_s'] * 1000:.0f} ms, "
        f"enqueued before the workers start; median of {s['repeat']} (jobs/s: min-max)",
        "clock: from the first job's start to the last job's end (start-up apart)",
        "",
        f"{'contender':<34}{'jobs/s':>7}".ljust(53)
        + f"{'peak MB':>9}{'/100 MB':>9}{'MB/slot':>10}{'in fl.':>8}{'procs':>7}{'start s':>9}",
    ]
    for name, figs in io["figures"].items():
        lines.append(_row(io["contenders"][name]["label"], figs))
    lines += [
        "",
        "peak MB: VmRSS summed over every worker process, sampled every 50 ms; /100 MB: "
        "jobs/s per 100 MB of it;",
        "MB/slot: peak MB per in-flight job (÷ 25, 4, 25, 25); in fl.: most jobs seen "
        "running at once; start s: start-up",
        "",
        *report.target_lines(io["targets"], 48),
    ]
    measured = {t["target"] for t in io["targets"]}
    for t in targets(io["settings"]["sleep_s"]):
        if t.text not in measured:  # a contender it needs was left out (--io)
            lines.append(f"{t.text:<48}{'-':>9}{'-':>9}{'-':>9}  not measured")
    return lines
