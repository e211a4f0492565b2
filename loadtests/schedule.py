"""The open-loop schedule: when each request is meant to start, whatever the server does.

A closed-loop load generator (N users, each waiting for its answer before sending again)
slows down when the server does, so the slow periods produce few samples and the latency
percentiles look better than what a shopper sees ("coordinated omission"). Here every request
has an *intended* start time fixed in advance (constant or Poisson arrivals per step, from a
seed), and its latency is measured from that intended time: if the generator or the server
makes it start late, the wait counts.

The full schedule is computed the same way in every Locust process; process ``i`` of ``n``
takes every n-th arrival, so together they send exactly the one schedule.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .shapes import Scenario, Step


@dataclass(frozen=True)
class Arrival:
    """One planned request: ``offset`` seconds after the schedule's start, in ``step``."""

    seq: int
    offset: float
    step: int
    rate: float


def step_offsets(step: Step, start: float, arrival: str, rng: random.Random) -> list[float]:
    """Intended offsets of one step's arrivals, in [start, start + duration).

    constant: evenly spaced, the first half a gap after the start. poisson: exponential gaps;
    the process restarts at the step's start (exact, since it has no memory).
    """
    if step.rate <= 0:
        return []
    end = start + step.duration
    if arrival == "constant":
        gap = 1.0 / step.rate
        n = round(step.duration * step.rate)
        return [start + (k + 0.5) * gap for k in range(n)]
    if arrival != "poisson":
        raise ValueError(f"arrival must be 'poisson' or 'constant', not {arrival!r}")
    out, t = [], start + rng.expovariate(step.rate)
    while t < end:
        out.append(t)
        t += rng.expovariate(step.rate)
    return out


def arrivals(scenario: Scenario) -> list[Arrival]:
    """The whole schedule of a scenario, deterministic for its seed."""
    rng = random.Random(scenario.seed)
    out: list[Arrival] = []
    start = 0.0
    for index, step in enumerate(scenario.steps):
        for offset in step_offsets(step, start, scenario.arrival, rng):
            out.append(Arrival(len(out), offset, index, step.rate))
        start += step.duration
    return out


def partition(items: list[Arrival], index: int, count: int) -> list[Arrival]:
    """Process ``index`` of ``count``'s share: every count-th arrival, starting at index."""
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"process index {index} out of range for {count} processes")
    return items[index::count]


def latency_ms(intended: float, done: float) -> float:
    """Latency as the shopper sees it: from when the request was meant to start."""
    return (done - intended) * 1000.0


class Schedule:
    """Hands out intended start times (absolute, epoch seconds) in order, one per call.

    Cooperative (gevent) users share one Schedule per process: ``take()`` never blocks,
    so no lock is needed; the user then sleeps until the time it was given.
    """

    def __init__(self, items: Iterable[Arrival], t0: float) -> None:
        self.t0 = t0
        self._items: Iterator[Arrival] = iter(items)
        self.taken = 0

    def take(self) -> tuple[Arrival, float] | None:
        """The next arrival and its absolute intended time, or None when the schedule is done."""
        item = next(self._items, None)
        if item is None:
            return None
        self.taken += 1
        return item, self.t0 + item.offset

    @staticmethod
    def wait_until(when: float, sleep: Callable[[float], Any] = time.sleep) -> None:
        """Sleep until epoch time ``when`` (returns at once if it has passed)."""
        delay = when - time.time()
        if delay > 0:
            sleep(delay)
