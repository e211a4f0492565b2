"""The runner's command line and settings: what it accepts, what it refuses, and the
scenarios a setting turns into (nothing is started here)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from loadtests.cli import main
from loadtests.config import RunConfig
from loadtests.net import is_loopback


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenarios", "sync,bogus"], "unknown ['bogus']"),
        (["--rates", "2,four"], "expected numbers"),
        (["--store-url", "http://127.0.0.1:8000"], "--store-url needs --redis-url"),
        (["--queue-workers-per-queue", "email=1"], "no worker would take queue 'erp'"),
        (["--queue-workers-per-queue", "email=1,erp=x"], "erp='x': expected a whole number"),
        (["--queue-workers-per-queue", "email=1,erp=-2"], "erp=-2 is not a count"),
        (["--queue-workers-per-queue", "email=1,erp=2,sms=1"], "unknown queue 'sms'"),
        (["--queue-workers-per-queue", "email=1,email=2"], "'email' given twice"),
        (["--queue-workers-per-queue", "email:1,erp:2"], "expected QUEUE=N pairs"),
        (["--queue-workers-per-queue", "email=0,erp=0"], "at least one worker"),
        (["--target-utilisation", "1.5"], "--target-utilisation"),
        (["--target-utilisation", "0"], "--target-utilisation"),
        (
            ["--store-url", "http://10.1.2.3:8000", "--redis-url", "redis://127.0.0.1/0"],
            "only ever targets this machine",
        ),
    ],
)
def test_bad_options_are_refused_before_anything_starts(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.splitlines()) == 1 and "Usage:" not in result.output  # one line


def test_workers_per_queue_reach_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}

    class Runner:
        def __init__(self, cfg: RunConfig) -> None:
            seen["cfg"] = cfg

        def run(self) -> int:
            return 0

    monkeypatch.setattr("loadtests.run.Runner", Runner)
    args = ["--queue-workers-per-queue", " erp=5, email=1 ", "--target-utilisation", "0.6"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    cfg = seen["cfg"]
    assert cfg.queue_workers_per_queue == {"email": 1, "erp": 5}  # in the stack's queue order
    assert cfg.target_utilisation == 0.6 and cfg.to_dict()["queue_workers_per_queue"]


def test_help_lists_every_knob() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for option in (
        "--quick",
        "--scenarios",
        "--rates",
        "--web-workers",
        "--queue-workers",
        "--queue-workers-per-queue",
        "--target-utilisation",
        "--processes",
        "--redis-url",
        "--store-url",
        "--timeout",
        "--arrival",
    ):
        assert option in result.output


def test_defaults_make_the_story() -> None:
    full = {s.name: s for s in RunConfig().build_scenarios()}
    story = ["sync", "deferred", "sync-closed", "backlog", "sized", "pause", "pause-closed"]
    assert list(full) == story
    assert [st.rate for st in full["sync"].steps] == [2, 4, 6, 8, 10]
    assert full["sync"].steps == full["deferred"].steps  # same offered load, both modes
    assert full["sync"].timeout == 30 and full["sync"].arrival == "poisson"
    assert full["sync-closed"].loop == "closed"
    quick = {s.name: s for s in RunConfig(quick=True).build_scenarios()}
    assert list(quick) == ["sync", "deferred", "backlog", "sized"]
    assert [st.rate for st in quick["sync"].steps] == [2, 6, 10]
    assert quick["sync"].duration < full["sync"].duration
    # where the wall went: 6 req/s held, above 4 workers' ~4 orders/s; then sized workers
    for scenarios, seconds in ((full, 60), (quick, 20)):
        backlog, sized = scenarios["backlog"], scenarios["sized"]
        assert [(st.rate, st.duration) for st in backlog.steps] == [(6.0, seconds)]
        assert sized.steps == backlog.steps and backlog.mode == sized.mode == "deferred"
        assert sized.size_workers and not backlog.size_workers
    assert sum(sc.duration for sc in quick.values()) <= 90  # QUICK: at most 90 s of load
    assert RunConfig().estimate_seconds() < 10 * 60  # the full run: under 10 minutes
    # coordinated omission shown: the store paused mid-step, open loop and closed loop
    pause, closed = full["pause"], full["pause-closed"]
    assert pause.loop == "open" and closed.loop == "closed" and pause.mode == closed.mode
    for sc in (pause, closed):
        assert 0 < sc.extra["pause_at"] < sc.extra["pause_at"] + sc.extra["pause_seconds"]
        assert sc.extra["pause_at"] + sc.extra["pause_seconds"] < sc.duration


def test_options_change_the_scenarios() -> None:
    cfg = RunConfig(
        scenarios=("deferred",),
        rates=(1.0, 3.0),
        step_seconds=4.0,
        timeout=7.0,
        arrival="constant",
        seed=9,
    )
    (sc,) = cfg.build_scenarios()
    assert [(st.duration, st.rate) for st in sc.steps] == [(4.0, 1.0), (4.0, 3.0)]
    assert (sc.timeout, sc.arrival, sc.seed) == (7.0, "constant", 9)
    closed = RunConfig(scenarios=("sync-closed",), users=(1, 5)).build_scenarios()[0]
    assert [st.users for st in closed.steps] == [1, 5]


def test_only_loopback_counts_as_loopback() -> None:
    for url in ("http://127.0.0.1:8000", "http://localhost", "http://127.9.9.9", "http://[::1]:80"):
        assert is_loopback(url)
    for url in ("http://10.0.0.1", "http://example.com", "http://0.0.0.0:80", "", None):
        assert not is_loopback(url)
