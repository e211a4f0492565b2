"""Reading results back: merging per-process rows, percentiles, per-step figures, queue
depth and drain time, and drawing the four graphs from the files alone."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from loadtests import plots, results, summary
from loadtests.collect import JOBS_COLUMNS, ORDERS_COLUMNS
from loadtests.recorder import RequestRecorder, make_row, write_worker_info
from loadtests.shapes import Scenario, rate_steps

T0 = 1_700_000_000.0


def write_scenario(
    directory: Path, mode: str, latency: float, slow_after: float = 1e9, queued: bool = False
) -> Scenario:
    """Two steps of 10 s at 2 and 4 req/s (constant), answers ``latency`` s late, rows split
    over two 'processes'; from ``slow_after`` s on, every answer takes 5 s more."""
    sc = Scenario(mode, mode, rate_steps((2.0, 4.0), 10.0), arrival="constant")
    directory.mkdir(parents=True)
    sc.save(directory / "scenario.json")
    recs = [RequestRecorder(directory / f"requests-{i}.csv") for i in range(2)]
    from loadtests.schedule import arrivals

    orders, jobs = [], []
    for a in arrivals(sc):
        intended = T0 + a.offset
        wait = latency + (5.0 if a.offset >= slow_after else 0.0)
        ok = a.seq % 10 != 9  # every tenth fails
        orders.append(order_row(mode, a.seq, a.step, intended, wait, ok))
        jobs += job_rows(mode, a.seq, intended)
        row = make_row(
            mode,
            a.seq % 2,
            a.seq,
            a.step,
            a.rate,
            intended,
            intended,
            intended + wait,
            f"checkout/{mode}",
            200 if ok else 502,
            "" if ok else "HTTP 502 erp down",
        )
        recs[a.seq % 2].write(row)
    for i, r in enumerate(recs):
        r.close()
        write_worker_info(directory / f"worker-{i}.json", index=i, count=2, t0=T0 + i * 0.001)
    lines = [
        "t,phase,queued,busy_workers,workers,processed,failed,failed_store,enqueued,"
        "web_workers,locust_cpu,locust_cpu_total,queue_email,age_email"
    ]
    for k in range(0, 61):  # every 0.5 s for 30 s: a queue that rises to 20 then empties at 25 s
        t = k * 0.5
        depth = int(min(t, 20 - max(0.0, t - 20) * 4)) if queued and t < 25 else 0
        busy = 2 if depth else 0
        cpu = 95.0 if 12 <= t < 14 else 20.0
        age = depth / 2  # the oldest job: 10 s at the peak
        lines.append(
            f"{T0 + t:.3f},load,{depth},{busy},2,{k},0,0,{k + depth + busy},4,{cpu},{cpu},"
            f"{depth},{age}"
        )
    (directory / "sampler.csv").write_text("\n".join(lines) + "\n")
    write_csv(directory / "orders.csv", ORDERS_COLUMNS, orders)
    if mode == "deferred":
        write_csv(directory / "jobs.csv", JOBS_COLUMNS, jobs)
    info = {"workers": {"email,erp": 2}}
    (directory / "info.json").write_text(json.dumps(info))
    return sc


def order_row(mode: str, seq: int, step: int, intended: float, wait: float, ok: bool) -> dict:
    """Sync: the email 0.5 s and the ERP 10 ms before the answer; deferred: the email after
    0.4 s, the ERP later and later (1 s, plus half the time since the start)."""
    if mode == "sync":
        email, erp = wait - 0.5, wait - 0.01
    else:
        email, erp = 0.4, 1.0 + (intended - T0) / 2
    return {
        "seq": seq,
        "step": step,
        "order_id": str(seq + 1),
        "intended": intended,
        "status": 200 if ok else 502,
        "ok": int(ok),
        "answered_s": wait,
        "email_s": email,
        "erp_sale_s": erp - 0.2,
        "erp_stock_s": erp,
        "erp_s": erp,
    }


def job_rows(mode: str, seq: int, intended: float) -> list[dict]:
    """A deferred order's three jobs: email 0.3 s, two ERP calls 0.25 s each."""
    rows = []
    for queue, cls, run in (("email", "Mail", 0.3), ("erp", "Sale", 0.25), ("erp", "Stock", 0.25)):
        start = intended + 0.1
        ids = {"id": f"{seq}-{cls}", "job_class": cls, "queue": queue, "order_id": str(seq + 1)}
        times = {"enqueued": intended, "started": start, "finished": start + run}
        rest = {"wait_s": 0.1, "run_s": run, "outcome": "done", "worker": "h:1:email,erp"}
        rows.append({**ids, **times, **rest})
    return rows


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    import csv

    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    write_scenario(tmp_path / "sync", "sync", 0.8, slow_after=15.0)
    write_scenario(tmp_path / "deferred", "deferred", 0.01, queued=True)
    meta = {"scenarios_run": ["sync", "deferred"], "settings": {"web_workers": 4}}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    return tmp_path


def test_rows_of_every_process_are_merged_in_intended_order(run_dir: Path) -> None:
    run = results.load_run(run_dir)
    res = run["sync"]
    assert len(res.requests) == 60  # 2/s x 10 s + 4/s x 10 s
    assert list(res.requests.seq) == list(range(60))
    assert np.all(np.diff(res.requests.intended) >= 0)
    assert res.t0 == pytest.approx(T0)  # the earliest process's zero
    assert set(res.requests.worker) == {0, 1}


def test_percentiles_and_bins() -> None:
    values = np.arange(1, 101, dtype=float)
    assert results.percentile(values, 50) == pytest.approx(50.5)
    assert results.percentile(values, 99) == pytest.approx(99.01)
    assert np.isnan(results.percentile(np.array([]), 50))
    assert results.percentile(np.array([np.nan, 3.0]), 50) == 3.0
    times = np.array([0.1, 0.2, 0.9, 1.5, 3.2])
    b = results.per_bin(times, np.array([1.0, 2.0, 3.0, 10.0, 7.0]))
    assert list(b["t"]) == [0.0, 1.0, 3.0]  # the empty second 2 is left out
    assert list(b["n"]) == [3, 1, 1]
    assert list(b["p50"]) == [2.0, 10.0, 7.0]
    assert list(results.rate_per_bin(times, 0.0, 4.0)) == [3, 1, 0, 1]


def test_step_figures(run_dir: Path) -> None:
    steps = summary.step_summaries(results.load_run(run_dir)["sync"])
    assert [s.offered for s in steps] == [2.0, 4.0]
    assert [s.sent for s in steps] == [20, 40]
    assert [s.errors for s in steps] == [2, 4]
    assert steps[0].p50_ms == pytest.approx(800.0)
    # in the second step, requests intended from 15 s on waited 5 s more
    assert steps[1].p50_ms == pytest.approx(3300.0)  # half at 0.8 s, half at 5.8 s
    assert steps[1].p99_ms == pytest.approx(5800.0)
    # step 0's answers done inside it: those sent before 9.2 s (18), less one failure (seq 9)
    assert steps[0].achieved == pytest.approx(17 / 10)
    assert not steps[0].unreliable and steps[1].unreliable  # Locust at 95% CPU at 12-14 s


def test_queue_depth_drain_and_jobs(run_dir: Path) -> None:
    run = results.load_run(run_dir)
    deferred = summary.scenario_summary(run["deferred"])
    assert deferred["max_queue_depth"] == 20
    assert deferred["drain_seconds"] == pytest.approx(5.0)  # empty at 25 s, load ended at 20 s
    assert deferred["jobs"]["processed"] == 60 and deferred["all_jobs_completed"]
    assert summary.scenario_summary(run["sync"])["drain_seconds"] == 0.0
    text = summary.format_summary(summary.run_summary(run))
    assert "drained 5.0 s after the load" in text and "unreliable" in text


def test_the_deferred_side_loads_and_summarises(run_dir: Path) -> None:
    run = results.load_run(run_dir)
    res = run["deferred"]
    assert res.orders is not None and res.jobs is not None and res.calls is None
    assert len(res.orders) == 60 and len(res.jobs) == 180
    assert set(res.jobs.queue) == {"email", "erp"} and res.jobs.run_s[0] == pytest.approx(0.3)
    s = summary.scenario_summary(res)
    assert s["oldest_age_max_s"] == {"email": 10.0} and s["workers"] == {"email,erp": 2}
    when = s["when"]
    assert [w["orders"] for w in when] == [20, 40]
    assert when[0]["email_p50_s"] == pytest.approx(0.4)
    assert when[0]["erp_p50_s"] == pytest.approx(3.5)  # 1 s + half the median offset, 5 s
    offsets = 10 + (np.arange(40) + 0.5) / 4  # step 1: 4/s, constant
    assert when[1]["erp_p99_s"] == pytest.approx(np.percentile(1 + offsets / 2, 99), abs=0.01)
    assert when[0]["erp_never"] == 0
    sync_when = summary.scenario_summary(run["sync"])["when"]
    assert sync_when[0]["erp_p50_s"] == pytest.approx(0.79)  # just before the 0.8 s answer
    text = summary.format_summary(summary.run_summary(run))
    assert "email p50/p99, ERP p50/p99" in text and "0.40 / 0.40" in text
    assert "queue workers email,erp: 2; oldest waiting job at worst: email 10.0 s" in text


def test_an_older_run_without_the_deferred_side_still_reads_and_says_so(run_dir: Path) -> None:
    for name in ("sync", "deferred"):
        (run_dir / name / "orders.csv").unlink()
        (run_dir / name / "jobs.csv").unlink(missing_ok=True)
        sampler = run_dir / name / "sampler.csv"
        rows = [ln.rsplit(",", 1)[0] for ln in sampler.read_text().splitlines()]
        sampler.write_text("\n".join(rows) + "\n")  # no age_email column
    run = results.load_run(run_dir)
    res = run["deferred"]
    assert res.orders is None and res.jobs is None and "age_email" not in res.samples
    s = summary.scenario_summary(res)
    assert s["when"] is None and s["oldest_age_max_s"] is None
    names = [f.name for f in plots.save_all(run)]
    assert names == [n for n in plots.FILES.values() if n[0] in "1234"]
    for draw, what in ((plots.when_it_happened, "orders.csv"), (plots.queue_latency, "age")):
        texts = [t.get_text() for ax in draw(run).axes for t in ax.texts]
        assert any(what in t and "make loadtest" in t.replace("\n", " ") for t in texts)


def test_gzipped_reference_rows_load_the_same(run_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    for p in (copy / "sync").glob("requests-*.csv"):
        with p.open("rb") as src, gzip.open(p.with_suffix(".csv.gz"), "wb") as dst:
            dst.write(src.read())
        p.unlink()
    a = results.load_run(run_dir)["sync"].requests
    b = results.load_run(copy)["sync"].requests
    assert np.array_equal(a.latency_ms, b.latency_ms)


def test_graphs_are_drawn_from_the_files(run_dir: Path) -> None:
    closed = json.loads((run_dir / "sync" / "scenario.json").read_text())
    shutil.copytree(run_dir / "sync", run_dir / "sync-closed")
    closed.update(
        name="sync-closed",
        loop="closed",
        steps=[
            {"duration": 10.0, "rate": 0.0, "users": 2},
            {"duration": 10.0, "rate": 0.0, "users": 4},
        ],
    )
    (run_dir / "sync-closed" / "scenario.json").write_text(json.dumps(closed))
    meta = json.loads((run_dir / "meta.json").read_text())
    meta["scenarios_run"].append("sync-closed")
    (run_dir / "meta.json").write_text(json.dumps(meta))
    run = results.load_run(run_dir)
    assert list(run.scenarios) == ["sync", "deferred", "sync-closed"]
    files = plots.save_all(run)
    no_pause = [n for k, n in plots.FILES.items() if k not in ("pause_demo", "erp_capacity")]
    assert [f.name for f in files] == no_pause  # graphs 8, 9 need the pause, capacity runs
    for f in files:
        assert f.stat().st_size > 10_000
        assert f.read_bytes()[:4] == b"\x89PNG"
    assert plots.sync_capacity(run) == pytest.approx(4 / 0.8)


def test_a_partial_run_still_draws(run_dir: Path) -> None:
    shutil.rmtree(run_dir / "deferred")
    run = results.load_run(run_dir)
    assert list(run.scenarios) == ["sync"]
    files = plots.save_all(run)
    # no closed loop: no graph 5; no deferred queues sampled: no graph 7
    assert [f.name[:2] for f in files] == ["1-", "2-", "3-", "4-", "6-"]
    assert len(files) == 5 and all(f.exists() for f in files)


def test_the_committed_reference_run_tells_the_story(tmp_path: Path) -> None:
    run = results.load_run(results.REFERENCE)
    # a reference recorded before issue 11 has no deferred side; one recorded since has it all
    since_issue_11 = (results.REFERENCE / "deferred" / "jobs.csv").exists()
    story = ["sync", "deferred", "sync-closed"] + (["backlog", "sized"] if since_issue_11 else [])
    since_issue_12 = (results.REFERENCE / "pause-closed").exists()
    story += ["pause", "pause-closed"] if since_issue_12 else []
    story += ["capacity-k", "capacity-4k", "capacity-limit"]  # issue 14, a run of its own
    assert not run.partial and list(run.scenarios) == story
    big = [p for p in results.REFERENCE.rglob("*") if p.is_file() and p.stat().st_size > 3e6]
    assert big == []  # kept small
    s = summary.run_summary(run)
    sync, deferred = s["sync"]["steps"], s["deferred"]["steps"]
    top = sync[-1]["offered"]
    assert max(st["achieved"] for st in sync) < 0.6 * top  # sync flattens at its capacity
    assert sync[-1]["p50_ms"] > 10 * sync[0]["p50_ms"]  # ...and its latency climbs
    assert all(st["p99_ms"] < 1000 for st in deferred)  # deferred stays flat and low
    assert deferred[-1]["achieved"] > 0.8 * top
    assert s["deferred"]["all_jobs_completed"] and s["deferred"]["max_queue_depth"] > 0
    assert s["deferred"]["drain_seconds"] is not None
    files = plots.save_all(run, tmp_path)
    assert all(f.stat().st_size > 10_000 for f in files)
    if since_issue_12:
        assert [f.name for f in files] == list(plots.FILES.values())
    if since_issue_11:
        check_where_the_wall_went(s)


def check_where_the_wall_went(s: dict) -> None:
    """The reference's deferred side: the ERP hears late while the workers fall behind; the
    backlog grows on today's workers and stays young on workers sized by Little's law."""
    erp_late = s["deferred"]["when"][-1]["erp_p50_s"]
    assert erp_late > 5 * s["deferred"]["when"][0]["erp_p50_s"]  # later at the top step
    backlog, sized = s["backlog"], s["sized"]
    assert sized["sizing"]["workers"] == sized["workers"]
    assert sum(sized["workers"].values()) > sum(backlog["workers"].values())
    assert max(backlog["oldest_age_max_s"].values()) > 10  # seconds: the wall moved here
    assert max(sized["oldest_age_max_s"].values()) < 3  # ...and sizing took it away
    assert sized["all_jobs_completed"] and backlog["all_jobs_completed"]


def test_the_notebooks_sentences_carry_the_runs_numbers(run_dir: Path) -> None:
    from loadtests import story

    run = results.load_run(run_dir)
    wall = story.where_the_wall_went(run)
    assert wall.startswith("**Where the wall went:**")
    median = np.median(1 + (10 + (np.arange(40) + 0.5) / 4) / 2)  # the ERP at the top step
    assert f"at 4 req/s the ERP heard of their sales {median:.1f} s after the click" in wall
    assert "(median; 10.9 s at worst)" in wall  # the last order: 1 + 19.875 / 2
    assert "2 queue workers finish about 2.5 orders/s" in wall  # 2 ÷ (0.3 + 0.25 + 0.25)
    assert "the oldest job on the `email` queue waited up to 10.0 s" in wall
    for text in (story.sizing_table(run), story.sized_vs_unsized(run)):  # no backlog here
        assert "recorded before" in text and run_dir.name in text
    shutil.copytree(run_dir / "deferred", run_dir / "backlog")
    info = {"workers": {"email,erp": 2}}
    (run_dir / "backlog" / "info.json").write_text(json.dumps(info))
    meta = json.loads((run_dir / "meta.json").read_text())
    meta["scenarios_run"].append("backlog")
    (run_dir / "meta.json").write_text(json.dumps(meta))
    table = story.sizing_table(results.load_run(run_dir))
    assert "| `erp` | 0.500 s |" in table and "utilisation of" in table
