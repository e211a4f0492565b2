"""The ERP's capacity, measured (the ``capacity`` scenarios): what the ERP served, how many
calls were inside it (in service, and waiting in its line) over time, how long each waited
there (its own call log: ``started - received``), what waited in Redis meanwhile (the ``erp``
queue, and the ERP jobs the limit parked: out of the queue until a slot frees) and what the
shopper saw.

    from loadtests import erpcap, results
    runs = erpcap.load(results.REFERENCE)          # {"capacity-k": ScenarioResult, ...}
    figs = [erpcap.figures(res) for res in runs.values()]
    print(erpcap.table(figs))                      # one Markdown row per run

Every figure comes from files the runner wrote: ``calls.csv`` (the ERP's log),
``sampler.csv`` (the queue) and ``requests-N.csv`` (the shopper).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labqueue.demo.config import ERP_LIMITER

from .results import Requests, Run, ScenarioResult, load_scenario, percentile, tail_of
from .shapes import GROUPS
from .summary import drain_seconds

#: The three runs, in the order they tell the story.
RUNS = GROUPS["capacity"]
#: The sampler's columns of the ERP jobs waiting in Redis: in the erp queue, and parked by the
#: store's ERP limiter (jobs, and the oldest one's age).
QUEUE, AGE = "queue_erp", "age_erp"
PARKED, PARKED_AGE = f"parked_{ERP_LIMITER}", f"parked_age_{ERP_LIMITER}"


def load(directory: Path | str) -> dict[str, ScenarioResult]:
    """The capacity runs recorded in ``directory`` (a run's directory), by name; those it
    lacks are left out (read each scenario's own directory, whatever meta.json lists)."""
    out = {}
    for name in RUNS:
        if (Path(directory) / name / "scenario.json").exists():
            out[name] = load_scenario(Path(directory) / name)
    return out


def erp_calls(res: ScenarioResult) -> Requests | None:
    """The ERP's own log of this run (None: the run kept no calls.csv, or no ERP call)."""
    calls = res.calls
    if calls is None or not len(calls):
        return None
    mine = calls.where(calls.service == "erp")
    return mine if len(mine) else None


def service_start(calls: Requests) -> np.ndarray:
    """When each call's service began (epoch s): ``started``, or its arrival for an ERP
    without a capacity (nobody waits there)."""
    started = np.asarray(calls.columns.get("started", calls.received), dtype=float)
    return np.where(np.isnan(started), calls.received, started)


def inside(calls: Requests, t0: float, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(calls in service, calls waiting inside the ERP) at each of ``times`` (s after t0)."""
    t = np.asarray(times, dtype=float)[:, None]
    received = calls.received[None, :] - t0
    started = service_start(calls)[None, :] - t0
    answered = calls.answered[None, :] - t0
    in_service = ((started <= t) & (t < answered)).sum(axis=1)
    waiting = ((received <= t) & (t < started)).sum(axis=1)
    return in_service, waiting


def busy_seconds(calls: Requests) -> float:
    """From the first call's arrival to the last call's answer: the ERP's busy period."""
    return float(np.nanmax(calls.answered) - np.nanmin(calls.received))


@dataclass(frozen=True)
class ErpFigures:
    """One capacity run, in figures (times in seconds unless the name says ms)."""

    name: str
    erp_workers: int  #: queue worker processes on the erp queue
    threads: int  #: threads per worker process
    limit: int | None  #: the ERP jobs' max_concurrency (None: no limit)
    capacity: int  #: calls the ERP served at once (0: unlimited)
    calls: int
    served_per_s: float  #: ERP calls answered per second over its busy period
    in_service_mean: float  #: time-averaged calls in service (Little: sum of service ÷ T)
    in_service_max: int  #: the most in service at a call's start (the ERP's own count)
    waiting_mean: float  #: time-averaged calls waiting inside the ERP
    wait_mean: float  #: a call's wait inside the ERP, mean
    wait_p95: float
    wait_max: float
    queue_max: float  #: jobs in Redis's erp queue, at most
    age_max: float  #: the oldest erp job's wait in Redis (queued or parked), at most
    parked_max: float  #: ERP jobs the limit parked in Redis, at most (nan: not sampled)
    waiting_max: float  #: ERP jobs waiting in Redis, queued + parked, at most (nan: as above)
    checkout_p50_ms: float  #: the deferred checkout's answer, from its intended start
    checkout_tail: str  #: which tail the sample supports (p99, p90, max)
    checkout_tail_ms: float
    drain: float | None  #: s after the load until every queue was empty and workers idle

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _settings(res: ScenarioResult) -> tuple[int, int, int | None, int]:
    """(ERP workers, threads, limit, capacity): what the runner recorded, else the scenario."""
    extra = res.scenario.extra
    options = res.info.get("stack_options") or extra
    workers = (res.info.get("workers") or extra.get("workers") or {}).get("erp", 0)
    threads = int(options.get("queue_threads") or 1)
    return int(workers), threads, options.get("erp_limit"), int(options.get("erp_capacity") or 0)


def _sampled_max(res: ScenarioResult, *keys: str) -> float:
    """The largest value sampled in any of ``keys`` (nan: none sampled)."""
    found = [v for k in keys if (v := res.samples.get(k)) is not None and len(v)]
    if not found or all(np.isnan(v).all() for v in found):
        return float("nan")
    return float(max(np.nanmax(v) for v in found if not np.isnan(v).all()))


def _in_redis(res: ScenarioResult, limit: int | None) -> tuple[float, float]:
    """(the most ERP jobs parked, the most waiting in Redis at once, queued or parked); nan
    for a limited run sampled before the sampler counted parked jobs (a run without the
    limit parks nothing)."""
    queued, parked = res.samples.get(QUEUE), res.samples.get(PARKED)
    if queued is None or not len(queued):
        return float("nan"), float("nan")
    if parked is None:
        return (float("nan"), float("nan")) if limit else (0.0, float(np.nanmax(queued)))
    both = np.nan_to_num(queued) + np.nan_to_num(parked)
    return float(np.nanmax(parked)), float(np.nanmax(both))


def figures(res: ScenarioResult) -> ErpFigures:
    """The figures of one capacity run (nan where the run lacks the data)."""
    workers, threads, limit, capacity = _settings(res)
    calls = erp_calls(res)
    ok = res.requests.latency_ms[res.requests.ok == 1]
    tail, tail_ms = tail_of(ok)
    parked_max, waiting_max = _in_redis(res, limit)
    base: dict[str, Any] = {
        "name": res.name, "erp_workers": workers, "threads": threads, "limit": limit,
        "capacity": capacity, "queue_max": _sampled_max(res, QUEUE),
        "age_max": _sampled_max(res, AGE, PARKED_AGE), "parked_max": parked_max,
        "waiting_max": waiting_max, "checkout_p50_ms": percentile(ok, 50),
        "checkout_tail": tail, "checkout_tail_ms": tail_ms, "drain": drain_seconds(res),
    }  # fmt: skip
    if calls is None:
        nan = float("nan")
        return ErpFigures(calls=0, served_per_s=nan, in_service_mean=nan, in_service_max=0,
                          waiting_mean=nan, wait_mean=nan, wait_p95=nan, wait_max=nan,
                          **base)  # fmt: skip
    busy = busy_seconds(calls)
    started = service_start(calls)
    waits = started - calls.received
    counts = np.asarray(calls.columns.get("in_service", np.array([np.nan])), dtype=float)
    return ErpFigures(
        calls=len(calls),
        served_per_s=len(calls) / busy if busy > 0 else float("nan"),
        in_service_mean=float(np.sum(calls.answered - started)) / busy if busy > 0 else 0.0,
        in_service_max=int(np.nanmax(counts)) if not np.isnan(counts).all() else 0,
        waiting_mean=float(np.sum(waits)) / busy if busy > 0 else 0.0,
        wait_mean=float(np.mean(waits)),
        wait_p95=percentile(waits, 95),
        wait_max=float(np.max(waits)),
        **base,
    )


def workers_label(fig: ErpFigures, noun: str = " ERP workers") -> str:
    """``8 ERP workers, limit 2`` (``8 × 4 threads`` when threaded)."""
    count = f"{fig.erp_workers}" + (f" × {fig.threads} threads" if fig.threads > 1 else "")
    limit = f", limit {fig.limit}" if fig.limit else ""
    return f"{count}{noun}{limit}"


def _s(seconds: float) -> str:
    if np.isnan(seconds):
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 0.9995 else f"{seconds:.1f} s"


def in_redis(fig: ErpFigures) -> str:
    """``80 (queue 2, parked 79)``: the most ERP jobs waiting in Redis at once, and the most
    in each part (each part's own maximum: they need not be at the same moment)."""
    if np.isnan(fig.waiting_max):
        return f"{fig.queue_max:.0f} in the queue (parked not sampled)"
    return f"{fig.waiting_max:.0f} (queue {fig.queue_max:.0f}, parked {fig.parked_max:.0f})"


TABLE_HEAD = (
    "| run | ERP workers | ERP calls/s | in service (mean, max) | waiting inside the ERP "
    "(mean) | wait inside the ERP (mean, p95) | erp jobs waiting in Redis, max (in the erp "
    "queue, parked by the limit) | oldest erp job in Redis (max) "
    "| deferred checkout (p50, tail) |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


def table(figs: list[ErpFigures]) -> str:
    """The runs side by side, as a Markdown table (the notebook and the README show it)."""
    rows = [TABLE_HEAD]
    for f in figs:
        rows.append(
            f"| {f.name} | {workers_label(f, noun='')} "
            f"| {f.served_per_s:.1f} | {f.in_service_mean:.2f}, {f.in_service_max} "
            f"| {f.waiting_mean:.1f} | {_s(f.wait_mean)}, {_s(f.wait_p95)} "
            f"| {in_redis(f)} | {_s(f.age_max)} "
            f"| {f.checkout_p50_ms:.0f} ms, {f.checkout_tail} {f.checkout_tail_ms:.0f} ms |"
        )
    return "\n".join(rows)


def find(start: Path | str | None = None) -> Path | None:
    """The run the notebook reads the capacity scenarios from: ``$LABQUEUE_RUN``, else the
    nearest ``results/latest``, else ``results/reference``, whichever holds them (None:
    none does yet)."""
    explicit = os.environ.get("LABQUEUE_RUN")
    here = Path(start or Path.cwd()).resolve()
    candidates = [Path(explicit)] if explicit else []
    for folder in (here, *here.parents):
        candidates += [folder / "results" / "latest", folder / "results" / "reference"]
    found = [c for c in candidates if (c / RUNS[0] / "scenario.json").exists()]
    return found[0].resolve() if found else None


def shown(run: Path) -> str:
    """``run`` as a reader finds it: from the folder that holds ``results`` (a path of this
    machine's otherwise)."""
    for parent in run.parents:
        if parent.name == "results":
            return str(run.relative_to(parent.parent))
    return str(run)


NOT_YET = (
    "*No capacity runs recorded here yet: run `python -m loadtests --scenarios capacity` "
    "(or `make loadtest LOADTEST_ARGS='--scenarios capacity'`, about two minutes), then run "
    "this notebook again.*"
)


def story(figs: list[ErpFigures]) -> str:
    """What the capacity runs show, in the runs' own numbers (Markdown)."""
    by_name = {f.name: f for f in figs}
    k, four_k = by_name.get(RUNS[0]), by_name.get(RUNS[1])
    if k is None or four_k is None:
        return NOT_YET
    text = (
        f"**Workers past the ERP's capacity:** with {workers_label(k)} the ERP served "
        f"{k.served_per_s:.1f} calls/s; with {workers_label(four_k)}, {four_k.served_per_s:.1f} "
        f"calls/s. In service at most {four_k.in_service_max} either way (its capacity is "
        f"{four_k.capacity}); the extra workers only stood in the ERP's line, "
        f"{four_k.waiting_mean:.1f} calls on average, each waiting {_s(four_k.wait_mean)} "
        f"(p95 {_s(four_k.wait_p95)}) before its service began."
    )
    limited = by_name.get(RUNS[2])
    if limited is None:
        return text + " *(The limited run is not recorded here: run the capacity scenarios again.)*"
    text += (
        f"\n\n**With the limit** ({workers_label(limited)}): the ERP served "
        f"{limited.served_per_s:.1f} calls/s, at most {limited.in_service_max} in service, "
        f"and a call waited {_s(limited.wait_mean)} inside it on average (at worst "
        f"{_s(limited.wait_max)}). {_where_it_waited(limited)} The shopper never noticed: the "
        f"deferred checkout's median answer was at most "
        f"{max(f.checkout_p50_ms for f in figs):.0f} ms in every run."
    )
    return text + _where_the_time_went(k, four_k, limited)


def idle_per_call(fig: ErpFigures) -> float:
    """Seconds an ERP slot stood idle per call over the busy period, between one call's
    answer and the next call's start: (capacity - mean in service) ÷ calls/s (nan: no
    capacity or no calls)."""
    if not fig.capacity or not fig.served_per_s > 0:
        return float("nan")
    return (fig.capacity - fig.in_service_mean) / fig.served_per_s


def _where_the_time_went(k: ErpFigures, four_k: ErpFigures, limited: ErpFigures) -> str:
    """The runs' waits and drains side by side: the extra workers move the wait, the limit
    pays a handover per call (Markdown)."""
    idle = {f.name: idle_per_call(f) for f in (k, four_k, limited)}
    gap = limited.calls * (idle[limited.name] - idle[four_k.name]) / (limited.capacity or 1)
    drains = [f.drain for f in (k, four_k, limited)]
    if any(d is None for d in drains) or any(np.isnan(v) for v in idle.values()):
        return ""
    dk, d4k, dlim = (float(d) for d in drains if d is not None)
    return (
        f"\n\n**Where the time went.** With {workers_label(four_k)} the oldest ERP job waited "
        f"{_s(four_k.age_max)} in Redis, and a call then waited {_s(four_k.wait_mean)} on "
        f"average inside the ERP: {_s(four_k.age_max + four_k.wait_mean)} together, against "
        f"{_s(k.age_max)} in Redis with {workers_label(k)}. The extra workers moved part of "
        f"the wait into the ERP; they did not shorten it. The burst drained "
        f"{_s(dk)}, {_s(d4k)} and {_s(dlim)} after the load stopped (K, 4K, limited). The "
        f"limit is not free: between one ERP call's answer and the next one's start a slot "
        f"stood idle {_s(idle[limited.name])} per call with it (the slot freed, a parked job "
        f"back at the head of its queue, a worker woken to fetch it and take the slot), "
        f"{_s(idle[k.name])} with K workers (a fetch) and {_s(idle[four_k.name])} with 4K "
        f"(a line inside the ERP starts the next call at once); over {limited.calls} calls "
        f"and {limited.capacity} slots that is {_s(gap)} of the {_s(dlim - d4k)} between the "
        f"limited and the 4K drain. A parked job paid for it: the oldest waited "
        f"{_s(limited.age_max)} with the limit, {_s(limited.age_max - k.age_max)} more than "
        f"with K workers, whose drain ended {_s(dlim - dk)} sooner. One run each, so gaps "
        f"this small are a hint, not a result: run the scenarios again to see how much they "
        f"move."
    )


def _where_it_waited(limited: ErpFigures) -> str:
    """Where the limited run's burst waited, in its numbers."""
    if np.isnan(limited.waiting_max):
        return (
            f"The `erp` queue peaked at {limited.queue_max:.0f} jobs, its oldest at "
            f"{_s(limited.age_max)}; but this run did not sample the jobs the limit parked (out "
            "of the queue until a slot frees), so where the burst waited is not all here: run "
            "the capacity scenarios again."
        )
    return (
        f"The burst waited in Redis instead: up to {limited.waiting_max:.0f} ERP jobs at once, "
        f"at most {limited.parked_max:.0f} of them parked by the limit (out of the `erp` queue, "
        f"which held at most {limited.queue_max:.0f}) and the oldest waiting "
        f"{_s(limited.age_max)}. `labqueue stats`, the monitor and `/metrics` show the parked "
        f"jobs under the limiter `{ERP_LIMITER}`, not in the queue."
    )


def add_to_summary(run: Run, summary: dict[str, Any]) -> str:
    """Each capacity run's figures into its entry of ``summary`` (``summary.json``) as
    ``erp``; returns their table ("" when the run has none)."""
    figs = [figures(run.scenarios[n]) for n in RUNS if n in run.scenarios]
    for f in figs:
        clean = {k: None if isinstance(v, float) and math.isnan(v) else v
                 for k, v in f.to_dict().items()}  # fmt: skip
        summary.setdefault(f.name, {})["erp"] = clean
    return table(figs) if figs else ""
