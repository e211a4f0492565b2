"""The runner's progress line: which scenario and step, requests so far, the queues, time
elapsed and left; one line every few seconds, and at once when a step starts."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .results import request_files
from .sampler import Sampler
from .shapes import Scenario


class RowCounter:
    """Request rows written so far under a scenario's directory. Each call reads only what
    the files gained since the last one: the progress line asks every few seconds, and
    rereading every row each time would grow with the run and take CPU from the load."""

    def __init__(self) -> None:
        self.seen: dict[Path, tuple[int, int]] = {}  # path -> (bytes read, newlines in them)

    def __call__(self, out: Path) -> int:
        total = 0
        for path in request_files(out):
            offset, lines = self.seen.get(path, (0, 0))
            with path.open("rb") as f:
                f.seek(offset)
                chunk = f.read()
            lines += chunk.count(b"\n")
            self.seen[path] = (offset + len(chunk), lines)
            total += max(0, lines - 1)  # less the header
        return total


class Progress:
    """One line every few seconds, and at once when a step starts: which scenario and
    step, elapsed and remaining."""

    def __init__(self, total_estimate: float, count: int) -> None:
        self.run_started = time.monotonic()
        self.total_estimate = total_estimate
        self.count = count
        self.last = 0.0
        self.last_where: tuple[int, str] = (-1, "")
        self.count_rows = RowCounter()
        self.tty = sys.stdout.isatty()
        self.every = 1.0 if self.tty else 5.0

    def say(self, text: str) -> None:
        if self.tty:
            sys.stdout.write("\r\033[K")
        print(text, flush=True)

    def tick(self, index: int, sc: Scenario, out: Path, sampler: Sampler, phase: str) -> None:
        now = time.monotonic()
        key, where = self._where(sc, out, phase)
        if now - self.last < self.every and (index, key) == self.last_where:
            return
        self.last, self.last_where = now, (index, key)
        elapsed = now - self.run_started
        remaining = max(0.0, self.total_estimate - elapsed)
        line = (
            f"[{index + 1}/{self.count} {sc.name}] {where} | "
            f"{self.count_rows(out)} requests | {self._queues(sampler)} | "
            f"run {elapsed:.0f}s, ~{remaining:.0f}s left"
        )
        if self.tty:
            sys.stdout.write("\r\033[K" + line[:200])
            sys.stdout.flush()
        else:
            print(line, flush=True)

    @staticmethod
    def _where(sc: Scenario, out: Path, phase: str) -> tuple[str, str]:
        """(which part of the scenario, what to print about it)."""
        if phase == "drain":
            return "drain", "load done, waiting for the queues to drain"
        info = out / "worker-0.json"
        if not info.exists():
            return "start", "starting Locust"
        offset = time.time() - json.loads(info.read_text())["t0"]
        step = sc.step_at(offset)
        if step is None:
            return ("start", "starting") if offset < 0 else ("end", "last requests in flight")
        s = sc.steps[step]
        what = f"{s.rate:g} req/s" if sc.loop == "open" else f"{s.users} users"
        text = f"step {step + 1}/{len(sc.steps)} ({what}) {offset:.0f}/{sc.duration:.0f}s"
        return f"step {step}", text

    @staticmethod
    def _queues(sampler: Sampler) -> str:
        s = sampler.latest
        if s is None:
            return "queues: -"
        oldest = sampler.oldest()
        age = "" if oldest is None else f" (oldest {float(oldest):.0f}s)"
        parked = f" + parked {s['parked']}" if s.values.get("parked") else ""
        return (
            f"queued {s['queued']}{parked}{age}, busy workers {s['busy_workers']}, "
            f"locust cpu {s['locust_cpu']}%"
        )
