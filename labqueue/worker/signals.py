"""The worker's signals, for one worker and for a process of worker threads alike.

TERM, INT or QUIT: finish the current job(s), then exit. A second TERM or INT: put the
current job(s) back at the head of their queues and exit at once (QUIT never does). Only
the main thread can install handlers: a worker run in another thread is stopped with
:meth:`~labqueue.worker.Worker.stop` instead.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

#: The signals a worker handles.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)

Handler = Callable[[int, FrameType | None], Any]


class Interrupted(BaseException):
    """Raised by the signal handler to leave an idle wait at once (or by a stop met while
    waiting for Redis)."""


class Abort(BaseException):
    """The second signal: give the job back and exit (raised inside ``perform`` by one
    worker; met at its next step by a worker thread of a process whose jobs went back)."""


def install(handler: Handler) -> dict[int, Any]:
    """``handler`` for TERM, INT and QUIT; returns the handlers it replaced (none when not
    in the main thread, where Python allows no handler)."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.signal(signum, handler) for signum in STOP_SIGNALS}


def restore(old: dict[int, Any]) -> None:
    for signum, handler in old.items():
        signal.signal(signum, handler)


def gives_back(signum: int, count: int) -> bool:
    """Whether the ``count``-th stop signal (``signum``) puts the current job(s) back."""
    return count >= 2 and signum != signal.SIGQUIT


def name(signum: int) -> str:
    return signal.Signals(signum).name
