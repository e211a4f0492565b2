"""The fluid model of a capacity run's burst (loadtests/fluid.py): on arrivals whose answer
is known, and on the reference runs the notebook shows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from loadtests import erpcap, fluid
from loadtests.erpcap import ErpFigures

REFERENCE = Path(__file__).parents[1] / "results" / "reference"
NOTEBOOKS = Path(__file__).parents[1] / "notebooks"


def served(mu: float, waiting_max: float = 50.0, drain: float | None = 6.0) -> ErpFigures:
    nan = float("nan")
    return ErpFigures(
        name="synthetic", erp_workers=2, threads=1, limit=None, capacity=2, calls=100,
        served_per_s=mu, in_service_mean=2.0, in_service_max=2, waiting_mean=0.0,
        wait_mean=0.0, wait_p95=0.0, wait_max=0.0, queue_max=waiting_max, age_max=nan,
        parked_max=0.0, waiting_max=waiting_max, checkout_p50_ms=10.0,
        checkout_tail="p99", checkout_tail_ms=20.0, drain=drain,
    )  # fmt: skip


def test_the_backlog_grows_at_lambda_minus_mu_and_drains_at_mu() -> None:
    assert fluid.predict(12.0, 8.0, 20.0, after=0.0) == (80.0, 10.0)
    assert fluid.predict(12.0, 8.0, 20.0, after=1.0) == (80.0, 9.0)  # counted from the load's end
    assert fluid.predict(6.0, 8.0, 20.0, after=0.0) == (0.0, 0.0)  # under capacity: no backlog
    assert fluid.predict(12.0, 8.0, 20.0, after=30.0)[1] == 0.0


def test_lambda_is_counted_from_the_arrivals_not_the_nominal_rate() -> None:
    arrivals = 1.0 + np.arange(241) / 12.0  # 241 ERP jobs, 12/s, from 1 s to 21 s
    model = fluid.of_arrivals(arrivals, load_end=21.5, fig=served(8.0, 82.0, 9.9))
    assert model is not None
    assert model.arrivals_per_s == pytest.approx(12.0)
    assert model.burst == pytest.approx(20.0)
    assert model.peak == pytest.approx(80.0)
    assert model.drain == pytest.approx(10.0 - 0.5)
    assert (model.measured_peak, model.measured_drain) == (82.0, 9.9)
    assert fluid.of_arrivals(arrivals[:1], 21.5, served(8.0)) is None
    undrained = fluid.of_arrivals(arrivals, 21.5, served(8.0, drain=None))
    assert undrained is not None and np.isnan(undrained.measured_drain)


def test_the_sentence_carries_each_runs_numbers() -> None:
    arrivals = 1.0 + np.arange(241) / 12.0
    model = fluid.of_arrivals(arrivals, 21.0, served(8.0, 82.0, 9.9))
    assert model is not None
    text = fluid.sentence([model])
    assert "synthetic (λ 12.0, μ 8.0 jobs/s over 20.0 s)" in text
    assert "predicted a peak of 80 jobs and a 10.0 s drain; measured 82 and 9.9 s" in text
    assert fluid.sentence([]) == ""


def test_the_reference_runs_agree_with_the_model_within_a_few_jobs() -> None:
    runs = erpcap.load(REFERENCE)
    assert list(runs) == list(erpcap.RUNS)
    for res in runs.values():
        fig = erpcap.figures(res)
        model = fluid.model(res, fig)
        assert model is not None
        # every erp job is one ERP call: as many jobs as the ERP logged calls
        erp_jobs = int(np.sum(res.jobs.columns["queue"] == "erp"))
        assert erp_jobs == fig.calls
        assert model.arrivals_per_s > model.served_per_s
        assert model.peak == pytest.approx(model.measured_peak, rel=0.1)
        assert model.drain == pytest.approx(model.measured_drain, rel=0.1)


def test_notebook_8_shows_the_sentence_computed_from_the_reference_runs() -> None:
    runs = erpcap.load(REFERENCE)
    models = [m for r in runs.values() if (m := fluid.model(r, erpcap.figures(r)))]
    notebook = json.loads((NOTEBOOKS / "08_protecting_the_erp.ipynb").read_text())
    shown = [
        "".join(out.get("data", {}).get("text/markdown", ""))
        for cell in notebook["cells"]
        if cell["cell_type"] == "code"
        for out in cell.get("outputs", [])
    ]
    assert fluid.sentence(models) in shown
    assert "predicted a peak of" in fluid.sentence(models)
