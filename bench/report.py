"""Figures (median, min, max of the repetitions), the issue's targets, the table, the JSON."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Every figure: key -> (label, unit). Rates are per second; "ops" are raw Redis commands.
METRICS: dict[str, tuple[str, str]] = {
    "lpush_rate": ("LPUSH, one round trip each", "ops/s"),
    "lmove_rate": ("LMOVE, one round trip each", "ops/s"),
    "lpush_pipelined_rate": ("LPUSH, pipelined", "ops/s"),
    "enqueue_rate": ("enqueue, one call per job", "jobs/s"),
    "bulk_enqueue_rate": ("bulk enqueue (enqueue_many)", "jobs/s"),
    "drain_1_rate": ("drain, 1 worker process", "jobs/s"),
    "drain_n_rate": ("drain, N worker processes", "jobs/s"),
    "latency_p50_ms": ("enqueue-to-start latency p50", "ms"),
    "latency_p99_ms": ("enqueue-to-start latency p99", "ms"),
    "worker_cpu_us": ("worker CPU per job (1-worker drain)", "us"),
    "redis_cpu_us": ("redis-server CPU per job (drain)", "us"),
    "memory_per_job_bytes": ("Redis memory per queued job", "bytes"),
    "worker_rss_mb": ("worker RSS", "MB"),
}

SYSTEM_NAMES = {"redis": "Redis ceiling", "labqueue": "labqueue", "huey": "huey", "rq": "RQ"}


@dataclass(frozen=True)
class Target:
    """``system``'s figure ``metric`` compared with ``other`` (a ratio) or a bound (absolute)."""

    text: str
    metric: str
    required: float
    other: tuple[str, str] | None = None  #: (system, metric) to divide by
    at_most: bool = False  #: the figure must be <= required (latency), else >=
    system: str = "labqueue"
    strict: bool = False  #: < or > rather than <= or >= ("below")

    def met(self, value: float) -> bool:
        if self.at_most:
            return value < self.required if self.strict else value <= self.required
        return value > self.required if self.strict else value >= self.required


TARGETS = [
    Target("enqueue >= 0.8 x raw LPUSH", "enqueue_rate", 0.8, ("redis", "lpush_rate")),
    Target("enqueue >= huey's enqueue", "enqueue_rate", 1.0, ("huey", "enqueue_rate")),
    Target("1-worker drain >= 1.5 x huey's", "drain_1_rate", 1.5, ("huey", "drain_1_rate")),
    Target("1-worker drain >= 10 x RQ SimpleWorker", "drain_1_rate", 10.0, ("rq", "drain_1_rate")),
    Target("1-worker drain >= 0.3 x raw LMOVE", "drain_1_rate", 0.3, ("redis", "lmove_rate")),
    Target("idle latency p50 <= 2 ms", "latency_p50_ms", 2.0, at_most=True),
    Target("idle latency p99 <= 5 ms", "latency_p99_ms", 5.0, at_most=True),
    Target(
        "bulk enqueue >= 0.5 x pipelined LPUSH",
        "bulk_enqueue_rate",
        0.5,
        ("redis", "lpush_pipelined_rate"),
    ),
]


def summary(samples: list[float], unit: str, label: str) -> dict[str, Any]:
    return {
        "label": label,
        "unit": unit,
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "samples": samples,
    }


def figures(
    samples: dict[str, dict[str, list[float]]],
    metrics: dict[str, tuple[str, str]] = METRICS,
) -> dict[str, dict[str, Any]]:
    """system -> metric -> summary, in ``metrics`` order."""
    return {
        system: {
            m: summary(by_metric[m], metrics[m][1], metrics[m][0])
            for m in metrics
            if by_metric.get(m)
        }
        for system, by_metric in samples.items()
    }


def evaluate(
    figs: dict[str, dict[str, Any]], targets: list[Target] = TARGETS
) -> list[dict[str, Any]]:
    """Each target whose figures were measured: value (median), min, max, met.

    A ratio is taken within each repetition (the systems ran interleaved, so the ratio
    cancels what drifts between repetitions); its median decides.
    """
    out = []
    for t in targets:
        mine = figs.get(t.system, {}).get(t.metric)
        theirs = figs.get(t.other[0], {}).get(t.other[1]) if t.other else None
        if mine is None or (t.other and theirs is None):
            continue
        values = mine["samples"]
        if theirs is not None:
            values = [a / b for a, b in zip(values, theirs["samples"], strict=False)]
        value = statistics.median(values)
        met = t.met(value)
        kind = "ratio" if t.other else mine["unit"]
        out.append(
            {
                "target": t.text,
                "kind": kind,
                "required": t.required,
                "value": value,
                "min": min(values),
                "max": max(values),
                "met": met,
            }
        )
    return out


def _num(value: float, unit: str) -> str:
    if unit in ("ms", "MB", "ratio"):
        return f"{value:,.2f}"
    return f"{value:,.0f}"


def table(result: dict[str, Any]) -> str:
    """The terminal table: every figure, then every target."""
    s = result["settings"]
    lines = [
        f"labqueue bench {result['created']}: {s['jobs']} jobs (RQ {s['rq_jobs']}), "
        f"{s['repeat']} repetitions, {s['workers']} workers in the N-worker drain, "
        f"redis-server {result['machine']['redis_server']}, {result['machine']['cpus']} CPUs",
        "",
        f"{'system':<14}{'figure':<37}{'median':>11}{'min':>11}{'max':>11}  unit",
    ]
    for system, metrics in result["figures"].items():
        for fig in metrics.values():
            u = fig["unit"]
            lines.append(
                f"{SYSTEM_NAMES.get(system, system):<14}{fig['label']:<37}"
                f"{_num(fig['median'], u):>11}{_num(fig['min'], u):>11}{_num(fig['max'], u):>11}"
                f"  {u}"
            )
    lines += ["", *target_lines(result["targets"], 42)]
    return "\n".join(lines)


def target_lines(targets: list[dict[str, Any]], width: int) -> list[str]:
    """A header and one line per target: median, min, max, met or NOT MET."""
    lines = [f"{'target':<{width}}{'median':>9}{'min':>9}{'max':>9}  "]
    for t in targets:
        k = t["kind"]
        lines.append(
            f"{t['target']:<{width}}{_num(t['value'], k):>9}{_num(t['min'], k):>9}"
            f"{_num(t['max'], k):>9}  {'met' if t['met'] else 'NOT MET'}"
        )
    return lines


def write(result: dict[str, Any], out_dir: Path, stamp: str) -> tuple[Path, Path]:
    """results/bench/<stamp>.json and latest.json (the same content)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2) + "\n"
    dated, latest = out_dir / f"{stamp}.json", out_dir / "latest.json"
    dated.write_text(text)
    latest.write_text(text)
    return dated, latest
