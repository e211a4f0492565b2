"""Running one job's ``perform``: here with a time limit, or in a child process (``--fork``).

- In this process (the default): a job over its time limit (``Job.timeout``, else the
  worker's ``job_timeout``) is interrupted with SIGALRM, or, in a worker that runs in a
  thread, with an asynchronous exception (which cannot interrupt a blocking C call: use
  ``--fork`` for hard limits). ``sys.exit()`` inside a job fails that job, not the worker.
- ``fork=True``: each job runs in a child process, as Resque does. A job that segfaults,
  calls ``os._exit``, runs over its limit (the child is killed) or leaks memory fails alone:
  the worker reads the outcome from a pipe and carries on. The child dies with the worker.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from typing import Any, NoReturn

import redis

from .. import procs
from ..errors import ConfigurationError, JobCrashed, JobRaised, JobTimeout
from ..payload import Payload


class _TimeLimit(BaseException):
    """Raised into a job that ran over its limit (a BaseException: ``except Exception``
    in the job does not swallow it)."""


def time_limit(job_class: Any, default: float | None) -> float | None:
    """The job class's ``timeout``, else the worker's default (None: no limit)."""
    limit = getattr(job_class, "timeout", None)
    limit = default if limit is None else limit
    return float(limit) if limit else None


def check_limit(seconds: float | None) -> float | None:
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
        raise ConfigurationError(f"a job time limit must be seconds > 0, not {seconds!r}")
    return float(seconds)


def _timeout(limit: float) -> JobTimeout:
    return JobTimeout(f"the job ran over its time limit of {limit:g} s and was stopped")


class Executor:
    """Runs ``perform`` for a worker: inline or forked, always under the job's time limit."""

    def __init__(
        self, connection: redis.Redis, default_timeout: float | None = None, fork: bool = False
    ) -> None:
        self.connection = connection
        self.default_timeout = check_limit(default_timeout)
        self.fork = fork

    def run(self, job_class: Any, payload: Payload, queue: str) -> Any:
        """Run the job; returns what ``perform`` returned (php-resque keeps it as the status's
        ``result``); raises what it raised, or a JobFailed (timeout, crash, forked error)."""
        limit = time_limit(job_class, self.default_timeout)
        if self.fork:
            return run_forked(job_class, payload, queue, self.connection, limit)
        return run_inline(job_class, payload, queue, self.connection, limit)


# -- in this process -------------------------------------------------------------------
def run_inline(
    job_class: Any, payload: Payload, queue: str, connection: redis.Redis, limit: float | None
) -> Any:
    try:
        if limit is None:  # the common case: no timer to arm
            return job_class(payload, queue, connection).perform()
        with _limited(limit):
            return job_class(payload, queue, connection).perform()
    except _TimeLimit:
        raise _timeout(limit or 0) from None
    except (SystemExit, KeyboardInterrupt) as exc:
        raise JobCrashed(
            f"perform raised {type(exc).__name__}({exc}): a job must not stop the worker"
        ) from None


@contextlib.contextmanager
def _limited(limit: float) -> Iterator[None]:
    if threading.current_thread() is threading.main_thread():
        with _alarm(limit):
            yield
    else:
        with _watchdog(limit):
            yield


@contextlib.contextmanager
def _alarm(limit: float) -> Iterator[None]:
    def on_alarm(signum: int, frame: Any) -> None:
        raise _TimeLimit

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _async_raise(thread_id: int, exc: type[BaseException] | None) -> None:
    target = ctypes.py_object(exc) if exc is not None else None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), target)


@contextlib.contextmanager
def _watchdog(limit: float) -> Iterator[None]:
    """For a worker in a thread: raise _TimeLimit into it at the limit (between bytecodes)."""
    target, lock, state = threading.get_ident(), threading.Lock(), {"done": False, "fired": False}

    def fire() -> None:
        with lock:
            if not state["done"]:
                state["fired"] = True
                _async_raise(target, _TimeLimit)

    timer = threading.Timer(limit, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        with lock:
            state["done"] = True
            timer.cancel()
            if state["fired"]:
                _async_raise(target, None)  # not raised yet: clear it


# -- in a child process ----------------------------------------------------------------
def run_forked(
    job_class: Any, payload: Payload, queue: str, connection: redis.Redis, limit: float | None
) -> Any:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    read_fd, write_fd = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_fd)
        _child(write_fd, parent, job_class, payload, queue, connection)
    os.close(write_fd)
    try:
        report, status = _collect(pid, read_fd, limit)
    finally:
        os.close(read_fd)
        _reap(pid)
    if report.get("ok"):
        return report.get("result")
    if "exception" in report:
        raise JobRaised(
            str(report["exception"]),
            str(report.get("error", "")),
            list(report.get("backtrace") or []),
            list(report.get("lineage") or []),
        )
    raise JobCrashed(_describe(status))


def _collect(pid: int, fd: int, limit: float | None) -> tuple[dict[str, Any], int]:
    """Read the child's report until it closes the pipe; JobTimeout past the limit."""
    deadline = None if limit is None else time.monotonic() + limit
    chunks: list[bytes] = []
    while True:
        wait = None if deadline is None else deadline - time.monotonic()
        if wait is not None and wait <= 0:
            raise _timeout(limit or 0)
        ready, _, _ = select.select([fd], [], [], wait)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    try:
        report = json.loads(b"".join(chunks)) if chunks else {}
    except ValueError:
        report = {}
    return (report if isinstance(report, dict) else {}), status


def _reap(pid: int) -> None:
    """Kill the child if it still runs (timeout, second signal) and collect it."""
    with contextlib.suppress(ChildProcessError, ProcessLookupError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        return f"the job's process was killed by {name} before it finished"
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
    return f"the job's process exited with code {code} before it finished"


def _child(  # pragma: no cover - runs in the child
    fd: int, parent: int, job_class: Any, payload: Payload, queue: str, connection: redis.Redis
) -> NoReturn:
    try:
        _become_child(parent)
        try:
            result = job_class(payload, queue, connection).perform()
            report: dict[str, Any] = {"ok": True}
            with contextlib.suppress(TypeError, ValueError, RecursionError):
                report["result"] = json.loads(json.dumps(result, allow_nan=False))
        except BaseException as exc:  # SystemExit too: it is the job's outcome
            frames = traceback.format_tb(exc.__traceback__) if exc.__traceback__ else []
            lines = [ln for frame in frames for ln in frame.rstrip("\n").split("\n")]
            lineage = [c.__name__ for c in type(exc).__mro__]
            report = {
                "exception": type(exc).__name__,
                "error": str(exc),
                "backtrace": lines,
                "lineage": lineage,
            }
        data = json.dumps(report, ensure_ascii=True).encode()
        while data:
            data = data[os.write(fd, data) :]
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(0)


def _become_child(parent: int) -> None:  # pragma: no cover - runs in the child
    """Signals are the worker's business (it kills us if need be); die with the worker."""
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
        signal.signal(signum, signal.SIG_IGN)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    procs.set_death_signal(signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)
