"""A ring buffer of recent snapshots: the depth charts and the processed/failed rates.

The monitor records a sample whenever someone asks for the overview (the page polls every
two seconds), at most one per ``min_interval``; samples older than ``window`` seconds fall
off. Shared by the threads of one server process, so every change holds a lock.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..stats import Snapshot


@dataclass(frozen=True)
class Sample:
    time: float
    processed: int
    failed: int
    queues: dict[str, int]
    #: seconds the oldest waiting job of each queue has waited (None: unknown)
    ages: dict[str, float | None] = field(default_factory=dict)


class History:
    def __init__(self, window: float = 600.0, min_interval: float = 1.0) -> None:
        self.window = window
        self.min_interval = min_interval
        self._samples: deque[Sample] = deque()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._samples)

    def record(self, snap: Snapshot, ages: dict[str, float | None] | None = None) -> None:
        """Keep ``snap`` (and the queues' oldest-job ``ages``) unless the last sample is
        younger than ``min_interval``."""
        # rounded as the JSON shows it, so ``since=<a time we sent>`` excludes that sample
        t = round(snap.time, 3)
        sample = Sample(t, snap.processed, snap.failed, dict(snap.queues), dict(ages or {}))
        with self._lock:
            if self._samples and sample.time - self._samples[-1].time < self.min_interval:
                return
            self._samples.append(sample)
            while self._samples and sample.time - self._samples[0].time > self.window:
                self._samples.popleft()

    def samples(self, since: float | None = None) -> list[Sample]:
        with self._lock:
            return [s for s in self._samples if since is None or s.time > since]

    def series(self, since: float | None = None) -> dict[str, Any]:
        """Column arrays for the charts: times, total depth, each queue's depth and the age of
        its oldest waiting job (None where unknown or not sampled)."""
        samples = self.samples(since)
        names = sorted({name for s in samples for name in s.queues})
        return {
            "t": [s.time for s in samples],
            "queued": [sum(s.queues.values()) for s in samples],
            "processed": [s.processed for s in samples],
            "failed": [s.failed for s in samples],
            "queues": {n: [s.queues.get(n, 0) for s in samples] for n in names},
            "ages": {n: [s.ages.get(n) for s in samples] for n in names},
        }

    def rates(self, span: float = 30.0) -> dict[str, float | None]:
        """Jobs per second processed and failed over the last ``span`` seconds (None: too few
        samples yet). A counter that went down (a FLUSHALL) counts as no progress."""
        with self._lock:
            if len(self._samples) < 2:
                return {"processed": None, "failed": None}
            last = self._samples[-1]
            first = next(s for s in self._samples if last.time - s.time <= span)
            if first is last:
                first = self._samples[-2]
        elapsed = max(last.time - first.time, 1e-6)
        return {
            "processed": round(max(0, last.processed - first.processed) / elapsed, 2),
            "failed": round(max(0, last.failed - first.failed) / elapsed, 2),
        }
