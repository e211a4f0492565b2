"""Child processes: started to die with their parent, stopped with grace, waited on.

One home for what the embedded redis-server, ``--fork`` execution, the supervisor, the
notebook lab, the store's stack, the benchmark and the load-test runner all do:

- :func:`die_with_parent`: a ``preexec_fn`` after which the kernel sends the child TERM
  when the process that started it dies without cleaning up (SIGKILL, a crash; Linux's
  ``PR_SET_PDEATHSIG``), optionally in its own process group. The kernel sends it when the
  *thread* that started the child ends, so it is set only from the main thread.
- :func:`stop`: TERM (to the process or its whole group), a grace period, then KILL, and
  the child reaped; :func:`terminate` and :func:`wait_stopped` are its two halves, so
  several children's grace periods can overlap (:func:`stop_all`).
- :func:`wait_until`: poll until something holds, failing early if the child died.
- :func:`worker_command`: the ``labqueue worker`` command line, built in one place.
- :class:`Child`: a long-running child with its own session and log file.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from .errors import ChildFailed

T = TypeVar("T")

#: waitid() for exited children only, without reaping them, without blocking (Linux; macOS
#: has os.waitid from Python 3.13 on).
_HAS_WAITID = all(hasattr(os, n) for n in ("waitid", "P_PID", "WEXITED", "WNOWAIT", "WNOHANG"))
_PR_SET_PDEATHSIG = 1


def set_death_signal(signum: int) -> None:  # pragma: no cover - runs in a child
    """Have the kernel send ``signum`` to this process when its parent dies (Linux only)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signum)


def die_with_parent(
    *, own_group: bool = False, signum: int = signal.SIGTERM
) -> Callable[[], None] | None:
    """A ``preexec_fn``: the child gets ``signum`` if we die first (Linux, main thread only),
    and with ``own_group`` its own process group (a Ctrl-C in the terminal reaches us only,
    and we stop it in order). None when there is nothing to set."""
    deathsig = sys.platform.startswith("linux") and (
        threading.current_thread() is threading.main_thread()
    )
    if not (deathsig or own_group):
        return None

    def preexec() -> None:  # pragma: no cover - runs in the child before exec
        if own_group:
            os.setpgid(0, 0)
        if deathsig:
            set_death_signal(signum)

    return preexec


def _signal(proc: subprocess.Popen[Any], signum: int, group: bool) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:  # the group id is the child's pid (start_new_session or own_group)
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)


def terminate(proc: subprocess.Popen[Any], *, group: bool = False) -> None:
    """Send TERM if it still runs (to its whole process group with ``group``)."""
    if proc.returncode is None:
        _signal(proc, signal.SIGTERM, group)


def _exited_unreaped(proc: subprocess.Popen[Any], timeout: float) -> bool:
    """Wait up to ``timeout`` for an exit, leaving the zombie in place (so its pid and group
    id cannot be reused by another process until we reap it)."""
    if not _HAS_WAITID:
        try:
            proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    flags = os.WEXITED | os.WNOWAIT | os.WNOHANG
    deadline = time.monotonic() + timeout
    while proc.returncode is None:
        try:
            if os.waitid(os.P_PID, proc.pid, flags) is not None:
                return True
        except ChildProcessError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def wait_stopped(proc: subprocess.Popen[Any], grace: float, *, group: bool = False) -> int:
    """Wait up to ``grace`` s for it to exit, then KILL it, and reap it; its exit code.

    With ``group``, whatever is left in its process group is killed too (gunicorn's or
    Locust's workers, say), while its pid, the group's id, is still held by it or its zombie.
    """
    exited = _exited_unreaped(proc, grace)
    if group:
        _signal(proc, signal.SIGKILL, group=True)
    elif not exited:
        _signal(proc, signal.SIGKILL, group=False)
    return proc.wait(10)


def stop(proc: subprocess.Popen[Any], grace: float = 5.0, *, group: bool = False) -> int:
    """TERM, up to ``grace`` s to finish, then KILL; reaped. Returns its exit code."""
    terminate(proc, group=group)
    return wait_stopped(proc, grace, group=group)


def wait_until(
    ready: Callable[[], T | None],
    timeout: float,
    *,
    interval: float = 0.05,
    alive: Callable[[], bool] | None = None,
    what: str = "ready",
    fail: Callable[[str], Exception] = ChildFailed,
    errors: tuple[type[Exception], ...] = (),
) -> T:
    """Poll ``ready()`` until it returns something truthy, and return that.

    ``alive`` (a child's pulse) false fails at once with ``fail("exited before <what>")``;
    past ``timeout`` seconds, ``fail("not <what> after <timeout>s")``. An exception in
    ``errors`` raised by ``ready()`` counts as not ready yet.
    """
    deadline = time.monotonic() + timeout
    while True:
        if alive is not None and not alive():
            raise fail(f"exited before {what}")
        with contextlib.suppress(*errors):
            value = ready()
            if value:
                return value
        if time.monotonic() >= deadline:
            raise fail(f"not {what} after {timeout:.0f}s")
        time.sleep(interval)


def python_cmd(*args: str) -> list[str]:
    """``python -m args...`` with this interpreter."""
    return [sys.executable, "-m", *args]


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment, unbuffered output, and ``extra``."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", **extra}


#: ``labqueue worker`` options whose flag is not the keyword with dashes.
_WORKER_FLAGS = {"imports": "--import"}


def worker_args(**options: object) -> list[str]:
    """``labqueue worker``'s arguments for ``options``: a keyword is the option's name with
    underscores (``poll_interval=0.2`` -> ``--poll-interval 0.2``; ``imports`` ->
    ``--import``); True is a bare flag, False and None are left out, a list or tuple repeats
    the option."""
    args: list[str] = []
    for name, value in options.items():
        flag = _WORKER_FLAGS.get(name, "--" + name.replace("_", "-"))
        if value is None or value is False:
            continue
        if value is True:
            args.append(flag)
        elif isinstance(value, list | tuple):
            args += [a for v in value for a in (flag, str(v))]
        else:
            args += [flag, str(value)]
    return args


def worker_command(*args: str, **options: object) -> list[str]:
    """``python -m labqueue worker`` with ``args`` as they are and ``options`` as
    :func:`worker_args` writes them: the one place its command line is built."""
    return python_cmd("labqueue", "worker", *args, *worker_args(**options))


@dataclass
class Child:
    """A long-running child in its own session, its output in ``log_path``.

    ``error`` builds what :meth:`died` returns (the store's stack passes its own error).
    """

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    pass_fds: tuple[int, ...] = ()
    stop_timeout: float = 15.0
    error: Callable[[str], Exception] = ChildFailed
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> Child:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in wait_stopped()
        self._log.write(f"--- {time.strftime('%H:%M:%S')} {' '.join(self.argv)}\n".encode())
        self._log.flush()
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=self.pass_fds,
            preexec_fn=die_with_parent(),
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
            _signal(self.process, signum, group=False)

    def wait_stopped(self, timeout: float | None = None) -> None:
        """Wait for the process to exit, KILL its group after ``timeout``, then reap it."""
        if self.process is not None:
            grace = self.stop_timeout if timeout is None else timeout
            wait_stopped(self.process, grace, group=True)
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self, timeout: float | None = None) -> None:
        self.send(signal.SIGTERM)
        self.wait_stopped(timeout)

    def wait_until(
        self, ready: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05
    ) -> T:
        """Poll ``ready()`` until truthy; :meth:`died` if the child exits or time runs out."""
        return wait_until(
            ready,
            timeout,
            interval=interval,
            alive=lambda: self.alive,
            what=what,
            fail=self.died,
            errors=(OSError, ValueError),
        )

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def died(self, what: str) -> Exception:
        code = self.process.returncode if self.process else None
        return self.error(
            f"{self.name} {what} (exit code {code}); its log {self.log_path} ends:\n{self.tail()}"
        )


def stop_all(children: list[Child], timeout: float | None = None) -> None:
    """TERM all at once, then wait for each (so their grace periods overlap)."""
    for child in children:
        child.send(signal.SIGTERM)
    for child in children:
        child.wait_stopped(timeout)
