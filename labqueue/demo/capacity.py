"""A fixed number of service slots with a first-come, first-served line in front: what a
legacy system's connection pool does to its callers.

    gate = Gate(2)                       # at most 2 calls in service at once
    with gate.serve() as visit:          # waits its turn (FIFO) while 2 are in service
        visit.started, visit.in_service  # when service began; how many were in it then
        ...                              # the call's work

``Gate(0)`` is unlimited: nobody waits, and ``in_service`` still counts the calls being
served. The wait happens in the caller's own thread (each HTTP connection of the fake
services has one), so a caller that waits is visible: it arrived (``received``) and has
not started. Waiting in a listen backlog instead would hide it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .errors import BadSetting, shown

#: The most calls a fake may serve at once (a capacity above this is no limit worth having).
MAX_CAPACITY = 10_000


def check_capacity(value: Any) -> int:
    """``value`` as a capacity (0: unlimited), else BadSetting naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_CAPACITY:
        raise BadSetting(
            "capacity",
            f"capacity must be a whole number of calls 0-{MAX_CAPACITY} (0: unlimited), "
            f"got {shown(value)}",
        )
    return value


@dataclass(frozen=True)
class Visit:
    """One call's passage through the gate: when it started service, and how many calls
    were in service at that moment (itself included)."""

    started: float
    in_service: int


class Gate:
    """``capacity`` slots (0: unlimited) and a FIFO line of callers waiting for one."""

    def __init__(self, capacity: int = 0) -> None:
        self.capacity = check_capacity(capacity)
        self._lock = threading.Lock()
        self._line: deque[threading.Event] = deque()  #: waiting callers, oldest first
        self.in_service = 0

    @property
    def waiting(self) -> int:
        with self._lock:
            return len(self._line)

    def _enter(self) -> Visit:
        with self._lock:
            if not self.capacity or (self.in_service < self.capacity and not self._line):
                self.in_service += 1
                return Visit(time.time(), self.in_service)
            turn = threading.Event()
            self._line.append(turn)
        turn.wait()  # _leave() hands its slot to the oldest caller: in_service stays counted
        with self._lock:
            return Visit(time.time(), self.in_service)

    def _leave(self) -> None:
        with self._lock:
            if self._line:
                self._line.popleft().set()  # the slot passes on; the count is unchanged
            else:
                self.in_service -= 1

    @contextmanager
    def serve(self) -> Iterator[Visit]:
        """Hold a slot for the block, after waiting in line for it if all are taken."""
        visit = self._enter()
        try:
            yield visit
        finally:
            self._leave()

    def to_json(self) -> dict[str, int]:
        with self._lock:
            return {
                "capacity": self.capacity,
                "in_service": self.in_service,
                "waiting": len(self._line),
            }
