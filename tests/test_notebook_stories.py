"""Notebook 5's helpers: the store's jobs at a faster clock, the poison job, the sampler and
the two figures."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labqueue.demo import jobs
from labqueue.demo.checkout import JOB_NAMES
from labqueue.notebook.stories import POISON_EXIT, Sampler, store_jobs
from labqueue.notebook.story_charts import outage_chart, retry_histogram


def test_store_jobs_shortens_only_the_erp_backoff_and_leaves_the_store_alone() -> None:
    registry = store_jobs(speedup=4)
    sale = registry.resolve(JOB_NAMES["erp_record_sale"])
    stock = registry.resolve(JOB_NAMES["erp_decrease_inventory"])
    assert sale.retry_backoff == stock.retry_backoff == (0.5, 1.0, 2.0, 4.0, 7.5)
    assert issubclass(sale, jobs.RecordSaleInERP) and sale.retry_limit == 10
    assert sale.retry_jitter == "full" and sale.retry_on == jobs.ERPJob.retry_on
    assert registry.resolve(JOB_NAMES["send_email"]) is jobs.SendReceiptEmail
    assert jobs.RecordSaleInERP.retry_backoff == (2.0, 4.0, 8.0, 16.0, 30.0)  # untouched
    with pytest.raises(ValueError):
        store_jobs(speedup=0)


def test_poison_ends_the_process_running_it() -> None:
    code = (
        "import labqueue; from labqueue.notebook.stories import Poison; "
        "Poison(labqueue.Payload.new('Notebook::Poison', []), 'q').perform(); print('alive')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
        env={**os.environ}, check=False,
    )  # fmt: skip
    assert done.returncode == POISON_EXIT and "alive" not in done.stdout


def test_sampler_records_values_over_time() -> None:
    ticks = iter(range(1000))
    sampler = Sampler(lambda: {"n": next(ticks)}, every=0.01).start()
    time.sleep(0.15)
    rows = sampler.stop()
    times, values = sampler.series("n")
    assert len(rows) >= 3 and values == list(range(len(rows)))
    assert times == sorted(times) and times[0] < 0.05


def test_figures_are_titled_labelled_and_fit_a_projector() -> None:
    outage = outage_chart(
        {"sync": [(0.0, 200), (1.0, 502)], "deferred": [(0.0, 200), (1.0, 200)]},
        {"done": ([0.5, 2.0], [1, 2]), "waiting": ([0.0, 1.0, 2.0], [0, 2, 0])},
        (0.8, 1.5),
    )
    herd = retry_histogram({"no jitter": [5.1] * 10, "full jitter": [0.3, 1.2, 2.8, 4.4]})
    for fig in (outage, herd):
        assert fig.get_size_inches()[0] <= 12
        for ax in fig.axes:
            assert ax.get_title(loc="left")
            assert ax.get_xlabel() or ax is fig.axes[0]  # shared x: the bottom one says it
    assert [t.get_text() for t in outage.axes[0].get_yticklabels()] == [
        "sync: 200", "sync: 502", "deferred: 200",
    ]  # fmt: skip
    assert herd.axes[0].get_title(loc="left") == "no jitter: at most 10 in one second"
    assert herd.axes[0].get_ylabel() == "retries per second"


def test_the_notebooks_skip_a_latest_run_without_their_scenarios(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `--scenarios capacity` run becomes results/latest; notebooks 3 and 4 need `sync` and
    `deferred`, so they read the reference instead of failing on a missing scenario."""
    from labqueue.notebook import find_run

    monkeypatch.delenv("LABQUEUE_RUN", raising=False)
    for run, scenarios in (("latest", ["capacity-k"]), ("reference", ["sync", "deferred"])):
        for name in scenarios:
            (tmp_path / "results" / run / name).mkdir(parents=True)
            (tmp_path / "results" / run / name / "scenario.json").write_text("{}")
        (tmp_path / "results" / run / "meta.json").write_text("{}")
    assert find_run(str(tmp_path)) == (tmp_path / "results" / "reference").resolve()
    assert find_run(str(tmp_path), needs=("capacity-k",)).name == "latest"
    with pytest.raises(FileNotFoundError, match="no load-test results with backlog"):
        find_run(str(tmp_path), needs=("backlog",))
