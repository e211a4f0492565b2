"""The benchmark harness works end to end: a tiny run writes a table, valid JSON and a PNG.

Benchmarks are not tests: nothing here asserts a speed, only that every figure was
measured, is a positive number with min <= median <= max, and the outputs are readable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from labqueue.embedded import find_redis_server

ROOT = Path(__file__).resolve().parent.parent

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
    for option in ("--jobs", "--repeat", "--quick", "--workers", "--systems", "--out"):
        assert option in done.stdout


def test_unknown_system_is_refused_in_one_line() -> None:
    done = run_bench("--systems", "celery", timeout=60)
    assert done.returncode == 2
    assert "celery" in done.stderr


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_tiny_run_writes_table_json_and_png(tmp_path: Path) -> None:
    done = run_bench(
        "--jobs", "40", "--rq-jobs", "20", "--repeat", "2", "--latency-samples", "8",
        "--workers", "2", "--out", str(tmp_path),
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
