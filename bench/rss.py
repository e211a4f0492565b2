"""Peak resident memory of whole process trees, sampled from /proc every ~50 ms.

A sample sums ``VmRSS`` (``/proc/PID/status``) over each root process and every process
descended from it (parents found from ``/proc/*/stat``), so a worker's forked or spawned
children count as well as the process started. Pages two processes share (a fork's
copy-on-write pages, shared libraries) count in each, as ``ps`` and ``top`` count them.
Where there is no /proc (macOS), psutil reads the same figure. MB here is 10^6 bytes.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path

import psutil

PROC = Path("/proc")
INTERVAL = 0.05


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process (Linux /proc)."""
    out: dict[int, int] = {}
    for name in os.listdir(PROC):
        if not name.isdigit():
            continue
        try:
            stat = (PROC / name / "stat").read_bytes()
        except OSError:  # gone since the listing
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        out[int(name)] = int(stat[stat.rindex(b")") + 2 :].split()[1])
    return out


def descendants(roots: Iterable[int]) -> list[int]:
    """``roots`` and every process below them."""
    children: dict[int, list[int]] = {}
    for pid, ppid in _parents().items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def _vm_rss(pid: int) -> int | None:
    """VmRSS of ``pid`` in bytes; None when it is gone (a zombie has no VmRSS line)."""
    try:
        status = (PROC / str(pid) / "status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024  # the kernel's "kB" is KiB
    return None


def tree_rss(roots: Iterable[int]) -> tuple[int, int]:
    """(bytes of resident memory, live processes) of the trees under ``roots``, now."""
    if not PROC.is_dir():
        return _tree_rss_psutil(roots)
    sizes = [s for s in map(_vm_rss, descendants(roots)) if s is not None]
    return sum(sizes), len(sizes)


def _tree_rss_psutil(roots: Iterable[int]) -> tuple[int, int]:
    total = count = 0
    for root in roots:
        try:
            top = psutil.Process(root)
            for proc in [top, *top.children(recursive=True)]:
                total += proc.memory_info().rss
                count += 1
        except psutil.Error:
            continue
    return total, count


class PeakRss:
    """Samples the trees under ``roots`` every ``interval`` seconds in a thread, from
    :meth:`start` until :meth:`stop`; keeps the largest sum and the most processes seen."""

    def __init__(self, roots: Iterable[int], interval: float = INTERVAL) -> None:
        self.roots = list(roots)
        self.interval = interval
        self.peak_bytes = 0
        self.peak_processes = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-rss", daemon=True)

    def sample(self) -> None:
        size, count = tree_rss(self.roots)
        self.peak_bytes = max(self.peak_bytes, size)
        self.peak_processes = max(self.peak_processes, count)
        self.samples += 1

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.interval):
                return

    def start(self) -> PeakRss:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling (at once: a sample in progress finishes first)."""
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / 1e6

    def __enter__(self) -> PeakRss:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
