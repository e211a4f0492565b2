"""The README and the notebooks agree with the run's facts: step length, durations, capacity.

The figures the README quotes about the reference run are checked against
``results/reference``; the step length and the rates against the presets the runner uses.
"""

from __future__ import annotations

import re
from pathlib import Path

from loadtests import lessons, plots, results, shapes
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


def test_the_capacity_figures_are_the_reference_capacity_runs() -> None:
    from loadtests import erpcap

    figs = [erpcap.figures(res) for res in erpcap.load(results.REFERENCE).values()]
    assert [f.name for f in figs] == ["capacity-k", "capacity-4k", "capacity-limit"]
    flat = " ".join(README.split())
    assert " ".join(erpcap.readme_lines(figs).split()) in flat  # regenerate: erpcap.readme_lines
