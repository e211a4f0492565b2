"""The benchmark harness works end to end: a tiny run writes a table, valid JSON and a PNG.
And the I/O round's pieces (issue 14): its RSS sampler on a real process tree, its figures
and targets on given numbers, its contenders' command lines, tiny real drains.

Benchmarks are not tests: nothing here asserts a speed, only that every figure was
measured, is a positive number with min <= median <= max, and the outputs are readable.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from labqueue.embedded import EmbeddedRedis, find_redis_server

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the bench package lives beside labqueue, not inside it
    sys.path.insert(0, str(ROOT))

from bench import iobound, ioreport, rss  # noqa: E402
from bench.common import BenchError  # noqa: E402
from bench.iobound import CONTENDERS  # noqa: E402

pytestmark = pytest.mark.skipif(
    find_redis_server() is None, reason="the benchmark needs a redis-server binary"
)


def run_bench(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("REDIS_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "bench.run", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_help_lists_the_options() -> None:
    done = run_bench("--help", timeout=60)
    assert done.returncode == 0
    for option in ("--jobs", "--repeat", "--quick", "--workers", "--systems", "--out", "--io",
                   "--io-jobs", "--io-repeat"):  # fmt: skip
        assert option in done.stdout


def test_unknown_system_is_refused_in_one_line() -> None:
    done = run_bench("--systems", "celery", timeout=60)
    assert done.returncode == 2
    assert "celery" in done.stderr


def test_unknown_io_contender_and_nothing_to_measure_are_refused() -> None:
    done = run_bench("--io", "celery", timeout=60)
    assert done.returncode == 2 and "--io: unknown ['celery']" in done.stderr
    done = run_bench("--systems", "none", "--io", "none", timeout=60)
    assert done.returncode == 2 and "nothing to measure" in done.stderr


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_tiny_run_writes_table_json_and_png(tmp_path: Path) -> None:
    done = run_bench(
        "--jobs", "40", "--rq-jobs", "20", "--repeat", "2", "--latency-samples", "8",
        "--workers", "2", "--io", "none", "--out", str(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    latest = json.loads((tmp_path / "latest.json").read_text())
    dated = sorted(p for p in tmp_path.glob("2*.json"))
    assert len(dated) == 1 and json.loads(dated[0].read_text()) == latest

    figures = latest["figures"]
    assert set(figures) == {"redis", "labqueue", "huey", "rq"}
    assert {"enqueue_rate", "bulk_enqueue_rate", "drain_1_rate", "drain_n_rate",
            "latency_p50_ms", "latency_p99_ms", "memory_per_job_bytes", "worker_rss_mb",
            "worker_cpu_us", "redis_cpu_us"} <= set(figures["labqueue"])  # fmt: skip
    assert {"enqueue_rate", "drain_1_rate", "latency_p50_ms"} <= set(figures["huey"])
    assert {"enqueue_rate", "drain_1_rate", "latency_p50_ms"} <= set(figures["rq"])
    for system in figures.values():
        for fig in system.values():
            assert len(fig["samples"]) == 2
            # CPU time is counted in clock ticks: a few dozen jobs may take none
            assert fig["min"] >= 0 if fig["unit"] == "us" else fig["min"] > 0
            assert fig["min"] <= fig["median"] <= fig["max"]
            assert fig["unit"] in {"ops/s", "jobs/s", "ms", "bytes", "MB", "us"}
    assert len(latest["targets"]) == 8
    assert all(isinstance(t["met"], bool) and t["value"] > 0 for t in latest["targets"])

    assert "drain, 1 worker process" in done.stdout and "target" in done.stdout
    png = (tmp_path / "latest.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000


#: A parent holding 30 MB that starts a child holding 40 MB, then says "ready".
TREE = """
import subprocess, sys, time
held = b"p" * 30_000_000
child = subprocess.Popen([sys.executable, "-c",
    "import sys, time; held = b'c' * 40_000_000; print('up', flush=True); time.sleep(60)"],
    stdout=subprocess.PIPE)
child.stdout.readline()
print("ready", flush=True)
time.sleep(60)
"""


@pytest.fixture
def tree() -> Iterator[psutil.Process]:
    proc = subprocess.Popen([sys.executable, "-c", TREE], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        yield psutil.Process(proc.pid)
    finally:
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
        proc.kill()
        proc.wait()


def _wait_for_samples(sampler: rss.PeakRss, count: int) -> None:
    deadline = time.monotonic() + 10
    while sampler.samples < count and time.monotonic() < deadline:
        time.sleep(0.005)
    assert sampler.samples >= count


def test_rss_sampler_sums_the_whole_process_tree(tree: psutil.Process) -> None:
    procs = [tree, *tree.children(recursive=True)]
    assert len(procs) == 2
    by_psutil = sum(p.memory_info().rss for p in procs)
    size, count = rss.tree_rss([tree.pid])
    assert count == 2
    assert size >= 70e6  # the 30 MB and the 40 MB, both resident
    assert abs(size - by_psutil) < 5e6
    with rss.PeakRss([tree.pid], interval=0.02) as sampler:
        _wait_for_samples(sampler, 2)
        tree.children()[0].kill()  # the tree shrinks: the peak stays
        deadline = time.monotonic() + 10
        while rss.tree_rss([tree.pid])[1] != 1:  # the killed child (a zombie) counts no more
            assert time.monotonic() < deadline
            time.sleep(0.01)
        _wait_for_samples(sampler, sampler.samples + 5)
    assert sampler.peak_processes == 2 and sampler.peak_bytes >= 70e6
    assert rss.tree_rss([tree.pid])[0] < sampler.peak_bytes - 35e6


def test_rss_of_a_process_that_is_gone_is_nothing() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert rss.tree_rss([proc.pid]) == (0, 0)


def test_peak_in_flight_counts_overlapping_jobs() -> None:
    records = [(0, 0.0, 1.0), (1, 0.5, 1.5), (2, 1.0, 2.0), (3, 1.2, 1.3)]
    assert iobound.peak_in_flight(records) == 3  # at 1.2: jobs 1, 2 and 3 (0 ended at 1.0)
    assert iobound.peak_in_flight([(0, 0.0, 1.0), (1, 1.0, 2.0)]) == 1


def test_each_contender_runs_as_the_issue_says_on_a_db_of_its_own() -> None:
    url = "redis://127.0.0.1:6399/0"
    argv = {name: c.command(iobound.db_url(url, c.db)) for name, c in CONTENDERS.items()}
    line = {name: " ".join(a[1:]) for name, a in argv.items()}
    assert "-m labqueue worker" in line["labqueue-threads"]
    assert (
        "--threads 25" in line["labqueue-threads"]
        and "--concurrency" not in line["labqueue-threads"]
    )
    assert "--concurrency 4" in line["labqueue-procs"] and "--threads" not in line["labqueue-procs"]
    assert "--import bench.labqueue_io" in line["labqueue-procs"]
    assert "--url redis://127.0.0.1:6399/1" in line["labqueue-threads"]
    assert "--url redis://127.0.0.1:6399/2" in line["labqueue-procs"]
    assert line["huey"].endswith("huey.bin.huey_consumer bench.huey_io.huey -w 25 -k thread -q")
    assert "-m dramatiq bench.dramatiq_io:broker --processes 1 --threads 25" in line["dramatiq"]
    assert {n: c.slots for n, c in CONTENDERS.items()} == {
        "labqueue-threads": 25, "labqueue-procs": 4, "huey": 25, "dramatiq": 25,
    }  # fmt: skip
    assert len({c.db for c in CONTENDERS.values()} | {0}) == 5  # none shares db 0 or another's


def test_preflight_refuses_a_contender_that_cannot_start_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    iobound.preflight(["labqueue-procs", "huey", "dramatiq"])  # each starts: no error
    iobound.preflight(["labqueue-threads"])
    broken = dataclasses.replace(
        CONTENDERS["labqueue-threads"], command=lambda url: [sys.executable, "-m", "labqueue",
        "worker", "--no-such-option", "--url", url]
    )  # fmt: skip
    with monkeypatch.context() as m:
        m.setitem(CONTENDERS, "labqueue-threads", broken)
        with pytest.raises(BenchError, match=r"labqueue-threads cannot start: .*--no-such-option"):
            iobound.preflight(["labqueue-threads"])


def _figures(rate: list[float], mb: list[float], slots: int) -> dict[str, list[float]]:
    return {
        "io_rate": rate,
        "io_peak_rss_mb": mb,
        "io_rate_per_100mb": [r / (m / 100) for r, m in zip(rate, mb, strict=True)],
        "io_mb_per_slot": [m / slots for m in mb],
        "io_in_flight": [float(slots)] * len(rate),
        "io_processes": [1.0] * len(rate),
        "io_startup_s": [0.3] * len(rate),
    }


def test_io_targets_and_table_on_given_figures() -> None:
    samples = {
        "labqueue-threads": _figures([450, 430], [40, 40], 25),  # 1.6 MB per slot
        "labqueue-procs": _figures([78, 79], [180, 184], 4),
        "huey": _figures([440, 420], [40, 40], 25),  # 1.6: equal is not below
        "dramatiq": _figures([460, 440], [66, 66], 25),  # faster, 2.64 MB per slot
    }
    io = ioreport.result(samples, jobs=2000, repeat=2)
    met = {t["target"]: t["met"] for t in io["targets"]}
    assert met == {
        "--threads 25 >= 0.8 x ideal 500 jobs/s": True,
        "--threads 25 jobs/s >= huey -w 25's": True,
        "--threads 25 jobs/s >= Dramatiq 1x25's": False,
        "MB per in-flight job below huey -w 25's": False,
        "MB per in-flight job below Dramatiq 1x25's": True,
    }
    first = io["targets"][0]
    assert (first["required"], first["value"], first["min"], first["max"]) == (400, 440, 430, 450)
    assert io["figures"]["labqueue-procs"]["io_mb_per_slot"]["median"] == pytest.approx(45.5)
    assert io["contenders"]["labqueue-procs"] == {"label": "labqueue --concurrency 4", "slots": 4}
    lines = ioreport.table(json.loads(json.dumps(io)))
    row = next(line for line in lines if line.startswith("labqueue --threads 25"))
    assert row.split()[3:5] == ["440", "(430-450)"]
    verdicts = [line.rsplit("  ", 1)[1] for line in lines if line.startswith(("--thr", "MB p"))]
    assert verdicts == ["met", "met", "NOT MET", "NOT MET", "met"]


def test_io_targets_without_their_contender_say_not_measured() -> None:
    samples = {"huey": _figures([440], [40], 25), "dramatiq": _figures([460], [66], 25)}
    io = ioreport.result(samples, jobs=100, repeat=1)
    assert io["targets"] == []
    missing = [line for line in ioreport.table(io) if line.endswith("not measured")]
    assert len(missing) == 5


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_tiny_io_round_of_the_contenders_that_exist(tmp_path: Path) -> None:
    done = run_bench(
        "--systems", "none", "--io", "labqueue-procs,huey,dramatiq", "--io-jobs", "40",
        "--io-repeat", "1", "--out", str(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    latest = json.loads((tmp_path / "latest.json").read_text())
    assert latest["figures"] == {} and latest["targets"] == []
    io = latest["io"]
    assert list(io["figures"]) == ["labqueue-procs", "huey", "dramatiq"]
    processes = {n: f["io_processes"]["median"] for n, f in io["figures"].items()}
    # a supervisor and its 4 workers; huey's one process; Dramatiq's main and its forked worker
    assert processes == {"labqueue-procs": 5, "huey": 1, "dramatiq": 2}
    for name, figs in io["figures"].items():
        slots = io["contenders"][name]["slots"]
        assert 1 < figs["io_in_flight"]["median"] <= slots
        assert figs["io_rate"]["median"] <= slots / 0.05  # no faster than its slots allow
        assert figs["io_peak_rss_mb"]["median"] > 10 * processes[name]
        assert figs["io_mb_per_slot"]["median"] == pytest.approx(
            figs["io_peak_rss_mb"]["median"] / slots
        )
    assert "labqueue --concurrency 4" in done.stdout and "not measured" in done.stdout
    assert not (tmp_path / "latest.png").exists()  # no no-op rounds, no such figure
    png = (tmp_path / "latest-io.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_tiny_io_drain_of_labqueue_threads(redis_server: EmbeddedRedis) -> None:
    figs = iobound.drain(redis_server.url, CONTENDERS["labqueue-threads"], 100, 0.05, 120)
    assert figs["io_processes"] == 1
    assert 1 < figs["io_in_flight"] <= 25
    assert figs["io_mb_per_slot"] == pytest.approx(figs["io_peak_rss_mb"] / 25)
