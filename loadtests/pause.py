"""Pause the store for a few seconds in the middle of a step: the coordinated-omission demo.

A scenario whose ``extra`` holds ``pause_at`` and ``pause_seconds`` gets its store's web
workers stopped with SIGSTOP ``pause_at`` seconds after the schedule's zero and resumed with
SIGCONT ``pause_seconds`` later, as a garbage collector or a stalled disk would. Only the
runner's own stack on this machine is ever paused (never ``--store-url``), and the workers
are always resumed: when the pause is over, when the load ends, on Ctrl-C or on an error
(:meth:`Pauser.resume` runs in the runner's ``finally``).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from .shapes import Scenario


@dataclass
class Pauser:
    """Stops ``pids()`` at ``at`` seconds after ``t0`` for ``seconds``; ``tick`` drives it."""

    pids: Callable[[], list[int]]
    at: float
    seconds: float
    stopped: list[int] = field(default_factory=list)
    started_epoch: float | None = None  #: when the workers were stopped (epoch s)
    ended_epoch: float | None = None  #: when they were resumed

    def tick(self, t0: float | None, now: float | None = None) -> None:
        """Stop the workers once ``at`` is reached, resume them ``seconds`` later."""
        if t0 is None or self.ended_epoch is not None:
            return
        now = time.time() if now is None else now
        if self.started_epoch is None and now - t0 >= self.at:
            self.stop(now)
        elif self.started_epoch is not None and now - self.started_epoch >= self.seconds:
            self.resume()

    def stop(self, now: float) -> None:
        self.started_epoch = now
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                continue
            self.stopped.append(pid)

    def resume(self) -> None:
        """SIGCONT every worker this pauser stopped (idempotent; safe in a ``finally``)."""
        for pid in self.stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                continue
        if self.started_epoch is not None and self.ended_epoch is None:
            self.ended_epoch = time.time()
        self.stopped = []

    def to_dict(self) -> dict[str, Any]:
        return {
            "pause_at": self.at,
            "pause_seconds": self.seconds,
            "paused_epoch": self.started_epoch,
            "resumed_epoch": self.ended_epoch,
        }


def schedule_t0(out: Path) -> float | None:
    """The schedule's zero once Locust has written it (worker-0.json), else None."""
    info = out / "worker-0.json"
    try:
        return float(json.loads(info.read_text())["t0"])
    except (OSError, ValueError, KeyError):
        return None


def web_worker_pids(master: int | None) -> list[int]:
    """The pre-fork server's workers (the master stays awake, so it does not kill them)."""
    if master is None:
        return []
    try:
        return [p.pid for p in psutil.Process(master).children(recursive=False)]
    except psutil.Error:
        return []


def pauser_for(sc: Scenario, target: Any) -> Pauser | None:
    """A Pauser for a scenario that asks for one, aimed at the runner's own stack only."""
    at, seconds = sc.extra.get("pause_at"), sc.extra.get("pause_seconds")
    stack = getattr(target, "stack", None)
    if at is None or not seconds or stack is None:
        return None
    return Pauser(lambda: web_worker_pids(stack.web.pid if stack.web else None), at, seconds)
