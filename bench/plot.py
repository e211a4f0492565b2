"""The PNGs of a bench result: throughput, idle latency, and the targets, side by side;
and the I/O round's throughput and memory (``-io.png``).

``python -m bench.plot [results/bench/latest.json] [-o out.png]``; a notebook cell can call
``bench.plot.plot(json.load(open(path)), png_path)`` (``plot_io`` for the I/O round) or
read the JSON itself.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

COLORS = {"redis": "#9e9e9e", "labqueue": "#1f5fa8", "huey": "#e08a1e", "rq": "#3b9a4a"}
LEGEND = {
    "redis": "Redis ceiling (raw redis-py commands)",
    "labqueue": "labqueue",
    "huey": "huey (RedisHuey, 1 worker thread)",
    "rq": "RQ (SimpleWorker)",
}
#: Throughput rows: (row label, {system: metric}); the ceiling's raw command in each row.
ROWS = [
    ("enqueue, one call per job\n(ceiling: LPUSH, 1 round trip)", {"redis": "lpush_rate"}),
    ("bulk enqueue\n(ceiling: pipelined LPUSH)", {"redis": "lpush_pipelined_rate"}),
    ("drain, 1 worker process\n(ceiling: LMOVE, 1 round trip)", {"redis": "lmove_rate"}),
    ("drain, N worker processes", {}),
]
ROW_METRIC = ["enqueue_rate", "bulk_enqueue_rate", "drain_1_rate", "drain_n_rate"]
SYSTEMS = ["redis", "labqueue", "huey", "rq"]


def _err(fig: dict[str, Any]) -> list[list[float]]:
    return [[fig["median"] - fig["min"]], [fig["max"] - fig["median"]]]


def throughput(ax: Axes, figs: dict[str, Any], workers: int) -> None:
    height = 0.2
    for row, ((_, special), default) in enumerate(zip(ROWS, ROW_METRIC, strict=True)):
        present = [s for s in SYSTEMS if special.get(s, default) in figs.get(s, {})]
        for i, system in enumerate(present):
            fig = figs[system][special.get(system, default)]
            y = row + (i - (len(present) - 1) / 2) * height
            ax.barh(
                y,
                fig["median"],
                height * 0.9,
                color=COLORS[system],
                xerr=_err(fig),
                error_kw={"elinewidth": 1, "capsize": 2},
            )
            ax.text(fig["max"] * 1.08, y, f"{fig['median']:,.0f}", va="center", fontsize=8)
    ax.set_xscale("log")
    labels = [label.replace(" N ", f" {workers} ") for label, _ in ROWS]
    ax.set_yticks(range(len(ROWS)), labels, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel("jobs (or raw commands) per second, log scale: longer is better")
    ax.set_title("Throughput (median; whiskers: min to max)")
    ax.grid(axis="x", which="both", alpha=0.3)
    left, right = ax.get_xlim()
    ax.set_xlim(left, right * 3)  # room for the value labels


def latency(ax: Axes, figs: dict[str, Any]) -> None:
    present = [s for s in SYSTEMS if "latency_p50_ms" in figs.get(s, {})]
    for i, system in enumerate(present):
        for j, metric in enumerate(("latency_p50_ms", "latency_p99_ms")):
            fig = figs[system][metric]
            x = i + (j - 0.5) * 0.38
            ax.bar(
                x,
                fig["median"],
                0.34,
                color=COLORS[system],
                alpha=1.0 if j == 0 else 0.55,
                yerr=_err(fig),
                error_kw={"elinewidth": 1, "capsize": 2},
            )
            ax.text(
                x,
                fig["max"] * 1.05,
                f"{('p50', 'p99')[j]}\n{fig['median']:.1f}",
                ha="center",
                va="bottom",
                fontsize=8,
            )
    for bound, style, label in ((2.0, ":", "p50 target: 2 ms"), (5.0, "--", "p99 target: 5 ms")):
        ax.axhline(bound, color="#b00020", linestyle=style, linewidth=1.2, label=label)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.set_xticks(range(len(present)), [LEGEND[s].split(" (")[0] for s in present])
    ax.set_ylabel("enqueue-to-start latency (ms)")
    ax.set_title("Idle worker latency, p50 and p99: lower is better")
    ax.set_ylim(0, max(ax.get_ylim()[1], 6.0) * 1.2)
    ax.grid(axis="y", alpha=0.3)


def cpu(ax: Axes, figs: dict[str, Any]) -> None:
    present = [s for s in SYSTEMS if "worker_cpu_us" in figs.get(s, {})]
    for i, system in enumerate(present):
        for j, metric in enumerate(("worker_cpu_us", "redis_cpu_us")):
            fig = figs[system][metric]
            y = i + (j - 0.5) * 0.38
            ax.barh(
                y,
                fig["median"],
                0.34,
                color=COLORS[system],
                alpha=1.0 if j == 0 else 0.5,
                xerr=_err(fig),
                error_kw={"elinewidth": 1, "capsize": 2},
            )
            where = ("worker process", "redis-server")[j]
            ax.text(
                fig["max"] * 1.1, y, f"{where}: {fig['median']:,.0f} µs", va="center", fontsize=8
            )
    ax.set_xscale("log")
    ax.set_yticks(range(len(present)), [LEGEND[s].split(" (")[0] for s in present])
    ax.invert_yaxis()
    left, right = ax.get_xlim()
    ax.set_xlim(left, right * 12)
    ax.set_xlabel("CPU µs per job, log scale (dark: worker process, light: redis-server)")
    ax.set_title("CPU per job in the 1-worker drain: lower is cheaper")
    ax.grid(axis="x", which="both", alpha=0.3)


def targets(ax: Axes, result: dict[str, Any]) -> None:
    rows = result["targets"]
    for i, t in enumerate(rows):
        score = t["required"] / t["value"] if t["kind"] == "ms" else t["value"] / t["required"]
        ax.barh(i, score, 0.6, color="#2e7d32" if t["met"] else "#c62828")
        shown = f"{t['value']:.2f} ms" if t["kind"] == "ms" else f"{t['value']:.2f}x"
        ax.text(
            max(score, 1.0) + 0.05,
            i,
            f"{shown} {'met' if t['met'] else 'NOT met'}",
            va="center",
            fontsize=8,
        )
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(range(len(rows)), [t["target"] for t in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(1.6, ax.get_xlim()[1] * 1.25))
    ax.set_xlabel("share of the target reached (right of 1 = met)")
    ax.set_title("labqueue's targets (median of per-repetition ratios)")


def plot(result: dict[str, Any], path: Path) -> Path:
    """Draw ``result`` (the JSON bench.run writes) to ``path``; returns the path."""
    figs = result["figures"]
    fig = plt.figure(figsize=(16, 12), dpi=100, layout="constrained")
    grid = fig.add_gridspec(3, 2, width_ratios=[1.3, 1], height_ratios=[1.1, 0.8, 1.1])
    throughput(fig.add_subplot(grid[:, 0]), figs, result["settings"]["workers"])
    latency(fig.add_subplot(grid[0, 1]), figs)
    cpu(fig.add_subplot(grid[1, 1]), figs)
    if result["targets"]:
        targets(fig.add_subplot(grid[2, 1]), result)
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLORS[s]) for s in SYSTEMS if s in figs]
    fig.legend(
        handles,
        [LEGEND[s] for s in SYSTEMS if s in figs],
        loc="outside lower center",
        ncol=4,
        frameon=False,
    )
    s, m = result["settings"], result["machine"]
    fig.suptitle(
        f"labqueue vs the Redis ceiling, huey and RQ: no-op jobs on one private redis-server "
        f"{m['redis_server']}\n{s['jobs']:,} jobs per drain (RQ {s['rq_jobs']:,}), "
        f"N = {s['workers']} workers, median of {s['repeat']} repetitions, {m['cpus']} CPUs, "
        f"{result['created']}",
        fontsize=12,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


IO_COLORS = {
    "labqueue-threads": "#1f5fa8",
    "labqueue-procs": "#8fb3e0",
    "huey": "#e08a1e",
    "dramatiq": "#7b4fa6",
}
#: The I/O round's panels: (metric, x-axis label, title, number format).
IO_PANELS = [
    ("io_rate", "jobs per second", "Throughput: longer is better", ",.0f"),
    ("io_peak_rss_mb", "MB (10^6 bytes)", "Peak RSS of all its worker processes", ",.0f"),
    ("io_rate_per_100mb", "jobs/s per 100 MB of peak RSS", "Throughput per memory", ",.0f"),
    ("io_mb_per_slot", "MB per job it can run at once", "Memory per in-flight job", ",.1f"),
]


def io_panel(ax: Axes, io: dict[str, Any], metric: str, fmt: str) -> None:
    """One horizontal bar per contender (median, whiskers min to max), its value beside."""
    names = [n for n in io["figures"] if metric in io["figures"][n]]
    for i, name in enumerate(names):
        fig = io["figures"][name][metric]
        ax.barh(i, fig["median"], 0.7, color=IO_COLORS.get(name, "#9e9e9e"), xerr=_err(fig),
                error_kw={"elinewidth": 1, "capsize": 3})  # fmt: skip
        ax.text(fig["max"] * 1.03, i, format(fig["median"], fmt), va="center", fontsize=13)
    labels = [io["contenders"][n]["label"].replace(" x ", "\n") for n in names]
    ax.set_yticks(range(len(names)), labels, fontsize=12)
    ax.invert_yaxis()
    ax.set_xlim(0, ax.get_xlim()[1] * 1.25)  # room for the values
    ax.grid(axis="x", alpha=0.3)
    ax.tick_params(axis="x", labelsize=12)


def plot_io(result: dict[str, Any], path: Path) -> Path:
    """Draw the I/O round of ``result`` (its "io" part) to ``path``; returns the path."""
    io = result["io"]
    s = io["settings"]
    fig, axes = plt.subplots(2, 2, figsize=(12, 9), dpi=100, layout="constrained")
    for ax, (metric, xlabel, title, fmt) in zip(axes.flat, IO_PANELS, strict=True):
        io_panel(ax, io, metric, fmt)
        ax.set_xlabel(xlabel, fontsize=12)
        ax.set_title(title, fontsize=14)
    ideal = s["threads"] / s["sleep_s"]
    rate = axes.flat[0]
    on_top = rate.get_xaxis_transform()  # x in jobs/s, y in the axes' height
    for x, style, color, text, side in (
        (ideal, "--", "black", f" ideal {ideal:,.0f}", "left"),
        (0.8 * ideal, ":", "#b00020", f"target {0.8 * ideal:,.0f} ", "right"),
    ):
        rate.axvline(x, color=color, linestyle=style, linewidth=1.5)
        rate.text(x, 1.01, text, transform=on_top, ha=side, va="bottom", color=color,
                  fontsize=11)  # fmt: skip
    rate.set_xlim(0, max(rate.get_xlim()[1], ideal * 1.3))
    rate.set_title(IO_PANELS[0][2], fontsize=14, pad=20)
    met = sum(t["met"] for t in io["targets"])
    verdict = f"met: {met} of {len(io['targets'])}" if io["targets"] else "not measured"
    fig.suptitle(
        f"I/O-bound drain: {s['jobs']:,} jobs that each sleep {s['sleep_s'] * 1000:.0f} ms, "
        f"median of {s['repeat']} (whiskers: min to max)\nlabqueue --threads {s['threads']}'s "
        f"targets {verdict}; {result['machine']['cpus']} CPUs, "
        f"{result['created']}",
        fontsize=14,
    )
    fig.text(0.5, -0.01, "What to see: a bar at the dashed line kept all its slots busy; "
             "the lower row is what that costs in memory.", ha="center", va="top",
             fontsize=12)  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Draw the PNG of a bench result.")
    parser.add_argument("json", nargs="?", type=Path, default=Path("results/bench/latest.json"))
    parser.add_argument("-o", "--out", type=Path, help="PNG path (default: beside the JSON)")
    args = parser.parse_args(argv)
    result = json.loads(args.json.read_text())
    out = args.out or args.json.with_suffix(".png")
    if result.get("figures"):
        print(plot(result, out))
    if "io" in result:
        print(plot_io(result, out.with_name(f"{out.stem}-io.png")))


if __name__ == "__main__":
    main()
