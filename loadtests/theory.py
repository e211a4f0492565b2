"""Notebook 4's checks of queueing theory against a run, as numbers and as Markdown.

    from loadtests import results, theory
    run = results.load_run()
    theory.erlang_rows(run)        # M/G/c prediction vs measured mean, per step below capacity
    theory.fluid_rows(run)         # past capacity: latency slope (λ − μ)/μ vs measured
    theory.closed_rows(run)        # closed loop: R = N/X − Z vs measured
    theory.backlog_rows(run)       # Little's law used: requests in gunicorn's listen backlog

Every rate is the run's own: λ is what arrived in the step (Poisson varies around the
offered rate), μ = c ÷ S with S the mean service time at the lowest step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from labqueue.notebook import queueing

from .plotstyle import mean_service_s
from .results import Run, ScenarioResult


@dataclass(frozen=True)
class Service:
    """The sync store as a queue: c servers, mean service S (s), its cs², capacity c ÷ S."""

    workers: int
    mean_s: float
    cs2: float

    @property
    def capacity(self) -> float:
        return queueing.capacity(self.mean_s, self.workers)


def service_of(run: Run) -> Service:
    res = run["sync"]
    req = res.requests
    chosen = req.server_ms[(req.step == 0) & (req.ok == 1)] / 1000.0
    chosen = chosen[~np.isnan(chosen)]
    mean = mean_service_s(res) or float("nan")
    cs2 = float(np.var(chosen) / mean**2) if len(chosen) else 0.0
    return Service(int(run.meta["settings"]["web_workers"]), mean, cs2)


@dataclass(frozen=True)
class StepRates:
    step: int
    offered: float  #: the nominal rate, req/s
    arrived: float  #: λ: requests meant to start in the step ÷ its length
    mean_s: float  #: measured mean latency from the intended start
    achieved: float  #: good answers completing in the step per second
    served: float  #: good answers to the step's own arrivals, per second of the step


def step_rates(res: ScenarioResult) -> list[StepRates]:
    req = res.requests
    done = res.rel(req.done)
    out = []
    for i, (start, end) in enumerate(res.scenario.step_bounds()):
        mine = req.step == i
        lat = req.latency_ms[mine] / 1000.0
        good = (req.ok == 1) & (done >= start) & (done < end)
        out.append(
            StepRates(
                i,
                res.scenario.steps[i].rate,
                int(mine.sum()) / (end - start),
                float(np.nanmean(lat)) if len(lat) else math.nan,
                int(good.sum()) / (end - start),
                int((mine & (req.ok == 1)).sum()) / (end - start),
            )
        )
    return out


@dataclass(frozen=True)
class ErlangRow:
    offered: float
    arrived: float
    predicted_s: float
    measured_s: float

    @property
    def error(self) -> float:
        """(measured − predicted) ÷ predicted."""
        return self.measured_s / self.predicted_s - 1.0


def erlang_rows(run: Run) -> list[ErlangRow]:
    """Below capacity: M/G/c (Allen-Cunneen) mean latency at the realised λ vs measured."""
    svc = service_of(run)
    rows = []
    for st in step_rates(run["sync"]):
        if st.arrived < svc.capacity:
            pred = queueing.mmc_latency(st.arrived, svc.mean_s, svc.workers, svc.cs2)
            rows.append(ErlangRow(st.offered, st.arrived, pred, st.mean_s))
    return rows


@dataclass(frozen=True)
class FluidRow:
    offered: float
    arrived: float
    predicted: float  #: (λ − μ) ÷ μ: seconds of latency gained per second
    measured: float  #: slope of latency against intended start within the step


def fluid_rows(run: Run) -> list[FluidRow]:
    """Past capacity: the fluid model's latency slope vs the least-squares slope of the
    step's answered requests (timeouts left out: they are capped at the timeout)."""
    svc = service_of(run)
    res = run["sync"]
    req = res.requests
    t = res.rel(req.intended)
    rows = []
    for st in step_rates(res):
        if st.arrived <= svc.capacity:
            continue
        mine = (req.step == st.step) & (req.ok == 1)
        if mine.sum() < 3:
            continue
        slope = float(np.polyfit(t[mine], req.latency_ms[mine] / 1000.0, 1)[0])
        pred = (st.arrived - svc.capacity) / svc.capacity
        rows.append(FluidRow(st.offered, st.arrived, pred, slope))
    return rows


@dataclass(frozen=True)
class ClosedRow:
    users: int
    throughput: float  #: X, answers per second in the step
    predicted_s: float  #: N ÷ X − Z
    measured_s: float  #: mean response time, from the send


def closed_rows(run: Run, name: str = "sync-closed") -> list[ClosedRow]:
    """The response-time law R = N/X − Z, per step of the closed-loop run."""
    res = run.scenarios.get(name)
    if res is None:
        return []
    req = res.requests
    sent = res.rel(req.sent)
    rows = []
    for i, (start, end) in enumerate(res.scenario.step_bounds()):
        n = res.scenario.steps[i].users
        mine = (sent >= start) & (sent < end) & (req.ok == 1)
        done = res.rel(req.done)
        x = int(((done >= start) & (done < end) & (req.ok == 1)).sum()) / (end - start)
        if x <= 0 or not mine.any():
            continue
        measured = float(np.nanmean(req.response_ms[mine])) / 1000.0
        rows.append(ClosedRow(n, x, n / x - res.scenario.think_time, measured))
    return rows


@dataclass(frozen=True)
class BacklogRow:
    offered: float
    arrived: float
    in_store: float  #: L = λ W: requests inside on average (client's view)
    in_service: float  #: X × S: busy web workers, Little's law on the workers
    in_backlog: float  #: the rest waited in gunicorn's listen backlog


def backlog_rows(run: Run) -> list[BacklogRow]:
    """Little's law used to infer what nothing measured: per step, how many requests sat in
    the kernel's listen backlog, accepted by no worker yet (λ W less the busy workers)."""
    svc = service_of(run)
    rows = []
    for st in step_rates(run["sync"]):
        busy = min(svc.workers, st.served * svc.mean_s)  # the same requests as λ W
        inside = st.arrived * st.mean_s
        rows.append(BacklogRow(st.offered, st.arrived, inside, busy, max(0.0, inside - busy)))
    return rows


def little_identity(res: ScenarioResult) -> tuple[float, float, float]:
    """(L, λ, W) over the window from the first arrival to the last departure (it starts
    and ends empty): L = λ W there to rounding, whatever the system did in between."""
    check = queueing.little_from_intervals(res.requests.intended, res.requests.done)
    return check.mean_in_system, check.arrival_rate, check.mean_time


def load_rate(res: ScenarioResult) -> float:
    """λ during the load: requests meant to start ÷ the load's length (not the drain)."""
    return len(res.requests) / res.scenario.duration


def job_times(res: ScenarioResult) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per queue: (when each job was enqueued, s after t0; its time enqueued → finished)."""
    jobs = res.jobs
    if jobs is None:
        return {}
    took = jobs.finished - jobs.enqueued
    return {
        str(q): (res.rel(jobs.enqueued[jobs.queue == q]), took[jobs.queue == q])
        for q in dict.fromkeys(jobs.queue)
    }
