"""The I/O round's job: sleep (a stand-in for waiting on a mail server or an ERP), then note
when it ran.

Every queue runs this one function: labqueue through :mod:`bench.labqueue_io`, huey through
:mod:`bench.huey_io`, Dramatiq through :mod:`bench.dramatiq_io`. It imports redis-py and
nothing of labqueue, so a peer's worker carries only its own queue's code.
"""

from __future__ import annotations

import os
import threading
import time

import redis

from .names import IO_DONE, URL_ENV

_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}


def _client() -> redis.Redis:
    url = os.environ[URL_ENV]
    with _lock:  # 25 threads may start at once: one client (its pool is thread-safe)
        client = _clients.get(url)
        if client is None:
            client = _clients[url] = redis.Redis.from_url(url)
        return client


def sleep(i: int, seconds: float) -> None:
    """Sleep ``seconds``, then RPUSH "``i`` start end" (wall-clock times) to IO_DONE."""
    started = time.time()
    time.sleep(seconds)
    _client().rpush(IO_DONE, f"{i} {started!r} {time.time()!r}")


def parse(record: str | bytes) -> tuple[int, float, float]:
    """(i, start, end) of one IO_DONE record."""
    i, start, end = record.split()
    return int(i), float(start), float(end)
