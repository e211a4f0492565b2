"""The sentences the notebooks say about a run, with the run's own numbers (Markdown).

    from IPython.display import Markdown
    from loadtests import results, story
    run = results.load_run()
    Markdown(story.where_the_wall_went(run))     # notebook 3
    Markdown(story.sizing_table(run))            # notebook 4: Little's law, queue by queue
    Markdown(story.sized_vs_unsized(run))        # notebook 4: the two runs side by side

A run recorded before the load test kept the deferred side (no jobs.csv / orders.csv) gets
a sentence saying so instead of numbers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import sizing
from .plot_deferred import workers_text
from .plotstyle import fmt_s
from .results import Run, ScenarioResult, percentile
from .summary import drain_seconds, oldest_age_max

OLDER_RUN = (
    "*This run ({name}) was recorded before the load test kept when each job ran and when "
    "each email and ERP call happened (no `jobs.csv` or `orders.csv`), so it cannot show "
    "{what}. Run `make loadtest` (or `make loadtest QUICK=1`) and run this notebook again.*"
)


def older(run: Run, what: str) -> str:
    return OLDER_RUN.format(name=run.directory.name, what=what)


def workers_of(res: ScenarioResult) -> int:
    """How many queue workers the scenario ran (0 when the run did not say)."""
    return int(sum((res.info.get("workers") or {}).values()))


def _has_side(res: ScenarioResult | None) -> bool:
    return res is not None and res.orders is not None and res.jobs is not None


def where_the_wall_went(run: Run, name: str = "deferred") -> str:
    """One sentence: the shoppers' answers, how late the ERP heard, and why (the workers)."""
    res = run.scenarios.get(name)
    if res is None or not _has_side(res):
        return older(run, "where the wall went")
    assert res.orders is not None
    orders, top = res.orders, len(res.scenario.steps) - 1
    at_top = orders.step == top
    rate = res.scenario.steps[top].rate
    work, _ = sizing.work_per_order(res.jobs)
    workers = workers_of(res)
    capacity = workers / sum(work.values()) if work and workers else float("nan")
    ages = oldest_age_max(res) or {}
    queue, age = max(ages.items(), key=lambda kv: kv[1], default=("erp", float("nan")))
    return (
        f"**Where the wall went:** every deferred shopper had an answer within "
        f"{fmt_s(percentile(res.requests.latency_ms, 99) / 1000)} (p99), but at {rate:g} req/s "
        f"the ERP heard of their sales {fmt_s(percentile(orders.erp_s[at_top], 50))} after "
        f"the click (median; {fmt_s(float(np.nanmax(orders.erp_s)))} at worst), because "
        f"{workers} queue workers finish about {capacity:.1f} orders/s and the oldest job on "
        f"the `{queue}` queue waited up to {fmt_s(age)}: the queue moved the wall from the "
        f"request to the workers."
    )


def _sizing_of(run: Run) -> tuple[sizing.Sizing, ScenarioResult] | None:
    backlog = run.scenarios.get("backlog")
    if backlog is None or not _has_side(backlog):
        return None
    work, orders = sizing.work_per_order(backlog.jobs)
    utilisation = float((run.meta.get("settings") or {}).get("target_utilisation", 0.7))
    rate = backlog.scenario.max_rate
    return sizing.size(rate, work, utilisation, "measured in backlog", orders), backlog


def sizing_table(run: Run) -> str:
    """Little's law, queue by queue, with the work per order measured in ``backlog``."""
    found = _sizing_of(run)
    if found is None:
        return older(run, "the work per order the workers are sized by")
    s, backlog = found
    lines = [
        f"Measured in `backlog` ({s.orders_measured} orders at {s.rate:g} req/s, "
        f"target utilisation ρ = {s.utilisation:g}):",
        "",
        "| queue | worker-seconds per order (S) | busy workers, λ × S | workers ≥ λ × S ÷ ρ |",
        "| --- | --- | --- | --- |",
    ]
    for q, n in s.workers().items():
        busy = s.busy()[q]
        lines.append(
            f"| `{q}` | {s.work[q]:.3f} s | {busy:.2f} | {busy / s.utilisation:.2f} → {n} |"
        )
    total_busy = sum(s.busy().values())
    lines += [
        f"| all | {sum(s.work.values()):.3f} s | {total_busy:.2f} | {s.total()} workers |",
        "",
        f"`backlog` ran {workers_of(backlog)} workers for {total_busy:.2f} workers' worth of "
        f"work, a utilisation of {total_busy / max(1, workers_of(backlog)):.0%}: above 100%, "
        "its queue can only grow.",
    ]
    return "\n".join(lines)


def _row(res: ScenarioResult) -> dict[str, Any]:
    ages = oldest_age_max(res) or {}
    assert res.orders is not None
    return {
        "workers": workers_text(res.info),
        "oldest": max(ages.values(), default=float("nan")),
        "drain": drain_seconds(res),
        "erp_p99": percentile(res.orders.erp_s, 99),
    }


def sized_vs_unsized(run: Run) -> str:
    """``backlog`` and ``sized`` side by side: workers, oldest job, drain, the ERP's delay."""
    backlog, sized = run.scenarios.get("backlog"), run.scenarios.get("sized")
    if backlog is None or sized is None or not (_has_side(backlog) and _has_side(sized)):
        return older(run, "the sized run against the unsized one")
    lines = [
        "| run | queue workers | oldest waiting job, at worst | all done after the load "
        "| ERP, p99 after the click |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, res in (("`backlog` (unsized)", backlog), ("`sized`", sized)):
        r = _row(res)
        drain = "never (cap)" if r["drain"] is None else f"{r['drain']:.0f} s"
        lines.append(
            f"| {name} | {r['workers']} | {fmt_s(r['oldest'])} | {drain} | {fmt_s(r['erp_p99'])} |"
        )
    return "\n".join(lines)
