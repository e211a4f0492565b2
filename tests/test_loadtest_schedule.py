"""The open-loop schedule: intended start times, their split across processes, and latency
measured from the intended start (so a slow server cannot hide its slow periods)."""

from __future__ import annotations

import itertools
import statistics

import pytest

from loadtests import schedule as sched
from loadtests.recorder import make_row
from loadtests.shapes import Scenario, Step, presets, rate_steps


def scenario(arrival: str = "constant", seed: int = 1, **kw: object) -> Scenario:
    steps = kw.pop("steps", rate_steps((2.0, 5.0), 10.0))
    return Scenario("t", "sync", steps, arrival=arrival, seed=seed, **kw)  # type: ignore[arg-type]


def test_constant_arrivals_are_evenly_spaced_at_each_steps_rate() -> None:
    items = sched.arrivals(scenario("constant"))
    first = [a.offset for a in items if a.step == 0]
    second = [a.offset for a in items if a.step == 1]
    assert len(first) == 20 and len(second) == 50
    assert first[0] == pytest.approx(0.25) and second[0] == pytest.approx(10.1)
    assert all(b - a == pytest.approx(0.5) for a, b in itertools.pairwise(first))
    assert all(b - a == pytest.approx(0.2) for a, b in itertools.pairwise(second))
    assert all(0 <= x < 10 for x in first) and all(10 <= x < 20 for x in second)
    assert [a.seq for a in items] == list(range(70))
    assert {a.rate for a in items if a.step == 1} == {5.0}


def test_poisson_arrivals_are_reproducible_from_the_seed() -> None:
    a = sched.arrivals(scenario("poisson", seed=7))
    b = sched.arrivals(scenario("poisson", seed=7))
    c = sched.arrivals(scenario("poisson", seed=8))
    assert a == b
    assert [x.offset for x in a] != [x.offset for x in c]


def test_poisson_arrivals_have_the_steps_rate_and_stay_in_their_step() -> None:
    long = scenario("poisson", steps=(Step(400.0, rate=4.0), Step(400.0, rate=10.0)))
    items = sched.arrivals(long)
    offsets = [a.offset for a in items]
    assert offsets == sorted(offsets)
    for index, (start, end), rate in ((0, (0, 400), 4.0), (1, (400, 800), 10.0)):
        mine = [a.offset for a in items if a.step == index]
        assert all(start <= x < end for x in mine)
        expected = rate * 400
        assert abs(len(mine) - expected) < 5 * expected**0.5  # 5 sigma
        gaps = [b - a for a, b in itertools.pairwise(mine)]
        assert statistics.mean(gaps) == pytest.approx(1 / rate, rel=0.1)
        # exponential gaps: the standard deviation equals the mean (constant would be 0)
        assert statistics.stdev(gaps) == pytest.approx(1 / rate, rel=0.15)


def test_a_step_with_no_rate_sends_nothing_but_keeps_its_time() -> None:
    items = sched.arrivals(scenario(steps=(Step(5.0, rate=0.0), Step(5.0, rate=2.0))))
    assert all(a.step == 1 and a.offset >= 5.0 for a in items)
    assert len(items) == 10


def test_unknown_arrival_process_is_refused() -> None:
    with pytest.raises(ValueError, match="poisson"):
        sched.arrivals(scenario("uniform"))


def test_processes_share_the_schedule_exactly() -> None:
    items = sched.arrivals(scenario("poisson", seed=3))
    parts = [sched.partition(items, i, 3) for i in range(3)]
    seqs = sorted(a.seq for part in parts for a in part)
    assert seqs == [a.seq for a in items]
    for part in parts:
        assert [a.offset for a in part] == sorted(a.offset for a in part)
    with pytest.raises(ValueError):
        sched.partition(items, 3, 3)


def test_schedule_hands_out_absolute_intended_times_then_none() -> None:
    items = sched.arrivals(scenario("constant", steps=(Step(2.0, rate=2.0),)))
    s = sched.Schedule(items, t0=1000.0)
    got = [s.take() for _ in range(5)]
    assert [g[1] for g in got[:4] if g] == pytest.approx([1000.25, 1000.75, 1001.25, 1001.75])
    assert got[4] is None
    assert s.taken == 4


def test_wait_until_sleeps_only_for_a_future_time(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(sched.time, "time", lambda: 100.0)
    sched.Schedule.wait_until(102.5, slept.append)
    sched.Schedule.wait_until(99.0, slept.append)
    assert slept == [2.5]


def test_latency_counts_from_the_intended_start_not_the_send() -> None:
    # The generator meant to start at 10.0, could only send at 12.0 (every user was waiting
    # on a slow server), and the answer came at 12.5: the shopper waited 2.5 s, not 0.5 s.
    row = make_row("t", 0, 1, 0, 5.0, intended=10.0, sent=12.0, done=12.5, name="x", status=200)
    assert row.latency_ms == pytest.approx(2500.0)
    assert row.response_ms == pytest.approx(500.0)
    assert row.ok == 1
    failed = make_row("t", 0, 2, 0, 5.0, 10.0, 10.0, 40.0, "x", 0, error="no answer: Timeout")
    assert failed.ok == 0 and failed.latency_ms == pytest.approx(30000.0)


def test_open_loop_users_are_enough_for_every_request_in_flight() -> None:
    s = presets()["sync"]
    # at the top rate, every request may wait up to the timeout: that many must be in flight
    assert s.users_needed() >= s.max_rate * s.timeout
    closed = presets()["sync-closed"]
    assert closed.users_needed() == max(step.users for step in closed.steps)


def test_scenarios_round_trip_through_json(tmp_path) -> None:  # type: ignore[no-untyped-def]
    for s in presets().values():
        assert Scenario.load(s.save(tmp_path / f"{s.name}.json")) == s


def test_step_at_maps_offsets_to_steps() -> None:
    s = scenario(steps=rate_steps((1.0, 2.0, 3.0), 10.0))
    assert [s.step_at(x) for x in (-0.1, 0, 9.99, 10, 29.9, 30)] == [None, 0, 0, 1, 2, None]
