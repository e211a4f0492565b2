"""Reliable fetch: every state change of a worker's job, each one atomic Lua script.

A job is always in exactly one place: its queue, one worker's in-progress hash
(``<ns>:labqueue:inprogress:<worker id>`` = ``{queue, payload}``), or done (counted, status
set, failure recorded). A worker killed at any instant leaves its job in the in-progress
hash, and whoever releases that worker (itself on the way out, or a live worker that finds
it dead) puts the job back at the head of its queue: at least once, never lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import redis
from redis.client import NEVER_DECODE

from ..badkeys import heal
from ..errors import BadKey
from ..keys import Keys
from ..payload import Payload
from ..scripts import RELEASE, STEP, encoded
from ..status import JobStatus, StatusRecord, running_json


@dataclass(frozen=True)
class Fetched:
    """A job a worker has taken, as its in-progress hash holds it: the queue it came from
    and its raw payload."""

    queue: str
    raw: str

    @property
    def job_id(self) -> str | None:
        """The payload's id (None when it has none, or is not a readable payload)."""
        try:
            return Payload.from_json(self.raw).id
        except Exception:
            return None


#: What :meth:`ReliableFetch.release` returns for a requeued payload that is not UTF-8.
NOT_TEXT = "(a payload that is not UTF-8 text)"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ReliableFetch:
    """The worker's scripts (:data:`~labqueue.scripts.STEP`, :data:`~labqueue.scripts.RELEASE`)
    and its in-progress hash, for one connection and namespace."""

    def __init__(self, connection: redis.Redis, keys: Keys) -> None:
        self.connection = connection
        self.keys = keys

    def bind(self, worker_id: str, queues: Sequence[str], ttl: int) -> WorkerSteps:
        """STEP's arguments that never change for ``worker_id``, computed once."""
        return WorkerSteps(self, worker_id, queues, ttl)

    def fetch(self, worker_id: str, queues: list[str], now: float, run_at: str) -> Any:
        """Take the next job into ``worker_id``'s in-progress hash (reply for :meth:`parse`)."""
        return self.bind(worker_id, queues, 0).step(None, now, run_at)

    @staticmethod
    def parse(reply: Any) -> Fetched | None:
        if not reply:
            return None
        return Fetched(_text(reply[0]), _text(reply[1]))

    def held(self, worker_id: str) -> Fetched | None:
        """What ``worker_id``'s in-progress hash holds (None: nothing, or not a hash: the
        next step sets that aside); bytes that are not UTF-8 are shown replaced."""
        key = self.keys.inprogress(worker_id)
        try:
            found = self.connection.execute_command(
                "HMGET", key, "queue", "payload", **{NEVER_DECODE: True}
            )
        except redis.ResponseError as exc:
            if not str(exc).startswith("WRONGTYPE"):
                raise
            return None
        if not found or found[0] is None or found[1] is None:
            return None
        queue, raw = (v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in found)
        return Fetched(queue, raw)

    def release(self, worker_id: str, now: float, crashed: bool = True) -> str | None:
        """Unregister ``worker_id``; returns the payload put back on its queue, if any.

        ``crashed`` (the default: a dead worker's job, released by whoever found it dead)
        counts the death in the payload (see :mod:`.crashes`); a worker giving its own job
        back on purpose (a second signal) passes False."""
        k = self.keys
        keys = (
            k.inprogress(worker_id),
            k.workers,
            k.worker(worker_id),
            k.worker_started(worker_id),
            k.heartbeat,
            k.stat("processed", worker_id),
            k.stat("failed", worker_id),
            k.queues,
            k.labqueue_workers,
        )
        waiting = StatusRecord(JobStatus.WAITING, now, now).to_json()
        count = "1" if crashed else ""
        args = (worker_id, k.queue_prefix, k.status_prefix, Keys.STATUS_SUFFIX, waiting, count)
        call = partial(RELEASE.call, self.connection, keys, args)
        try:
            try:
                reply = call()
            except BadKey as bad:  # moved aside, then released (see labqueue.badkeys)
                reply = heal(bad, call, self.connection, k, f"release of {worker_id}")
        except UnicodeDecodeError:  # released; the payload it returns is not UTF-8 text
            return NOT_TEXT
        return _text(reply) if reply else None


class WorkerSteps:
    """STEP for one worker: its keys and queues encoded once, the job's parts per call."""

    def __init__(
        self, fetcher: ReliableFetch, worker_id: str, queues: Sequence[str], ttl: int
    ) -> None:
        k = fetcher.keys
        self._connection = fetcher.connection
        self._layout, self._who = k, worker_id
        head = (k.inprogress(worker_id), k.worker(worker_id), k.queues)
        processed = (k.stat("processed"), k.stat("processed", worker_id), k.failed)
        self._keys = encoded((*head, *processed))
        self._failed = encoded((k.stat("failed"), k.stat("failed", worker_id)))
        self._status = (k.status_prefix, Keys.STATUS_SUFFIX)
        consts = (ttl, k.queue_prefix, k.status_prefix, Keys.STATUS_SUFFIX)
        self._tail = encoded(consts)
        self._fetch_tail = encoded((*consts, *queues))

    def step(
        self,
        done: tuple[str | None, str, str] | None,
        now: float,
        run_at: str,
        fetch: bool = True,
        retried: bool = False,
    ) -> Any:
        """Finish ``done`` = (status id, status JSON, failure record) if given, then fetch.

        The status id is the job id, or ``<prefix>_<id>`` for a php-resque prefix (see
        :func:`~labqueue.keys.status_id`). ``retried``: the run before was retried (RETRY let
        go of it): count it processed, as Resque counts every run that ended."""
        tail = self._fetch_tail if fetch else self._tail
        if done is None:
            flag, job_id, status, failure = "2" if retried else "", None, "", ""
        else:
            job_id, status, failure = done
            flag = "1"
        status_key = self._status[0] + (job_id or "-") + self._status[1]
        status = status if job_id else ""
        keys = (*self._keys, status_key, *self._failed)
        args = (flag, status, failure, run_at, running_json(now), *tail)
        try:
            return STEP.call(self._connection, keys, args)
        except BadKey as bad:  # moved aside, then the whole step again (nothing was written)
            again = partial(STEP.call, self._connection, keys, args)
            return heal(bad, again, self._connection, self._layout, self._who)
