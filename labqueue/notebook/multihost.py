"""Notebook 7's figures: jobs per host, and a timeline of job runs around a killed host."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .charts import projector, shown

HOST_COLORS = {"host-a": "#1f77b4", "host-b": "#2ca02c", "host-c": "#d62728"}


def nap_runs(raw: Iterable[str], until: float) -> list[dict[str, Any]]:
    """Runs of :class:`~labqueue.testing.jobs.Nap` from its log: ``{id, host, start, end}``;
    a run that never ended (its host was killed) ends at ``until``, ``finished`` False."""
    starts: dict[tuple[str, str], float] = {}
    runs = []
    for record in (json.loads(r) for r in raw):
        key = (record["id"], record["host"])
        if record["event"] == "start":
            starts[key] = record["at"]
        else:
            runs.append(
                {
                    "id": key[0],
                    "host": key[1],
                    "start": starts.pop(key),
                    "end": record["at"],
                    "finished": True,
                }
            )
    for (job, host), start in starts.items():
        runs.append({"id": job, "host": host, "start": start, "end": until, "finished": False})
    return runs


def jobs_per_host(counts: Mapping[str, int]) -> Figure:
    with projector():
        fig, ax = plt.subplots(figsize=(8, 3.5), layout="constrained")
        hosts = sorted(counts)
        ax.bar(hosts, [counts[h] for h in hosts], color=[HOST_COLORS.get(h, "grey") for h in hosts])
        ax.set_title("One queue, three hosts: who ran the jobs")
        ax.set_xlabel("host (its own hostname and pid namespace)")
        ax.set_ylabel("jobs run")
    return shown(fig)


def killed_host_timeline(
    runs: list[dict[str, Any]], killed: str, killed_at: float, released_at: float, t0: float
) -> Figure:
    """One row per job, one bar per run, coloured by host; the kill and the release marked."""
    jobs = sorted(
        {r["id"] for r in runs}, key=lambda j: min(r["start"] for r in runs if r["id"] == j)
    )
    with projector():
        fig, ax = plt.subplots(figsize=(11, 4.5), layout="constrained")
        for row, job in enumerate(jobs):
            for run in (r for r in runs if r["id"] == job):
                ax.barh(
                    row, run["end"] - run["start"], left=run["start"] - t0, height=0.6,
                    color=HOST_COLORS.get(run["host"], "grey"),
                    hatch="" if run["finished"] else "//", alpha=1.0 if run["finished"] else 0.5,
                )  # fmt: skip
        ax.axvline(killed_at - t0, color="black", linestyle="--")
        ax.axvline(released_at - t0, color="black", linestyle=":")
        ax.text(killed_at - t0, len(jobs) - 0.4, f" {killed} killed", va="bottom")
        ax.text(
            released_at - t0,
            -0.9,
            f" its jobs requeued (+{released_at - killed_at:.1f} s)",
            va="top",
        )
        ax.set_yticks(range(len(jobs)), [f"job {i + 1}" for i in range(len(jobs))])
        ax.set_ylim(len(jobs) - 0.2, -1.4)
        ax.set_xlabel("seconds since the jobs were enqueued")
        ax.set_title("A host dies mid-job: its jobs wait for dead-after, then run elsewhere")
        handles = [Patch(color=c, label=h) for h, c in HOST_COLORS.items()]
        handles.append(
            Patch(facecolor="white", edgecolor="grey", hatch="//", label="killed mid-run")
        )
        ax.legend(handles=handles, loc="lower right", ncols=4)
    return shown(fig)
