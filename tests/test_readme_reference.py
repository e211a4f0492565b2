"""The README and the notebooks agree with the run's facts: step length, durations, capacity.

The figures the README quotes about the reference run are checked against
``results/reference``; the step length and the rates against the presets the runner uses.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from loadtests import erpcap, lessons, plots, results, shapes
from loadtests.config import RunConfig

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_step_lengths_and_rates_are_the_presets() -> None:
    full, quick = shapes.presets()["sync"], shapes.presets(quick=True)["sync"]
    rates = ", ".join(f"{s.rate:g}" for s in full.steps)
    quick_rates = ", ".join(f"{s.rate:g}" for s in quick.steps)
    row = f"at {rates} req/s, {full.steps[0].duration:g} s per step"
    assert row in README
    assert f"(QUICK: {quick_rates} req/s, {quick.steps[0].duration:g} s)" in README


def test_run_durations_match_the_estimates() -> None:
    said = re.search(r"make loadtest\s+# about (\d+(?:\.\d+)?) minutes after setup", README)
    said_quick = re.search(r"QUICK=1\s+# about (\d+(?:\.\d+)?) minutes \((\d+) s of load\)", README)
    assert said and said_quick
    full_min = RunConfig().estimate_seconds() / 60
    quick_min = RunConfig(quick=True).estimate_seconds() / 60
    assert abs(float(said[1]) - full_min) <= 1.0
    assert abs(float(said_quick[1]) - quick_min) <= 0.75
    load = sum(sc.duration for sc in RunConfig(quick=True).build_scenarios())
    assert int(said_quick[2]) == round(load)


def test_reference_figures_are_the_reference_runs() -> None:
    run = results.load_run(results.REFERENCE)
    cap = plots.sync_capacity(run)
    assert cap is not None
    workers = run.meta["settings"]["web_workers"]
    assert f"{workers} ÷ {workers / cap:.3f} s = {cap:.2f} checkouts/s" in README
    took = re.search(r"The reference run \(`results/reference/`, \d+ cores, (\d+) s in all", README)
    assert took and abs(int(took[1]) - run.meta["duration_s"]) <= 1
    assert lessons.reference_table(run) in README  # regenerate: print(lessons.reference_table)


def test_the_thread_sizing_uses_the_reference_runs_measured_work() -> None:
    sizing = json.loads((results.REFERENCE / "sized" / "info.json").read_text())["sizing"]
    email, erp, util = sizing["work"]["email"], sizing["work"]["erp"], sizing["utilisation"]
    busy = 20 * (email + erp)
    threads = math.ceil(round(busy, 1) / util)
    text = " ".join(README.split())  # the paragraph's line breaks fall anywhere
    assert f"at {email:.3f} s on `email` and {erp:.3f} s on `erp`" in text
    assert f"20 × ({email:.3f} + {erp:.3f}) = {busy:.1f} threads busy" in text
    assert f"N ≈ {busy:.1f} ÷ {util:g} ≈ {threads}: one process with `--threads {threads}`" in text
    assert f"`--concurrency 2 --threads {math.ceil(threads / 2)}`" in text


def test_the_capacity_paragraph_quotes_the_reference_capacity_runs() -> None:
    k, four_k, lim = (erpcap.figures(r) for r in erpcap.load(results.REFERENCE).values())
    text = " ".join(README.split())  # the paragraph's line breaks fall anywhere
    rates = f"{k.served_per_s:.1f}, {four_k.served_per_s:.1f} and {lim.served_per_s:.1f}"
    assert f"the ERP served {rates} calls/s (K, 4K, limited)" in text
    assert f"most {max(f.in_service_max for f in (k, four_k, lim))} in all three" in text
    assert (
        f"each call waited {four_k.wait_mean * 1000:.0f} ms inside the ERP (p95 "
        f"{four_k.wait_p95 * 1000:.0f} ms, {four_k.waiting_mean:.1f} calls waiting" in text
    )
    assert f"peaked at {k.waiting_max:.0f} and {four_k.waiting_max:.0f}:" in text
    assert (
        f"up to {lim.waiting_max:.0f} ERP jobs waited in Redis, {lim.parked_max:.0f} of them "
        f"parked (the `erp` queue held at most {lim.queue_max:.0f})" in text
    )
    drains = [f.drain for f in (k, four_k, lim)]
    assert all(d is not None for d in drains)
    said = f"{drains[0]:.1f}, {drains[1]:.1f} and {drains[2]:.1f} s after the load stopped"
    assert f"The burst drained {said}" in text
    idle = [erpcap.idle_per_call(f) * 1000 for f in (lim, k, four_k)]
    assert f"idle {idle[0]:.0f} ms per call, against {idle[1]:.0f} and {idle[2]:.0f} ms" in text
    assert max(drains, key=lambda d: d or 0) == drains[2]  # "the slowest of the three"
    assert "skipped and said" not in text and "before anything starts" not in text


def test_the_io_rounds_target_says_the_ideal_and_its_fraction() -> None:
    text = " ".join(README.split())
    assert "0.8 × the ideal (25 ÷ 0.05 s = 500 jobs/s), that is 400 jobs/s" in text


def test_the_io_round_table_is_the_kept_bench_run() -> None:
    """The README's I/O table and its tie ratios, from results/reference/bench.json."""
    io = json.loads((results.REFERENCE / "bench.json").read_text())["io"]
    rows = {
        "labqueue-threads": "labqueue `--threads 25`",
        "labqueue-procs": "labqueue `--concurrency 4`",
        "huey": "huey `-w 25 -k thread`",
        "dramatiq": "Dramatiq 1 × 25",
    }
    for name, label in rows.items():
        fig = {k: v["median"] for k, v in io["figures"][name].items()}
        slot = fig["io_mb_per_slot"]
        per_slot = f"{slot:.1f}" if slot >= 10 else f"{slot:.2f}"
        row = (
            f"| {label} | {fig['io_rate']:.0f} | {fig['io_peak_rss_mb']:.1f} | "
            f"{fig['io_rate_per_100mb']:,.0f} | {per_slot} | {fig['io_processes']} |"
        )
        assert row in README
    huey, dramatiq = (t for t in io["targets"] if t["target"].startswith("--threads 25 jobs/s"))
    low, high = min(huey["min"], dramatiq["min"]), max(huey["max"], dramatiq["max"])
    text = " ".join(README.split())
    assert f"median ratios {huey['value']:.3f} and {dramatiq['value']:.3f}" in text
    assert f"{low:.3f}-{high:.3f} across repetitions" in text
