"""Simulated hosts: a hostname and a pid namespace of their own, this machine's loopback.

    reason = hosts_unavailable()          # None, or why not (not root, no unshare, ...)
    host = SimHost("host-a", workdir).start()
    proc = host.run(["python", "-m", "labqueue", "worker"], env=env, name="w1")
    host.kill()                           # every process in it, at once: a power cut

A host is ``unshare --uts --pid --fork --mount-proc``: its first process is pid 1 of a new
pid namespace (a tiny init that reaps orphans), with its own hostname and its own /proc;
the network is not unshared, so 127.0.0.1 is the machine's. Processes join it through
``nsenter`` (hostname, pids and /proc: a worker inside sees its namespace's pids, as on a
real host). Killing the namespace's init makes the kernel SIGKILL every process in it.
Root only (user namespaces are not used: CI runs as root); :func:`hosts_unavailable`
says why not elsewhere, for a test's skip or a notebook's message.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil

from .. import procs

#: pid 1 of a host: set the hostname, say so, then reap orphans until killed.
_INIT = """
import os, socket, sys, time
socket.sethostname(sys.argv[1])
print("ready", flush=True)
while True:
    try:
        os.wait()
    except ChildProcessError:
        time.sleep(0.2)
"""

_UNSHARE = ("unshare", "--uts", "--pid", "--fork", "--mount-proc", "--kill-child")


@functools.cache
def hosts_unavailable() -> str | None:
    """Why simulated hosts cannot run here (None: they can)."""
    if not sys.platform.startswith("linux"):
        return "simulated hosts need Linux namespaces (unshare)"
    if os.geteuid() != 0:
        return "simulated hosts need root (unshare --pid --uts); run as root, as CI does"
    missing = [b for b in ("unshare", "nsenter") if shutil.which(b) is None]
    if missing:
        return f"simulated hosts need {' and '.join(missing)} (util-linux)"
    try:
        trial = subprocess.run(
            [*_UNSHARE[:-1], "true"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare failed: {exc}"
    if trial.returncode != 0:
        return f"unshare refused here: {trial.stderr.strip() or trial.returncode}"
    return None


class SimHost:
    """One simulated host: its processes, its hostname, killed all at once."""

    def __init__(self, name: str, workdir: str | Path) -> None:
        self.name = name
        self.workdir = Path(workdir)
        self.init_pid: int | None = None  #: the host's pid 1, as this machine numbers it
        self.killed_at: float | None = None  #: time.time() of kill()
        self._unshare: subprocess.Popen[bytes] | None = None
        self._procs: list[subprocess.Popen[bytes]] = []

    def __repr__(self) -> str:
        return f"SimHost({self.name!r}, init={self.init_pid}, {len(self.alive())} running)"

    def start(self, timeout: float = 10.0) -> SimHost:
        reason = hosts_unavailable()
        if reason:
            raise RuntimeError(reason)
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path("init"), "ab") as log:
            self._unshare = subprocess.Popen(
                [*_UNSHARE, sys.executable, "-c", _INIT, self.name],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                preexec_fn=procs.die_with_parent(own_group=True),
            )
        assert self._unshare.stdout is not None
        ready, _, _ = select.select([self._unshare.stdout], [], [], timeout)
        if not ready or self._unshare.stdout.readline().strip() != b"ready":
            self.kill()
            raise RuntimeError(f"host {self.name} did not start within {timeout:.0f} s")
        self.init_pid = psutil.Process(self._unshare.pid).children()[0].pid
        return self

    def run(
        self, argv: Sequence[str], env: Mapping[str, str] | None = None, name: str = "process"
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` inside the host; its output goes to ``<workdir>/<name>.log``."""
        if self.init_pid is None or self.killed_at is not None:
            raise RuntimeError(f"host {self.name} is not running")
        with open(self.log_path(name), "ab") as log:
            proc = subprocess.Popen(
                ["nsenter", "-t", str(self.init_pid), "--uts", "--pid", "--mount", "--", *argv],
                env=dict(env if env is not None else os.environ),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=procs.die_with_parent(),
            )
        self._procs.append(proc)
        return proc

    def log_path(self, name: str) -> Path:
        return self.workdir / f"{self.name}-{name}.log"

    def inner_pid(self, proc: subprocess.Popen[bytes], timeout: float = 5.0) -> int:
        """The pid (as this machine numbers it) of what ``proc`` (an nsenter) started."""
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(psutil.Error):
                children = psutil.Process(proc.pid).children()
                if children:
                    return int(children[0].pid)
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"no process inside host {self.name} for pid {proc.pid}")
            time.sleep(0.02)

    def signal(self, proc: subprocess.Popen[bytes], signum: int = signal.SIGTERM) -> None:
        """Send ``signum`` to the process inside (nsenter does not forward signals)."""
        with contextlib.suppress(ProcessLookupError, RuntimeError):
            os.kill(self.inner_pid(proc, timeout=1.0), signum)

    def pids(self) -> list[int]:
        """Every process in the host's pid namespace, as this machine numbers them."""
        if self.init_pid is None:
            return []
        try:
            ns = os.readlink(f"/proc/{self.init_pid}/ns/pid")
        except OSError:
            return []
        found = []
        for pid in psutil.pids():
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/ns/pid") == ns:
                    found.append(pid)
        return found

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self._procs if p.poll() is None]

    @property
    def running(self) -> bool:
        return self._unshare is not None and self._unshare.poll() is None

    def kill(self) -> float:
        """SIGKILL the host's init: the kernel kills every process in it. Returns the time."""
        self.killed_at = time.time()
        if self.init_pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.init_pid, signal.SIGKILL)
        if self._unshare is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._unshare.wait(10)
            if self._unshare.poll() is None:
                procs.stop(self._unshare, grace=0)
            if self._unshare.stdout is not None:
                self._unshare.stdout.close()
        for proc in self._procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        return self.killed_at

    def stop(self, grace: float = 5.0) -> None:
        """TERM every process inside, up to ``grace`` s to finish, then kill the host."""
        for proc in self.alive():
            self.signal(proc)
        deadline = time.monotonic() + grace
        for proc in self._procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.0, deadline - time.monotonic()))
        if self.running or self.killed_at is None:
            self.kill()
