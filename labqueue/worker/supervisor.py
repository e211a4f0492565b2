"""``labqueue worker --concurrency N``: N worker processes under one supervisor.

Each child is a fresh ``labqueue worker`` process (no fork of a live Redis connection).
The supervisor restarts a child that dies (with a growing pause if they keep dying), and
passes TERM/INT/QUIT on to every child, including one started while the signal arrived:
the children finish or give back their jobs, and the supervisor exits when all are gone.
A child that dies without cleaning up (SIGKILL, a crash) is released at once through
``on_exit(pid)``: its job goes back to its queue without waiting for another worker.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections.abc import Callable
from types import FrameType

from .. import procs

log = logging.getLogger("labqueue.supervisor")

#: Longest pause between restarts of children that keep dying.
MAX_PAUSE = 30.0


class Supervisor:
    """Runs ``labqueue worker child_args...`` ``concurrency`` times, in ``env``."""

    def __init__(
        self,
        child_args: list[str],
        concurrency: int,
        env: dict[str, str],
        on_exit: Callable[[int], object] = lambda pid: None,
    ) -> None:
        self.command = procs.worker_command(*child_args)
        self.on_exit = on_exit
        self.concurrency = concurrency
        self.env = env
        self.children: list[subprocess.Popen[bytes]] = []
        self.signals: list[int] = []  #: signals received, forwarded to every child in order
        self.told: dict[int, int] = {}  #: child pid -> how many of those it has been sent
        #: with --burst a child that exits 0 has emptied the queues: it is done, not dead
        self.burst = "--burst" in child_args

    @property
    def stopping(self) -> bool:
        return bool(self.signals)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signals.append(signum)

    def _forward(self) -> None:
        for child in self.children:
            for signum in self.signals[self.told.get(child.pid, 0) :]:
                if child.poll() is None:
                    child.send_signal(signum)
            self.told[child.pid] = len(self.signals)

    def _replace_dead(self, pause: float) -> float:
        for i, child in enumerate(self.children):
            if child.poll() is None or self.stopping or (self.burst and child.returncode == 0):
                continue
            log.warning("worker %d exited with %s; starting another", child.pid, child.returncode)
            self.on_exit(child.pid)
            time.sleep(pause)
            self.children[i] = self._start()
            pause = min(pause * 2, MAX_PAUSE)
        return pause

    def _start(self) -> subprocess.Popen[bytes]:
        """One child worker; TERMed by the kernel if the supervisor dies first (Linux)."""
        return subprocess.Popen(self.command, env=self.env, preexec_fn=procs.die_with_parent())

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(signum, self._on_signal)
        self.children = [self._start() for _ in range(self.concurrency)]
        log.info("supervising %d workers: %s", self.concurrency, [c.pid for c in self.children])
        pause = 0.5
        while True:
            self._forward()
            finished = all(c.poll() is not None for c in self.children)
            if finished and (self.stopping or self.burst):
                for child in self.children:
                    self.on_exit(child.pid)
                return 0 if self.stopping else max(abs(c.returncode or 0) for c in self.children)
            calm = all(c.poll() is None for c in self.children)
            pause = max(0.5, pause / 2) if calm else self._replace_dead(pause)
            time.sleep(0.05)
