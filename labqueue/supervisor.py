"""``labqueue worker --concurrency N``: N worker processes under one supervisor.

Each child is a fresh ``labqueue worker`` process (no fork of a live Redis connection).
The supervisor restarts a child that dies (with a growing pause if they keep dying), and
passes TERM/INT/QUIT on to every child: the children finish or give back their jobs, and
the supervisor exits when they have all gone.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from types import FrameType

log = logging.getLogger("labqueue.supervisor")


class Supervisor:
    def __init__(self, child_args: list[str], concurrency: int, env: dict[str, str]) -> None:
        self.command = [sys.executable, "-m", "labqueue", "worker", *child_args]
        self.concurrency = concurrency
        self.env = env
        self.children: list[subprocess.Popen[bytes]] = []
        self.stopping = False
        self.restarts = 0

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.command, env=self.env)

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signum)

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(signum, self._forward)
        self.children = [self._spawn() for _ in range(self.concurrency)]
        log.info("supervising %d workers: %s", self.concurrency, [c.pid for c in self.children])
        pause = 0.5
        while True:
            alive = [c for c in self.children if c.poll() is None]
            if self.stopping and not alive:
                return 0
            for i, child in enumerate(self.children):
                if child.poll() is not None and not self.stopping:
                    log.warning(
                        "worker %d exited with %s; starting another", child.pid, child.returncode
                    )
                    self.restarts += 1
                    time.sleep(pause)
                    pause = min(pause * 2, 30.0)
                    self.children[i] = self._spawn()
            if alive and len(alive) == len(self.children):
                pause = max(0.5, pause / 2)
            time.sleep(0.1)
