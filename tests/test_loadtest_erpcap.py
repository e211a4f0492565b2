"""The ERP-capacity scenarios: their settings, the collection of the ERP's log, the figures
read from it and graph 9, on synthetic runs (nothing is started but in-process fakes)."""

from __future__ import annotations

import csv
import heapq
import json
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pytest
import requests
from click.testing import CliRunner

from labqueue.demo.fakeerp import FakeERP
from labqueue.demo.fakemail import FakeMail
from loadtests import collect, erpcap, plots, results
from loadtests.cli import main
from loadtests.config import RunConfig
from loadtests.recorder import RequestRecorder, make_row, write_worker_info
from loadtests.shapes import CAPACITY_RUNS, DEFAULT_SCENARIOS, presets

T0 = 1_700_000_000.0


# -- the scenarios ---------------------------------------------------------------------
def test_capacity_names_its_three_runs_with_their_own_stacks() -> None:
    cfg = RunConfig(scenarios=("capacity",))
    runs = {s.name: s for s in cfg.build_scenarios()}
    assert list(runs) == ["capacity-k", "capacity-4k", "capacity-limit"]
    for sc in runs.values():
        assert sc.mode == "deferred" and [st.rate for st in sc.steps] == [6.0]  # 1.5 x 4/s
        assert sc.extra["erp_capacity"] == 2 and sc.extra["workers"]["email"] == 3
    assert [runs[n].extra["workers"]["erp"] for n in runs] == [2, 8, 8]
    assert [runs[n].extra["erp_limit"] for n in runs] == [None, None, 2]
    assert [cfg.stack_options(runs[n]) for n in runs][2] == {
        "erp_capacity": 2, "erp_limit": 2, "queue_threads": 1
    }  # fmt: skip
    assert [name for name, _, _ in CAPACITY_RUNS] == list(runs)
    assert not set(runs) & set(DEFAULT_SCENARIOS)  # asked for by name: `--scenarios capacity`


def test_the_capacity_runs_are_short_and_quick_shorter() -> None:
    full = RunConfig(scenarios=("capacity",))
    quick = RunConfig(quick=True, scenarios=("capacity",))
    assert full.estimate_seconds() <= 180
    assert quick.estimate_seconds() < full.estimate_seconds()
    assert sum(s.duration for s in quick.build_scenarios()) < sum(
        s.duration for s in full.build_scenarios()
    )


def test_a_larger_capacity_scales_the_burst_and_the_workers() -> None:
    cfg = RunConfig(scenarios=("capacity-4k", "deferred"), erp_capacity=3, erp_limit=5,
                    queue_threads=2)  # fmt: skip
    four_k, deferred = cfg.build_scenarios()
    assert four_k.steps[0].rate == 9.0 and four_k.extra["workers"]["erp"] == 12
    assert cfg.stack_options(four_k) == {"erp_capacity": 3, "erp_limit": None, "queue_threads": 2}
    assert cfg.stack_options(deferred) == {"erp_capacity": 3, "erp_limit": 5, "queue_threads": 2}
    assert RunConfig().stack_options(presets()["deferred"]) == {
        "erp_capacity": 0, "erp_limit": None, "queue_threads": 1
    }  # fmt: skip  # unlimited, as before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--erp-capacity", "-1"], "--erp-capacity"),
        (["--queue-threads", "0"], "--queue-threads"),
        (["--erp-limit", "0"], "--erp-limit"),
        (["--scenarios", "capacity,nope"], "unknown ['nope']"),
    ],
)
def test_bad_capacity_options_are_one_line(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and message in result.output
    assert len(result.output.splitlines()) == 1


def test_the_options_reach_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, RunConfig] = {}

    class Runner:
        def __init__(self, cfg: RunConfig) -> None:
            seen["cfg"] = cfg

        def run(self) -> int:
            return 0

    monkeypatch.setattr("loadtests.run.Runner", Runner)
    args = ["--scenarios", "capacity", "--erp-capacity", "3", "--queue-threads", "4"]
    result = CliRunner().invoke(main, [*args, "--erp-limit", "2"])
    assert result.exit_code == 0, result.output
    cfg = seen["cfg"]
    assert (cfg.erp_capacity, cfg.queue_threads, cfg.erp_limit) == (3, 4, 2)
    assert cfg.scenario_names() == ("capacity-k", "capacity-4k", "capacity-limit")


# -- collecting the ERP's log ----------------------------------------------------------
def test_the_erps_wait_and_count_reach_calls_csv(tmp_path: Path) -> None:
    with FakeMail(latency=0.0) as mail, FakeERP(latency=0.1, jitter=0.0, capacity=1) as erp:
        body = {"order_id": 0, "items": [{"sku": "SKU-1", "qty": 1}]}

        def sale(order: int) -> None:
            requests.post(f"{erp.url}/sales", json={**body, "order_id": order}, timeout=10)

        threads = [threading.Thread(target=sale, args=(n,)) for n in (1, 2, 3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert collect.write_calls(tmp_path, mail.url, erp.url) == 3
    with (tmp_path / "calls.csv").open(newline="") as f:
        header = next(csv.reader(f))
    assert header[-2:] == ["started", "in_service"]
    calls = results.load_table(tmp_path / "calls.csv", results.CALL_COLUMNS)
    assert calls is not None and list(calls.in_service) == [1, 1, 1]
    waits = sorted(calls.started - calls.received)
    assert waits[0] < 0.05 and 0.05 < waits[1] < 0.15 and 0.15 < waits[2] < 0.3


def test_calls_without_a_capacity_read_as_never_waiting(tmp_path: Path) -> None:
    with FakeMail(latency=0.0) as mail, FakeERP(latency=0.0) as erp:
        body = {"order_id": 4, "items": [{"sku": "SKU-1", "qty": 1}]}
        requests.post(f"{erp.url}/inventory/decrease", json=body, timeout=5)
        collect.write_calls(tmp_path, mail.url, erp.url)
    calls = results.load_table(tmp_path / "calls.csv", results.CALL_COLUMNS)
    assert calls is not None and np.isnan(calls.started).all()
    assert list(erpcap.service_start(calls)) == list(calls.received)


# -- synthetic runs --------------------------------------------------------------------
def simulate(workers: int, capacity: int, calls: int, service: float = 0.25) -> list[dict]:
    """``workers`` each calling the ERP again as soon as its last call answered (a backlog
    in Redis), the ERP serving ``capacity`` at once, FIFO: its log."""
    free_workers = [0.0] * workers
    slots = [0.0] * capacity
    log = []
    for n in range(calls):
        arrive = heapq.heappop(free_workers)
        slot = heapq.heappop(slots)
        start = max(arrive, slot)
        end = start + service
        heapq.heappush(slots, end)
        heapq.heappush(free_workers, end)
        log.append({"service": "erp", "call": "sales", "order_id": n, "to": "",
                    "received": T0 + arrive, "started": T0 + start, "answered": T0 + end,
                    "result": "recorded", "in_service": 0})  # fmt: skip
    for c in log:  # in service when each started: those started and not yet answered
        c["in_service"] = sum(o["started"] <= c["started"] < o["answered"] for o in log)
    return log


def write_run(
    directory: Path, name: str, workers: int, limit: int | None, parked: bool = True
) -> None:
    """One capacity run of 10 s: 80 ERP calls, the queue draining, 40 checkouts. With the
    limit the jobs waiting in Redis are parked by it, the erp queue empty, as the sampler
    sees them (``parked=False``: a run sampled before the sampler counted parked jobs)."""
    out = directory / name
    out.mkdir(parents=True)
    sc = presets(quick=True)[name]
    sc.save(out / "scenario.json")
    write_worker_info(out / "worker-0.json", worker=0, processes=1, t0=T0)
    rec = RequestRecorder(out / "requests-0.csv")
    for i in range(40):
        t = T0 + i / 4
        rec.write(make_row("s", 0, i, 0, 4.0, t, t, t + 0.02, "checkout/deferred", 200, "", str(i)))
    rec.close()
    busy = min(workers, limit or workers)
    log = simulate(busy, 2, 80)
    columns = [*collect.CALLS_COLUMNS]
    with (out / "calls.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(log)
    lines = ["t,phase,queued,busy_workers,queue_erp,age_erp"]
    if parked:
        lines[0] += ",parked,parked_erp,parked_age_erp"
    for k in range(30):
        left = max(0, 80 - 8 * k - busy)
        age = 0.5 * k if left else ""
        held = left if limit and parked else 0  # the limit parks them: out of the queue
        line = f"{T0 + k:.3f},load,{left - held},{busy if left else 0},{left - held},{age}"
        if parked:
            line += f",{held},{held},{age if held else 0.0}"
        lines.append(line)
    (out / "sampler.csv").write_text("\n".join(lines) + "\n")
    options = {"erp_capacity": 2, "erp_limit": limit, "queue_threads": 1}
    info = {"workers": {"email": 3, "erp": workers}, "stack_options": options}
    (out / "info.json").write_text(json.dumps(info))


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "run"
    for name, workers, limit in (("capacity-k", 2, None), ("capacity-4k", 8, None),
                                 ("capacity-limit", 8, 2)):  # fmt: skip
        write_run(directory, name, workers, limit)
    meta = {"scenarios_run": ["capacity-k", "capacity-4k", "capacity-limit"]}
    (directory / "meta.json").write_text(json.dumps(meta))
    return directory


def test_the_figures_show_workers_past_k_only_wait_inside_the_erp(run_dir: Path) -> None:
    runs = erpcap.load(run_dir)
    k, four_k, limited = (erpcap.figures(runs[n]) for n in erpcap.RUNS)
    for f in (k, four_k, limited):
        assert f.served_per_s == pytest.approx(8.0, rel=0.05)  # K ÷ 0.25 s, whatever the workers
        assert f.in_service_max == 2 and f.in_service_mean == pytest.approx(2.0, rel=0.05)
        assert f.checkout_p50_ms == pytest.approx(20.0)
    assert k.wait_max < 1e-6 and limited.wait_max < 1e-6
    assert four_k.wait_mean == pytest.approx(0.75, abs=0.05)  # 6 ahead, 2 at a time, 0.25 s
    #                                                           (less the first round's)
    assert four_k.waiting_mean == pytest.approx(6.0, rel=0.1)  # Little: 8 calls/s x 0.75 s
    assert (four_k.erp_workers, limited.limit, k.limit) == (8, 2, None)
    assert erpcap.workers_label(limited) == "8 ERP workers, limit 2"
    table = erpcap.table([k, four_k, limited])
    assert table.count("\n") == 4 and "| capacity-4k | 8 | 8.0 | 2.00, 2 | 5.7 | 712 ms, " in table
    assert (
        "| capacity-limit | 8, limit 2 | 8.0 | 2.00, 2 | 0.0 | 0 ms, 0 ms | 78 (queue 0, "
        "parked 78) | 4.5 s |" in table
    )  # waiting in Redis: parked by the limit, not queued
    assert "| 72 (queue 72, parked 0) | 4.0 s |" in table  # capacity-4k: all in the queue
    assert (limited.queue_max, limited.parked_max, limited.waiting_max) == (0, 78, 78)
    assert (four_k.queue_max, four_k.parked_max, four_k.waiting_max) == (72, 0, 72)
    assert (limited.age_max, four_k.age_max) == (4.5, 4.0)


def test_graph_9_reads_from_the_back_of_the_room(run_dir: Path) -> None:
    run = results.load_run(run_dir)
    assert plots.has_capacity(run)
    fig = plots.erp_capacity(run)
    assert fig.get_figwidth() <= 12
    assert len(fig.axes) == 6
    assert fig.get_suptitle().startswith("An ERP that serves 2 calls at once")
    assert fig.axes[0].get_ylabel() and fig.axes[3].get_xlabel().startswith("time since")
    sizes = [t.get_fontsize() for t in fig.findobj(lambda o: hasattr(o, "get_fontsize"))
             if hasattr(t, "get_text") and t.get_text().strip()]  # fmt: skip
    assert min(sizes) >= 14
    titles = [ax.get_title() for ax in fig.axes[:3]]
    assert "8 ERP workers, limit 2" in titles[2] and "8.0 calls/s" in titles[1]
    texts = " ".join(t.get_text() for t in fig.texts)
    assert "The ERP serves K calls at once" in texts  # the caption travels with the PNG
    assert "serve no more" not in texts and "hardly more" in texts  # 7.9 vs 7.8 is more
    plt.close(fig)
    files = plots.save_all(run)
    assert "9-erp-capacity.png" in [f.name for f in files]
    assert (run_dir / "9-erp-capacity.png").stat().st_size > 10_000


def test_graph_9_without_capacity_runs_says_how_to_get_them(tmp_path: Path) -> None:
    empty: dict[str, Any] = {}
    fig = plots.erp_capacity(empty)
    said = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert "--scenarios capacity" in said
    plt.close(fig)


def test_the_notebooks_sentences_carry_the_capacity_runs_numbers(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    figs = [erpcap.figures(res) for res in erpcap.load(run_dir).values()]
    text = erpcap.story(figs)
    assert "with 2 ERP workers the ERP served 8.0 calls/s; with 8 ERP workers, 8.0" in text
    assert "each waiting 712 ms (p95" in text
    assert "**With the limit** (8 ERP workers, limit 2)" in text
    assert "a call waited 0 ms inside it on average" in text
    assert (
        "The burst waited in Redis instead: up to 78 ERP jobs at once, at most 78 of them "
        "parked by the limit (out of the `erp` queue, which held at most 0) and the oldest "
        "waiting 4.5 s." in text
    )
    assert "`/metrics` show the parked jobs under the limiter `erp`, not in the queue" in text
    assert "median answer was at most 20 ms" in text
    assert "not recorded here" in erpcap.story(figs[:2]) and erpcap.story([]) == erpcap.NOT_YET
    assert "max_concurrency" not in erpcap.story(figs[:2])  # every labqueue has it now
    monkeypatch.setenv("LABQUEUE_RUN", str(run_dir))
    assert erpcap.find() == run_dir.resolve()
    monkeypatch.setenv("LABQUEUE_RUN", str(run_dir / "nothing-here"))
    assert erpcap.find(run_dir) is None  # no results/ above it holds capacity runs either
    latest = run_dir / "results" / "latest"
    latest.parent.mkdir()
    latest.symlink_to(run_dir, target_is_directory=True)
    assert erpcap.find(run_dir / "capacity-k") == run_dir.resolve()


def test_the_story_says_where_the_time_went_and_what_the_limit_cost(run_dir: Path) -> None:
    k, four_k, limited = (erpcap.figures(r) for r in erpcap.load(run_dir).values())
    # as the reference run measured them: a slot idle between calls costs calls/s
    k = replace(k, served_per_s=7.8, in_service_mean=1.96, drain=11.1, age_max=10.9, calls=242)
    four_k = replace(four_k, served_per_s=7.9, in_service_mean=1.985, drain=10.7,
                     age_max=10.0, wait_mean=0.722, calls=242)  # fmt: skip
    limited = replace(limited, served_per_s=7.7, in_service_mean=1.93, drain=11.7, calls=242,
                      age_max=11.5)  # fmt: skip
    assert erpcap.idle_per_call(k) == pytest.approx(0.04 / 7.8)  # (K - in service) ÷ rate
    assert erpcap.idle_per_call(limited) == pytest.approx(0.07 / 7.7)
    assert np.isnan(erpcap.idle_per_call(replace(k, capacity=0)))
    text = erpcap.story([k, four_k, limited])
    assert (
        "With 8 ERP workers the oldest ERP job waited 10.0 s in Redis, and a call then waited "
        "722 ms on average inside the ERP: 10.7 s together, against 10.9 s in Redis with 2 ERP "
        "workers." in text
    )
    assert "The burst drained 11.1 s, 10.7 s and 11.7 s after the load stopped" in text
    assert "a slot stood idle 9 ms per call with it" in text  # 0.07 ÷ 7.7
    assert "5 ms with K workers (a fetch) and 2 ms with 4K" in text
    # 242 calls x (9.1 - 1.9) ms ÷ 2 slots = 870 ms of the 1.0 s between the drains
    assert "that is 870 ms of the 1.0 s between the limited and the 4K drain" in text
    assert "a hint, not a result" in text
    assert "the oldest waited 11.5 s with the limit, 600 ms more than with K workers, whose " \
        "drain ended 600 ms sooner" in text  # fmt: skip
    assert erpcap._s(0.9999) == "1.0 s" and erpcap._s(0.9994) == "999 ms"
    assert "Where the time went" not in erpcap.story([k, four_k, replace(limited, drain=None)])


def test_the_summary_keeps_each_capacity_runs_figures(run_dir: Path) -> None:
    run = results.load_run(run_dir)
    summ: dict[str, Any] = {"capacity-k": {"steps": []}}
    text = erpcap.add_to_summary(run, summ)
    assert text.startswith("| run | ERP workers |") and text.count("| capacity-") == 3
    assert summ["capacity-k"]["steps"] == [] and summ["capacity-k"]["erp"]["erp_workers"] == 2
    assert summ["capacity-limit"]["erp"]["limit"] == 2
    json.dumps(summ, allow_nan=False)  # nan became None: valid JSON
    assert erpcap.add_to_summary(results.Run(run_dir, {}, {}), {}) == ""


def test_graph_9_stacks_the_parked_jobs_on_the_erp_queue(run_dir: Path) -> None:
    fig = plots.erp_capacity(results.load_run(run_dir))
    bottom = fig.axes[3:]
    assert bottom[0].get_ylabel() == "ERP jobs waiting\nin Redis"
    for ax in bottom:  # two layers each: in the erp queue, and parked on top of it
        assert len(ax.collections) == 2
    tops = [max(p.vertices[:, 1].max() for p in ax.collections[1].get_paths()) for ax in bottom]
    assert tops == [78.0, 72.0, 78.0]  # queued + parked, wherever the burst waits
    limited = bottom[2]
    queued_top = max(p.vertices[:, 1].max() for p in limited.collections[0].get_paths())
    assert queued_top == 0.0  # with the limit nothing is in the erp queue: it is all parked
    texts = " ".join(t.get_text() for t in limited.texts)
    assert "oldest job\nat worst 4.5 s" in texts
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert labels == ["in service", "waiting inside the ERP", "in the erp queue",
                      "parked by the limit (in Redis)"]  # fmt: skip
    caption = " ".join(" ".join(t.get_text() for t in fig.texts).split())  # wrapped lines
    assert "parked by the limit (brown) rather than in the erp queue" in caption
    plt.close(fig)


def test_a_run_without_parked_samples_says_so(tmp_path: Path) -> None:
    for name, workers, limit in (("capacity-k", 2, None), ("capacity-4k", 8, None),
                                 ("capacity-limit", 8, 2)):  # fmt: skip
        write_run(tmp_path, name, workers, limit, parked=False)
    figs = [erpcap.figures(res) for res in erpcap.load(tmp_path).values()]
    limited = figs[2]
    assert limited.queue_max == 78 and np.isnan(limited.parked_max)
    assert np.isnan(limited.waiting_max)
    assert "| 78 in the queue (parked not sampled) |" in erpcap.table(figs)
    assert (figs[1].parked_max, figs[1].waiting_max) == (0, 72)  # no limit: nothing parks
    assert "| 72 (queue 72, parked 0) |" in erpcap.table(figs)
    text = erpcap.story(figs)
    assert "did not sample the jobs the limit parked" in text and "run the capacity" in text
    assert "The burst waited in Redis instead" not in text
    fig = plots.erp_capacity(erpcap.load(tmp_path))
    texts = " ".join(t.get_text() for t in fig.axes[5].texts)
    assert "parked jobs\nnot sampled" in texts
    assert len(fig.axes[5].collections) == 1  # the queue alone: no parked layer is made up
    plt.close(fig)


def test_the_notebook_names_the_run_from_the_repository_not_this_machine(tmp_path: Path) -> None:
    run = tmp_path / "clone" / "results" / "20261201-065358"
    assert erpcap.shown(run) == "results/20261201-065358"
    assert erpcap.shown(tmp_path / "elsewhere") == str(tmp_path / "elsewhere")


def _overlapping_ticks(fig: Any) -> list[str]:
    """Neighbouring x tick labels of the bottom row closer than a few pixels (they read as
    one number: "10.012.515.0")."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    clashes = []
    for ax in fig.axes[len(fig.axes) // 2 :]:
        shown = [t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
        boxes = [t.get_window_extent(renderer) for t in shown]
        for i in range(1, len(shown)):
            if boxes[i].x0 - boxes[i - 1].x1 < 5:
                clashes.append(f"{shown[i - 1].get_text()}|{shown[i].get_text()}")
    return clashes


def test_graph_9s_time_axis_stays_readable_whatever_the_runs_length(run_dir: Path) -> None:
    fig = plots.erp_capacity(results.load_run(run_dir))
    for end in np.arange(8.0, 40.0, 0.5):  # a quick run drains by ~19 s, a full one later
        fig.axes[3].set_xlim(0, end)
        assert _overlapping_ticks(fig) == [], f"x axis to {end} s"
    plt.close(fig)


def test_a_capacity_only_run_gets_graph_9_and_no_empty_graphs(run_dir: Path) -> None:
    """`--scenarios capacity` ran neither sync nor deferred: graphs 1-4 would be blank axes
    (graph 3 saying "no sampler data for 'deferred'"), so they are not drawn."""
    files = plots.save_all(results.load_run(run_dir))
    assert [f.name for f in files] == ["9-erp-capacity.png"]
    assert not (run_dir / "1-latency-over-time.png").exists()
