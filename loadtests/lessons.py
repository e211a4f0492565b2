"""The sentences notebooks 3 and 4 say about a run's measurements, with the run's numbers.

Every figure a notebook's prose quotes comes from here (Markdown built from the run), so
the prose cannot drift from the data; a run without a scenario gets a sentence saying so.

    from IPython.display import Markdown
    Markdown(lessons.run_facts(run))          # step length, load, duration of the run
    Markdown(lessons.erlang_table(run))       # M/G/c vs measured, below capacity
    Markdown(lessons.fluid_table(run))        # past capacity
    Markdown(lessons.closed_table(run))       # R = N/X − Z
    Markdown(lessons.little_text(run))        # the identity, then Little's law used
    Markdown(lessons.omission_text(run))      # what measuring from the intended start changed
    Markdown(lessons.pause_table(run))        # the pause demo's two latencies
    Markdown(lessons.placed_text(run))        # timed out, yet placed
"""

from __future__ import annotations

from . import omission, theory
from .plotstyle import fmt_s
from .results import Run

NO_SCENARIO = "*This run ({name}) has no `{scenario}` scenario ({why}), so it cannot show {what}.*"


def _missing(run: Run, scenario: str, what: str) -> str:
    why = "a QUICK run leaves it out" if run.meta.get("settings", {}).get("quick") else "not run"
    return NO_SCENARIO.format(name=run.directory.name, scenario=scenario, why=why, what=what)


def run_facts(run: Run) -> str:
    sc = run["sync"].scenario
    steps = ", ".join(f"{s.rate:g}" for s in sc.steps)
    svc = theory.service_of(run)
    return (
        f"This run: {len(sc.steps)} steps of {sc.steps[0].duration:g} s at {steps} "
        f"checkouts/s, client timeout {sc.timeout:g} s; the whole run (every scenario, with "
        f"starting and stopping the store) took {run.meta.get('duration_s', float('nan')):.0f} s. "
        f"Capacity, c ÷ S: {svc.workers} web workers ÷ {svc.mean_s:.3f} s per checkout "
        f"= **{svc.capacity:.2f} checkouts/s**."
    )


def erlang_table(run: Run) -> str:
    lines = [
        "| step (nominal) | λ realised | M/G/c mean | measured mean | measured vs predicted |",
        "| --- | --- | --- | --- | --- |",
    ]
    rows = theory.erlang_rows(run)
    for r in rows:
        lines.append(
            f"| {r.offered:g}/s | {r.arrived:.2f}/s | {r.predicted_s:.3f} s | "
            f"{r.measured_s:.3f} s | {r.error:+.1%} |"
        )
    worst = max((abs(r.error) for r in rows), default=float("nan"))
    lines += ["", f"Below capacity, the measured means are within {worst:.1%} of M/G/c."]
    return "\n".join(lines)


def fluid_table(run: Run) -> str:
    svc = theory.service_of(run)
    lines = [
        f"μ = {svc.capacity:.2f}/s. Past it, per second of the step:",
        "",
        "| step (nominal) | λ realised | backlog grows λ − μ | latency slope (λ − μ)/μ "
        "| measured slope |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in theory.fluid_rows(run):
        lines.append(
            f"| {r.offered:g}/s | {r.arrived:.2f}/s | {r.arrived - svc.capacity:.2f} req/s | "
            f"{r.predicted:.2f} s/s | {r.measured:.2f} s/s |"
        )
    return "\n".join(lines)


def closed_table(run: Run) -> str:
    rows = theory.closed_rows(run)
    if not rows:
        return _missing(run, "sync-closed", "the closed loop's response-time law")
    think = run["sync-closed"].scenario.think_time
    lines = [
        f"Think time Z = {think:g} s.",
        "",
        "| users N | throughput X | R = N/X − Z | measured mean response |",
        "| --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r.users} | {r.throughput:.2f}/s | {r.predicted_s:.3f} s | {r.measured_s:.3f} s |"
        )
    return "\n".join(lines)


def little_text(run: Run) -> str:
    res = run["sync"]
    big_l, lam, w = theory.little_identity(res)
    during = theory.load_rate(res)
    return (
        f"Over the sync run's whole window (first arrival to last departure): L = {big_l:.2f} "
        f"requests inside on average, λ = {lam:.2f}/s, W = {w:.2f} s, λ × W = {lam * w:.2f}. "
        "Equal, as they must be (up to counting L every tenth of a second): the λ here is "
        "arrivals over a window that includes the drain, not the rate the store was offered, "
        f"which was {during:.2f}/s during the load."
    )


def backlog_table(run: Run) -> str:
    lines = [
        "| step (nominal) | λ realised | inside, λ × W | being served, X × S "
        "| waiting, not served |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in theory.backlog_rows(run):
        lines.append(
            f"| {r.offered:g}/s | {r.arrived:.2f}/s | {r.in_store:.1f} | {r.in_service:.1f} | "
            f"{r.in_backlog:.1f} |"
        )
    return "\n".join(lines)


def omission_text(run: Run) -> str:
    res = run["sync"]
    lag = omission.send_lag_p99_ms(res)
    req = res.requests
    worst = float(abs(req.latency_ms - req.response_ms).max())
    return (
        f"In this run Locust sent every request close to its intended time: the lag from "
        f"intended to sent was {lag:.0f} ms at p99 (at most {worst:.0f} ms), so counting "
        f"from the intended start changed the sync figures by at most that much."
    )


def pause_table(run: Run) -> str:
    figs = omission.pause_figures(run)
    if len(figs) < 2:
        return _missing(run, "pause-closed", "the store paused under both loops")
    lines = [
        f"| load | store paused | requests recorded / meant | slower than {omission.SLOW_S:g} s: "
        "from the send / from the intended start | mean: from the send / from the intended "
        "start | tail: from the send / from the intended start |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for f in figs:
        lines.append(
            f"| {f.loop} loop | {f.pause_s:.1f} s | {f.requests} / {f.intended} | "
            f"{f.slow_sent} / {f.slow_intended} | {fmt_s(f.send_mean)} / "
            f"{fmt_s(f.intended_mean)} | {_tail(f.send_tail)} / {_tail(f.intended_tail)} |"
        )
    return "\n".join(lines)


def _tail(tail: tuple[str, float]) -> str:
    return f"{tail[0]} {fmt_s(tail[1])}"


def placed_text(run: Run) -> str:
    placed = omission.timed_out_but_placed(run["sync"])
    if placed is None:
        return _missing(run, "web-access.log", "what the store did with timed-out requests")
    return (
        f"gunicorn's access log has **{placed.answered_200}** sync checkouts answered 200; "
        f"Locust received **{placed.ok_in_time}** good answers in time and gave up on "
        f"{placed.timed_out}. So at least **{placed.placed_anyway}** orders that the load test "
        f"counted as failures were placed, paid for and sent to the ERP."
    )


def _fmt(value_s: float) -> str:
    return fmt_s(value_s)


def reference_table(run: Run) -> str:
    """The README's table of the reference run: per step, what each scenario achieved, its
    median and the tail its sample supports (p99 from a hundred requests, else p90)."""
    from .plot_latency import step_tails
    from .summary import step_summaries

    cols = [run[n] for n in ("sync", "deferred") if n in run.scenarios]
    closed = run.scenarios.get("sync-closed")
    lines = [
        "| offered | sync achieved | sync median / tail | deferred achieved "
        "| deferred median / tail | closed loop, users: tail |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    per = [(step_summaries(r), step_tails(r)) for r in cols]
    closed_tails = step_tails(closed) if closed is not None else []
    for i, step in enumerate(cols[0].scenario.steps):
        cells = [f"{step.rate:g} req/s"]
        for summ, tails in per:
            s, (_o, name, value, _n) = summ[i], tails[i]
            out = f" ({s.timeouts} of {s.sent} timed out)" if s.timeouts else ""
            cells += [f"{s.achieved:.1f}/s", f"{_fmt(s.p50_ms / 1000)} / {name} {_fmt(value)}{out}"]
        if i < len(closed_tails):
            users, name, value, _n = closed_tails[i]
            cells.append(f"{users:g}: {name} {_fmt(value)}")
        else:
            cells.append("-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
