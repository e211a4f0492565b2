"""huey's side of the I/O round: ``huey_consumer bench.huey_io.huey -w 25 -k thread``.

:func:`app` builds the instance and its task for a URL (the bench enqueues through it);
the module attribute ``huey`` is that instance for the URL in the environment (URL_ENV),
built when huey's consumer first asks for it.
"""

from __future__ import annotations

import os
from typing import Any

from huey import RedisHuey

from . import sleepjob
from .names import URL_ENV

NAME = "bench-io"
TASK = "bench.sleep"

_apps: dict[str, tuple[RedisHuey, Any]] = {}


def app(url: str) -> tuple[RedisHuey, Any]:
    """The RedisHuey instance on ``url`` (blocking fetch, huey's default) and its sleep task."""
    if url not in _apps:
        huey = RedisHuey(NAME, url=url)
        _apps[url] = (huey, huey.task(name=TASK)(sleepjob.sleep))
    return _apps[url]


def __getattr__(name: str) -> Any:
    if name == "huey":
        return app(os.environ[URL_ENV])[0]
    raise AttributeError(name)
