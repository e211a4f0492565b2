"""Putting jobs in queues: ``Queue`` and the seed's ``JobScheduler``.

One enqueue is one round trip (a Lua script): the payload is pushed, the queue name
recorded in ``resque:queues``, a php-resque status (waiting) set, and idle workers are
woken through a pub/sub message. ``enqueue_many`` sends any number in one round trip.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import redis

from .delayed import delay_seconds, due_time, push_delayed
from .errors import ConfigurationError, PayloadError
from .jobs import JobRef, Registry, build_payload, job_args, registry
from .keys import DEFAULT_NAMESPACE, Keys
from .payload import Payload, check_queue_name, new_payload_json
from .scripts import ENQUEUE, ENQUEUE_NEW, encoded
from .status import JobStatus, status_json

#: How many jobs one script call carries in enqueue_many (Lua's argument stack is finite).
BULK_CHUNK = 2000


def _default_connection() -> redis.Redis:
    from .connection import connect

    return connect()


class Queue:
    """One named queue. ``connection`` defaults to :func:`labqueue.connect`."""

    def __init__(
        self,
        name: str = "default",
        connection: redis.Redis | None = None,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        registry: Registry = registry,
    ) -> None:
        self.name = check_queue_name(name)
        self.connection = connection if connection is not None else _default_connection()
        self.keys = Keys(namespace)
        self.registry = registry
        k = self.keys
        # ENQUEUE's arguments that are the same for every job of this queue, encoded once
        self._lists = encoded([k.queues, k.queue(self.name)])
        self._about = encoded([self.name, k.wakeup_channel])
        self._status_key = (k.status_prefix, Keys.STATUS_SUFFIX)

    def __repr__(self) -> str:
        return f"Queue({self.name!r})"

    def enqueue(self, job: JobRef, /, *args: Any, **data: Any) -> str:
        """Enqueue one job; returns its id. ``q.enqueue(SendEmail, to="a@b.c")``."""
        arg_list = job_args(args, data)
        job_id, text = new_payload_json(self.registry.name_of(job), arg_list)
        self._push_one(job_id, text)
        return job_id

    def enqueue_payload(self, payload: Payload) -> str:
        """Enqueue a payload built elsewhere (keeps its id); returns the id."""
        if payload.id is None:
            raise PayloadError("enqueue_payload needs a payload with an id")
        self._push([payload])
        return payload.id

    def enqueue_many(
        self, job: JobRef, items: Iterable[dict[str, Any] | Sequence[Any]]
    ) -> list[str]:
        """Enqueue one job per item (a dict: keyword data; a list: positional args)."""
        payloads = [
            build_payload(job, (), it, self.registry)
            if isinstance(it, dict)
            else build_payload(job, it, {}, self.registry)
            for it in items
        ]
        self._push(payloads)
        return [p.id for p in payloads]  # type: ignore[misc]

    def enqueue_at(self, when: float | datetime, job: JobRef, /, *args: Any, **data: Any) -> str:
        """Enqueue at ``when`` (epoch seconds or a datetime); returns the id.

        The job waits in resque-scheduler's layout (:mod:`labqueue.delayed`), status waiting.
        """
        at = due_time(when)
        payload = build_payload(job, args, data, self.registry)
        push_delayed(self.connection, self.keys, self.name, payload, at)
        return payload.id  # type: ignore[return-value]

    def enqueue_in(self, seconds: float, job: JobRef, /, *args: Any, **data: Any) -> str:
        """Enqueue in ``seconds`` from now; returns the id (see :meth:`enqueue_at`)."""
        return self.enqueue_at(time.time() + delay_seconds(seconds), job, *args, **data)

    def _push_one(self, job_id: str, text: str) -> None:
        """One payload: one EVALSHA, one round trip (the hot path)."""
        prefix, suffix = self._status_key
        status = status_json(JobStatus.WAITING)
        ENQUEUE.call(
            self.connection, (*self._lists, prefix + job_id + suffix), (*self._about, status, text)
        )

    def _push(self, payloads: list[Payload]) -> None:
        if len(payloads) == 1:
            self._push_one(payloads[0].id, payloads[0].to_json())  # type: ignore[arg-type]
            return
        if not payloads:
            return
        with self.connection.pipeline(transaction=False) as pipe:
            self._push_into(pipe, payloads)
            pipe.execute()

    def _push_into(self, pipe: Any, payloads: list[Payload], once: bool = False) -> None:
        """Queue ENQUEUE calls for ``payloads`` on ``pipe`` (chunks of BULK_CHUNK); ENQUEUE_NEW
        with ``once``."""
        script = ENQUEUE_NEW if once else ENQUEUE
        status = status_json(JobStatus.WAITING)
        prefix, suffix = self._status_key
        for start in range(0, len(payloads), BULK_CHUNK):
            chunk = payloads[start : start + BULK_CHUNK]
            keys = [*self._lists, *(prefix + p.id + suffix for p in chunk)]  # type: ignore[operator]
            argv = [*self._about, status, *(p.to_json() for p in chunk)]
            script.queue(pipe, keys, argv)

    # -- inspection --------------------------------------------------------------------
    def __len__(self) -> int:
        return self.length

    @property
    def length(self) -> int:
        """How many jobs wait in this queue."""
        return int(self.connection.llen(self.keys.queue(self.name)))

    def peek(self, start: int = 0, count: int = 10) -> list[Payload | str]:
        """Up to ``count`` waiting jobs from ``start``, oldest first (raw text if unreadable)."""
        raws = self.connection.lrange(self.keys.queue(self.name), start, start + count - 1)
        out: list[Payload | str] = []
        for raw in raws:
            try:
                out.append(Payload.from_json(raw))
            except PayloadError:
                out.append(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw)
        return out

    def clear(self) -> int:
        """Drop every waiting job; returns how many there were."""
        with self.connection.pipeline() as pipe:
            pipe.llen(self.keys.queue(self.name))
            pipe.delete(self.keys.queue(self.name))
            return int(pipe.execute()[0])


def enqueue_together(pushes: Sequence[tuple[Queue, Payload]], *, once: bool = False) -> list[str]:
    """Enqueue payloads on one or more queues of one connection, all or none, in one round
    trip (MULTI/EXEC): e.g. a checkout's email job and its two ERP jobs. Returns the ids.

    ``once``: skip a payload whose id was enqueued before (its status key exists: waiting,
    running, or finished within a day), so sending the same payloads twice queues them once
    (an outbox relay's retry; see :data:`~labqueue.scripts.ENQUEUE_NEW`)."""
    if not pushes:
        return []
    connection = pushes[0][0].connection
    if any(q.connection is not connection for q, _ in pushes):
        raise ConfigurationError("enqueue_together needs queues that share one connection")
    if any(p.id is None for _, p in pushes):
        raise PayloadError("enqueue_together needs payloads with ids (Payload.new)")
    grouped: dict[str, tuple[Queue, list[Payload]]] = {}
    for queue, payload in pushes:
        grouped.setdefault(queue.name, (queue, []))[1].append(payload)
    with connection.pipeline(transaction=True) as pipe:
        for queue, payloads in grouped.values():
            queue._push_into(pipe, payloads, once)
        pipe.execute()
    return [p.id for _, p in pushes]  # type: ignore[misc]


def queues(connection: redis.Redis | None = None, namespace: str = DEFAULT_NAMESPACE) -> list[str]:
    """Names of every known queue, sorted."""
    conn = connection if connection is not None else _default_connection()
    names = conn.smembers(Keys(namespace).queues)
    return sorted(n.decode() if isinstance(n, bytes) else n for n in names)


class JobScheduler:
    """The seed's API, chained setters, then ``schedule()`` returns the job id.

    ``JobScheduler().set_job_class(..).set_job_data(..).set_queue(..).schedule()``
    """

    def __init__(
        self, connection: redis.Redis | None = None, *, namespace: str = DEFAULT_NAMESPACE
    ) -> None:
        self.connection = connection
        self.namespace = namespace
        self._job: JobRef | None = None
        self._data: dict[str, Any] | list[Any] = {}
        self._queue = "default"

    def set_job_class(self, job: JobRef) -> JobScheduler:
        registry.name_of(job)  # fails now, clearly, for something that is not a job
        self._job = job
        return self

    def set_job_data(self, data: dict[str, Any] | list[Any]) -> JobScheduler:
        if not isinstance(data, dict | list):
            raise PayloadError(f"job data must be a dict (or a list of positional args): {data!r}")
        self._data = data
        return self

    def set_queue(self, name: str) -> JobScheduler:
        self._queue = check_queue_name(name)
        return self

    def schedule(self) -> str:
        """Enqueue the job; returns its id."""
        if self._job is None:
            raise ConfigurationError("call set_job_class(...) before schedule()")
        q = Queue(self._queue, self.connection, namespace=self.namespace)
        if isinstance(self._data, dict):
            return q.enqueue(self._job, **self._data)
        return q.enqueue(self._job, *self._data)
