"""The figures a run is judged by: per step (offered, achieved, percentiles, errors; when the
email and the ERP came), and per scenario (max queue depth: jobs waiting in Redis, queued or
parked by a concurrency limit; the oldest waiting job, drain time, did every deferred job
complete, the queue workers)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .results import Run, ScenarioResult, percentile, tail_of

#: A step where a Locust process used more CPU than this (percent) is marked unreliable.
CPU_LIMIT = 90.0


@dataclass
class StepSummary:
    step: int
    start: float  #: seconds after t0
    end: float
    offered: float  #: open loop: req/s; closed loop: users
    sent: int
    ok: int
    errors: int
    timeouts: int  #: no answer at all (status 0)
    arrived: float  #: requests intended in the step per second (Poisson: varies around rate)
    achieved: float  #: good answers per second completing within the step
    p50_ms: float
    p95_ms: float
    p99_ms: float
    response_p50_ms: float  #: from the actual send (what a closed-loop tool reports)
    response_p99_ms: float
    lag_p99_ms: float  #: how late the generator sent, vs the intended time
    tail: str  #: which tail the step's sample supports: p99 (100+ requests), p90, or max
    tail_ms: float
    locust_cpu_max: float
    unreliable: bool


def _window_max(res: ScenarioResult, key: str, start: float, end: float) -> float:
    s = res.samples
    if key not in s or not len(s[key]):
        return float("nan")
    t = res.rel(s["t"])
    chosen = s[key][(t >= start) & (t < end)]
    return float(np.nanmax(chosen)) if len(chosen) else float("nan")


def step_summaries(res: ScenarioResult) -> list[StepSummary]:
    req = res.requests
    done = res.rel(req.done)
    out = []
    for i, (start, end) in enumerate(res.scenario.step_bounds()):
        step = res.scenario.steps[i]
        mine = req.step == i
        good_done = done[(req.ok == 1) & (done >= start) & (done < end)]
        cpu = _window_max(res, "locust_cpu", start, end)
        out.append(
            StepSummary(
                step=i,
                start=start,
                end=end,
                offered=step.rate if res.scenario.loop == "open" else float(step.users),
                sent=int(mine.sum()),
                ok=int(req.ok[mine].sum()),
                errors=int((req.ok[mine] == 0).sum()),
                timeouts=int((req.status[mine] == 0).sum()),
                arrived=int(mine.sum()) / step.duration,
                achieved=len(good_done) / step.duration,
                p50_ms=percentile(req.latency_ms[mine], 50),
                p95_ms=percentile(req.latency_ms[mine], 95),
                p99_ms=percentile(req.latency_ms[mine], 99),
                response_p50_ms=percentile(req.response_ms[mine], 50),
                response_p99_ms=percentile(req.response_ms[mine], 99),
                lag_p99_ms=percentile((req.sent[mine] - req.intended[mine]) * 1000, 99),
                tail=tail_of(req.latency_ms[mine])[0],
                tail_ms=tail_of(req.latency_ms[mine])[1],
                locust_cpu_max=cpu,
                unreliable=bool(cpu > CPU_LIMIT),
            )
        )
    return out


def waiting(res: ScenarioResult) -> np.ndarray | None:
    """Jobs waiting in Redis at each sample: in the queues, plus those a concurrency limit
    parked (in no queue until a slot frees; a run sampled before the sampler counted them
    has the queues only). None for a run without samples."""
    s = res.samples
    queued = s.get("queued")
    if queued is None or not len(queued):
        return None
    parked = s.get("parked")
    return queued if parked is None else queued + np.nan_to_num(parked)


def max_queue_depth(res: ScenarioResult) -> int:
    """The most jobs waiting in Redis at once (queued + parked)."""
    found = waiting(res)
    return int(np.nanmax(found)) if found is not None else 0


def drain_seconds(res: ScenarioResult) -> float | None:
    """Seconds from the end of the load until the queues were empty, nothing parked and no
    worker busy; 0 when nothing was left; None when they had not drained when sampling
    stopped."""
    s = res.samples
    left = waiting(res)
    if left is None:
        return None
    t = res.rel(s["t"])
    idle = (left == 0) & (s["busy_workers"] == 0)
    after = t >= res.load_end
    if not after.any():
        return None
    busy_after = np.nonzero(after & ~idle)[0]
    if not len(busy_after):
        return 0.0  # nothing was left when the load stopped
    idle_later = np.nonzero(after & idle & (np.arange(len(t)) > busy_after[0]))[0]
    if not len(idle_later):
        return None
    return max(0.0, float(t[idle_later[0]] - res.load_end))


def job_totals(res: ScenarioResult) -> dict[str, int]:
    """Jobs enqueued, processed and failed during the scenario, and those still waiting in
    Redis at the end (``queued``: in the queues or parked), from the last sample."""
    s = res.samples
    if "processed" not in s or not len(s["processed"]):
        return {"enqueued": 0, "processed": 0, "failed": 0, "queued": 0}
    last = {k: int(s[k][-1]) for k in ("enqueued", "processed", "failed", "queued")}
    left = waiting(res)
    if left is not None:
        last["queued"] = int(left[-1])
    return last


def oldest_age_max(res: ScenarioResult) -> dict[str, float] | None:
    """The oldest waiting job's worst age per queue (s), parked jobs included where the
    sampler read them; None for a run that did not sample it (recorded before the sampler
    did)."""
    ages = {k[4:]: v for k, v in res.samples.items() if k.startswith("age_")}
    if not ages:
        return None
    return {
        q: round(float(np.nanmax(v)), 2) if np.isfinite(v).any() else 0.0 for q, v in ages.items()
    }


def step_delays(res: ScenarioResult) -> list[dict[str, Any]] | None:
    """Per step: p50 and p99 of the time from each order's intended start until its email
    was accepted and until the ERP had both its calls (s), and how many never got there;
    None for a run without orders.csv."""
    orders = res.orders
    if orders is None:
        return None
    out = []
    for i, step in enumerate(res.scenario.steps):
        mine = orders.step == i
        row: dict[str, Any] = {
            "step": i,
            "offered": step.rate or step.users,
            "orders": int(mine.sum()),
        }
        for what in ("email", "erp"):
            values = getattr(orders, f"{what}_s")[mine]
            row[f"{what}_p50_s"] = percentile(values, 50)
            row[f"{what}_p99_s"] = percentile(values, 99)
            row[f"{what}_never"] = int(np.isnan(values).sum())
        out.append(_clean(row))
    return out


def scenario_summary(res: ScenarioResult) -> dict[str, Any]:
    req = res.requests
    steps = step_summaries(res)
    jobs = job_totals(res)
    deferred = res.scenario.mode == "deferred"
    jobs_done = jobs["processed"] + jobs["failed"]
    return {
        "name": res.name,
        "mode": res.scenario.mode,
        "loop": res.scenario.loop,
        "requests": len(req),
        "ok": int(req.ok.sum()) if len(req) else 0,
        "errors": int((req.ok == 0).sum()) if len(req) else 0,
        "max_queue_depth": max_queue_depth(res),
        "drain_seconds": drain_seconds(res),
        "jobs": jobs,
        "all_jobs_completed": deferred and jobs["queued"] == 0 and jobs_done >= jobs["enqueued"],
        "unreliable_steps": [s.step for s in steps if s.unreliable],
        "steps": [_clean(asdict(s)) for s in steps],
        "workers": res.info.get("workers"),
        "sizing": res.info.get("sizing"),
        "oldest_age_max_s": oldest_age_max(res),
        "when": step_delays(res),
    }


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    """nan -> None, floats rounded, so the JSON is valid and readable."""
    out = {}
    for k, v in d.items():
        if isinstance(v, float):
            out[k] = None if math.isnan(v) else round(v, 2)
        else:
            out[k] = v
    return out


def run_summary(run: Run) -> dict[str, Any]:
    return {name: scenario_summary(res) for name, res in run.scenarios.items()}


def format_summary(summary: dict[str, Any]) -> str:
    """A plain-text table for the terminal: per step the median and the tail its sample
    supports (p99 from 100 requests, p90 from 10, else the maximum; summary.json keeps
    p50/p95/p99 whatever the count)."""
    lines = []
    for name, sc in summary.items():
        unit = "req/s" if sc["loop"] == "open" else "users"
        lines.append(
            f"{name} ({sc['mode']}, {sc['loop']} loop): {sc['requests']} requests, "
            f"{sc['errors']} failed"
        )
        lines.append(
            f"  {'offered':>9} {'achieved':>9} {'sent':>5} {'p50 ms':>8} {'tail ms':>13} "
            f"{'errors':>6}"
        )
        for s in sc["steps"]:
            flag = "  (unreliable: Locust CPU > 90%)" if s["unreliable"] else ""
            lines.append(
                f"  {s['offered']:>5g} {unit:<5}{s['achieved']:>7.2f}/s {s['sent']:>5} "
                f"{_ms(s['p50_ms'])} {s['tail']:>4} {_ms(s['tail_ms'])} {s['errors']:>6}{flag}"
            )
        lines += _format_deferred_side(sc, unit)
        if sc["mode"] == "deferred":
            drain = sc["drain_seconds"]
            drained = "not drained" if drain is None else f"drained {drain:.1f} s after the load"
            jobs = sc["jobs"]
            lines.append(
                f"  max queue depth {sc['max_queue_depth']}, {drained}; jobs enqueued "
                f"{jobs['enqueued']}, processed {jobs['processed']}, failed {jobs['failed']}"
            )
    return "\n".join(lines)


def _format_deferred_side(sc: dict[str, Any], unit: str) -> list[str]:
    """When the email and the ERP came, per step; the workers and their oldest waiting job."""
    lines = []
    if sc.get("when") and sc["loop"] == "open":
        lines.append(f"  {'':>15} after the intended start: email p50/p99, ERP p50/p99 (s)")
        for w in sc["when"]:
            email, erp = _pair(w, "email"), _pair(w, "erp")
            lines.append(f"  {w['offered']:>5g} {unit:<5}{'':>5} {email:>15} {erp:>15}")
    if sc["mode"] == "deferred" and sc.get("workers"):
        workers = ", ".join(f"{q}: {n}" for q, n in sc["workers"].items())
        ages = sc.get("oldest_age_max_s") or {}
        oldest = ", ".join(f"{q} {a:.1f} s" for q, a in ages.items()) or "not sampled"
        lines.append(f"  queue workers {workers}; oldest waiting job at worst: {oldest}")
    return lines


def _pair(row: dict[str, Any], what: str) -> str:
    p50, p99 = row[f"{what}_p50_s"], row[f"{what}_p99_s"]
    return "-" if p50 is None else f"{p50:.2f} / {p99:.2f}"


def _ms(v: float | None) -> str:
    return f"{'-':>8}" if v is None else f"{v:>8.0f}"
