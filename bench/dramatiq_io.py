"""Dramatiq's side of the I/O round: ``dramatiq bench.dramatiq_io:broker --processes 1
--threads 25``.

:func:`app` builds the Redis broker and its actor for a URL (the bench enqueues through
it); the module attribute ``broker`` is that broker for the URL in the environment
(URL_ENV), built when Dramatiq's command first asks for it (its forked worker process
inherits it).
"""

from __future__ import annotations

import os
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from . import sleepjob
from .names import IO_QUEUE, URL_ENV

ACTOR = "bench_sleep"

_apps: dict[str, tuple[RedisBroker, Any]] = {}


def app(url: str) -> tuple[RedisBroker, Any]:
    """Dramatiq's RedisBroker on ``url`` and the sleep actor declared on it."""
    if url not in _apps:
        broker = RedisBroker(url=url)
        declare = dramatiq.actor(actor_name=ACTOR, queue_name=IO_QUEUE, broker=broker)
        actor = declare(sleepjob.sleep)
        _apps[url] = (broker, actor)
    return _apps[url]


def __getattr__(name: str) -> Any:
    if name == "broker":
        return app(os.environ[URL_ENV])[0]
    raise AttributeError(name)
