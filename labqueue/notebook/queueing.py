"""Queueing theory for notebook 4: Erlang C (M/M/c), its M/G/c correction, Little's law.

Symbols as the textbooks use them: ``lam`` arrivals per second, ``service`` the mean
service time S in seconds (mu = 1/S), ``c`` servers (the store's web workers), ``cs2`` the
squared coefficient of variation of the service time (1 for exponential, ~0 for constant).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def erlang_c(c: int, offered: float) -> float:
    """Probability that an arrival has to wait, with ``offered`` = lam * S Erlangs on c servers."""
    if offered <= 0:
        return 0.0
    if offered >= c:
        return 1.0
    blocking = 1.0  # Erlang B, by its stable recursion
    for k in range(1, c + 1):
        blocking = offered * blocking / (k + offered * blocking)
    return c * blocking / (c - offered * (1 - blocking))


def mmc_wait(lam: float, service: float, c: int, cs2: float = 1.0) -> float:
    """Mean time in the queue (s); inf at or past capacity. ``cs2`` < 1: Allen-Cunneen's
    M/G/c approximation, the M/M/c wait scaled by (1 + cs2) / 2."""
    offered = lam * service
    if offered >= c:
        return math.inf
    wait = erlang_c(c, offered) * service / (c - offered)
    return wait * (1.0 + cs2) / 2.0


def mmc_latency(lam: float, service: float, c: int, cs2: float = 1.0) -> float:
    """Mean time in the system (queue + service), seconds."""
    return mmc_wait(lam, service, c, cs2) + service


def capacity(service: float, c: int) -> float:
    """The most requests per second c servers can finish: c / S."""
    return c / service


@dataclass(frozen=True)
class LittleCheck:
    """Little's law on one run: L = lambda * W, each side measured on its own."""

    mean_in_system: float  #: L, jobs (time-average)
    arrival_rate: float  #: lambda, jobs per second
    mean_time: float  #: W, seconds (each job's own, averaged)

    @property
    def predicted_time(self) -> float:
        """W as Little's law predicts it: L / lambda."""
        return self.mean_in_system / self.arrival_rate if self.arrival_rate else math.nan


def little_from_intervals(start: np.ndarray, end: np.ndarray, every: float = 0.1) -> LittleCheck:
    """From each item's arrival and departure times (e.g. the per-request rows): L by
    looking inside every ``every`` seconds and counting, W by each item's own stopwatch."""
    start, end = np.asarray(start, float), np.asarray(end, float)
    ok = ~(np.isnan(start) | np.isnan(end))
    start, end = np.sort(start[ok]), np.sort(end[ok])
    looks = np.arange(start[0], end[-1], every)
    inside = np.searchsorted(start, looks, side="right") - np.searchsorted(end, looks, "right")
    span = float(end[-1] - start[0])
    return LittleCheck(float(np.mean(inside)), len(start) / span, float(np.mean(end - start)))


def first_reach(t: np.ndarray, count: np.ndarray, n: np.ndarray) -> np.ndarray:
    """When a non-decreasing ``count`` sampled at ``t`` first reached each of ``n``
    (linear between samples)."""
    i = np.clip(np.searchsorted(count, n, side="left"), 1, len(count) - 1)
    c0, c1, t0, t1 = count[i - 1], count[i], t[i - 1], t[i]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(c1 > c0, (n - c0) / (c1 - c0), 1.0)
    return t0 + np.clip(frac, 0.0, 1.0) * (t1 - t0)


def fifo_times(
    t: np.ndarray, arrived: np.ndarray, departed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """From two cumulative counts sampled at ``t``: when the n-th item arrived and how long
    it stayed (FIFO: the n-th to arrive is the n-th to leave). Items not gone are left out.
    """
    t, arrived, departed = (np.asarray(x, float) for x in (t, arrived, departed))
    arrived = np.maximum.accumulate(arrived)  # a snapshot between two steps can dip by one
    departed = np.maximum.accumulate(departed)
    first, last = int(arrived[0]) + 1, int(min(arrived[-1], departed[-1]))
    n = np.arange(first, last + 1, dtype=float)
    when_in = first_reach(t, arrived, n)
    return when_in, first_reach(t, departed, n) - when_in


def rate(t: np.ndarray, count: np.ndarray, window: float = 5.0) -> np.ndarray:
    """Events per second over the trailing ``window`` seconds, at each sample."""
    t, count = np.asarray(t, float), np.asarray(count, float)
    earlier = np.interp(t - window, t, count, left=count[0])
    span = np.minimum(window, t - t[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(span > 0, (count - earlier) / span, np.nan)
