"""Child processes of the stack: each in its own session with its own log file, stopped
politely (TERM, then a grace period), then for sure (KILL to its whole process group).

On Linux a child started from the main thread also gets ``PR_SET_PDEATHSIG``: if the
process that started it dies without cleaning up (SIGKILL), the kernel sends it TERM.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .errors import StoreError

#: waitid() for exited children only, without reaping them, without blocking (Linux; macOS
#: has os.waitid from Python 3.13 on).
_HAS_WAITID = all(hasattr(os, n) for n in ("waitid", "P_PID", "WEXITED", "WNOWAIT", "WNOHANG"))


class StackError(StoreError):
    """A piece of the stack did not start, or died."""


def _pdeathsig() -> None:  # pragma: no cover - runs in the child before exec
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Child:
    """One process of the stack."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    pass_fds: tuple[int, ...] = ()
    stop_timeout: float = 15.0
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> Child:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._log.write(f"--- {time.strftime('%H:%M:%S')} {' '.join(self.argv)}\n".encode())
        self._log.flush()
        main_thread = threading.current_thread() is threading.main_thread()
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=self.pass_fds,
            preexec_fn=_pdeathsig if sys.platform.startswith("linux") and main_thread else None,
        )
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def send(self, signum: int = signal.SIGTERM) -> None:
        if self.alive:
            assert self.process is not None
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)

    def wait_stopped(self, timeout: float | None = None) -> None:
        """Wait for the process to exit, KILL its group after ``timeout``, then reap it."""
        proc = self.process
        if proc is not None:
            self._exited_unreaped(self.stop_timeout if timeout is None else timeout)
            # Whether it exited or not: KILL whatever is left in its session (gunicorn's
            # workers, say) while its pid, the group's id, is still held by it or its zombie.
            self._kill_group()
            proc.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _exited_unreaped(self, timeout: float) -> bool:
        """Wait up to ``timeout`` for an exit, leaving the zombie in place (so its pid and
        group id cannot be reused by another process until we reap it)."""
        assert self.process is not None
        if not _HAS_WAITID:
            try:
                self.process.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        flags = os.WEXITED | os.WNOWAIT | os.WNOHANG
        deadline = time.monotonic() + timeout
        while self.process.returncode is None:
            try:
                if os.waitid(os.P_PID, self.process.pid, flags) is not None:
                    return True
            except ChildProcessError:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def stop(self, timeout: float | None = None) -> None:
        self.send(signal.SIGTERM)
        self.wait_stopped(timeout)

    def _kill_group(self) -> None:
        if self.process is None:
            return
        # The group id is the child's pid (start_new_session): only what this child started.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def died(self, what: str) -> StackError:
        code = self.process.returncode if self.process else None
        return StackError(
            f"{self.name} {what} (exit code {code}); its log {self.log_path} ends:\n{self.tail()}"
        )


def wait_until(
    child: Child, ready: Callable[[], Any], timeout: float, what: str, interval: float = 0.05
) -> Any:
    """Poll ``ready()`` until it returns something truthy; StackError if the child dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive:
            raise child.died(f"exited before {what}")
        with contextlib.suppress(OSError, ValueError):
            value = ready()
            if value:
                return value
        time.sleep(interval)
    raise child.died(f"not {what} after {timeout:.0f}s")


def read_ready_file(path: Path) -> dict[str, Any] | None:
    """The JSON a child wrote once it listens (None until then)."""
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def write_ready_file(path: str, data: dict[str, Any]) -> None:
    """Atomically: the parent never reads half a file."""
    tmp = f"{path}.tmp"
    Path(tmp).write_text(json.dumps(data))
    os.replace(tmp, path)


def stop_all(children: list[Child], timeout: float | None = None) -> None:
    """TERM all at once, then wait for each (so their grace periods overlap)."""
    for child in children:
        child.send(signal.SIGTERM)
    for child in children:
        child.wait_stopped(timeout)


def python_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", *args]


def child_env(extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", **extra}


class LogDir:
    """The given directory, or a temporary one that is removed again."""

    def __init__(self, path: str | os.PathLike[str] | None, prefix: str) -> None:
        self.owned = path is None
        self.path = Path(tempfile.mkdtemp(prefix=prefix) if path is None else path).resolve()
        self.path.mkdir(parents=True, exist_ok=True)

    def cleanup(self) -> None:
        if self.owned:
            shutil.rmtree(self.path, ignore_errors=True)
