"""What keeps a worker alive: Redis going away, and jobs it cannot even read.

- Outages: when Redis stops answering, the worker logs one line, waits with a growing pause
  (0.1 s doubling to ``max_pause``) until Redis answers again, logs one line, settles the job
  it was finishing, re-registers and carries on: no crash, no restart loop, and no job lost
  among those Redis kept. Its heartbeat and scheduler threads stay quiet meanwhile.
- Replies are never retried blindly: redis-py (6+) re-sends a command after a dropped
  connection by default, and a re-sent finish-and-fetch script would run twice (the second
  run would drop the job the first one fetched). The worker's own scripts therefore use a
  client without automatic retries (:func:`without_retries`), and the worker settles what
  happened itself, by reading its in-progress hash (:meth:`.ReliableFetch.held`).
- Unreadable jobs: a payload that is not UTF-8 cannot even be handed to Python. The worker
  reads it as bytes and moves it to the failed store (:func:`quarantine`) with the bytes kept
  (base64) and a readable copy, so the next worker does not trip over it again.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from functools import partial

import redis
from redis.backoff import NoBackoff
from redis.client import NEVER_DECODE
from redis.retry import Retry

from .. import timefmt
from ..badkeys import heal
from ..connection import clone
from ..errors import BadKey
from ..failures import Failure
from ..keys import Keys
from ..scripts import QUARANTINE

log = logging.getLogger("labqueue.worker")

#: Redis answered with one of these: it is there but cannot take writes now (loading after
#: a restart, out of memory, a replica, persistence failing): wait as for an outage.
_UNAVAILABLE_REPLIES = ("LOADING", "OOM", "READONLY", "MISCONF", "MASTERDOWN", "TRYAGAIN")


def unavailable(exc: BaseException) -> bool:
    """True if ``exc`` means Redis is (for now) out of reach, not that a command is wrong."""
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError | ConnectionError):
        return True
    return isinstance(exc, redis.ResponseError) and str(exc).startswith(_UNAVAILABLE_REPLIES)


def without_retries(connection: redis.Redis) -> redis.Redis:
    """A client of the same server whose commands are sent once (see the module docstring)."""
    if type(connection).__module__.startswith("fakeredis"):
        return connection
    return clone(connection, retry=Retry(NoBackoff(), 0))


class Outage:
    """One log line when Redis goes away and one when it is back, shared by a worker's threads."""

    def __init__(self, who: str, max_pause: float = 2.0) -> None:
        self.who = who
        self.max_pause = max_pause
        self.count = 0  #: outages seen
        self._since: float | None = None
        self._lock = threading.Lock()

    def note(self, exc: BaseException) -> None:
        """Redis failed us: log it if this starts an outage, else stay quiet."""
        with self._lock:
            if self._since is not None:
                return
            self._since = time.monotonic()
            self.count += 1
        log.warning("%s: Redis unreachable (%s); waiting for it to come back", self.who, exc)

    def back(self) -> None:
        with self._lock:
            since, self._since = self._since, None
        if since is not None:
            log.warning("%s: Redis is back after %.1f s", self.who, time.monotonic() - since)

    def wait(self, connection: redis.Redis, stop: threading.Event) -> bool:
        """Sleep with a growing pause until Redis answers PING; False if ``stop`` came first."""
        pause = 0.1
        while not stop.is_set():
            try:
                connection.ping()
                return True
            except redis.RedisError as exc:
                if not unavailable(exc):
                    raise
                self.note(exc)
            stop.wait(pause)
            pause = min(pause * 2, self.max_pause)
        return False


def quarantine(connection: redis.Redis, keys: Keys, worker_id: str) -> bool:
    """Fail the unreadable (not UTF-8) job this worker holds; True if there was one."""
    key = keys.inprogress(worker_id)
    raw = connection.execute_command("HGET", key, "payload", **{NEVER_DECODE: True})
    queue = connection.execute_command("HGET", key, "queue", **{NEVER_DECODE: True})
    if raw is None:
        return False
    queue_name = (queue or b"").decode("utf-8", "replace")
    readable = raw.decode("utf-8", "backslashreplace")
    error = f"payload is not UTF-8 text ({len(raw)} bytes): its bytes are in payload_base64"
    failure = Failure(
        timefmt.failed_at(),
        readable,
        "PayloadError",
        error,
        [],
        worker_id,
        queue_name,
        {"payload_base64": base64.b64encode(raw).decode()},
    )
    counters = (keys.stat("failed"), keys.stat("failed", worker_id))
    processed = (keys.stat("processed"), keys.stat("processed", worker_id))  # failed count too
    call = partial(
        QUARANTINE.call,
        connection,
        (key, keys.worker(worker_id), *counters, keys.failed, *processed),
        (raw, failure.to_json()),
    )
    try:
        done = call()
    except BadKey as bad:  # moved aside, then quarantined (see labqueue.badkeys)
        done = heal(bad, call, connection, keys, worker_id)
    log.warning("%s: a job in %s is not UTF-8; moved it to the failed store", worker_id, queue_name)
    return bool(done)
