"""A worker's side threads: the heartbeat, and what they say when something goes wrong.

The heartbeat thread beats every ``heartbeat_interval`` (registering the worker again: it
heals a wrong prune), and prunes dead workers; every sixth beat it also scans for
in-progress hashes nobody registered. A process of worker threads runs one heartbeat for
all of them (:mod:`.threads`). Problems in these threads, and in the delayed mover, never
stop the worker: an outage is logged once, another problem once per
:data:`~labqueue.badkeys.REPEAT_AFTER` (those threads try again every few seconds).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..badkeys import REPEAT_AFTER
from .guard import Outage, unavailable

log = logging.getLogger("labqueue.worker")

#: Every this many beats, the prune also scans for in-progress hashes nobody registered.
SCAN_EVERY = 6


class SideThreads:
    """Error reporting for the side threads of one worker (or one process of threads)."""

    def __init__(self, who: Callable[[], str], outage: Outage) -> None:
        self.who = who
        self.outage = outage
        self._said: dict[str, float] = {}  # problems: when last logged
        self._lock = threading.Lock()

    def error(self, exc: Exception) -> None:
        """An error in the heartbeat or scheduler thread (see the module doc)."""
        if unavailable(exc):
            self.outage.note(exc)
            return
        problem, now = f"{type(exc).__name__}: {exc}", time.monotonic()
        with self._lock:
            if now - self._said.get(problem, -REPEAT_AFTER) < REPEAT_AFTER:
                return
            self._said[problem] = now
        log.warning("%s: %s", self.who(), problem)

    def heartbeat(
        self,
        stop: threading.Event,
        every: float,
        beat: Callable[[], object],
        prune: Callable[[bool], object],
    ) -> threading.Thread:
        """A (not yet started) thread that runs ``beat()`` then ``prune(scan)`` every
        ``every`` seconds until ``stop``."""

        def run() -> None:
            beats = 0
            while not stop.wait(every):
                beats += 1
                try:
                    beat()
                    prune(beats % SCAN_EVERY == 0)
                    self.outage.back()
                except Exception as exc:
                    self.error(exc)

        return threading.Thread(target=run, name="labqueue-heartbeat", daemon=True)
