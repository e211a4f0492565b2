"""Putting jobs in queues: ``Queue`` and the seed's ``JobScheduler``.

One enqueue is one round trip (a Lua script): the payload is pushed, the queue name
recorded in ``resque:queues``, a php-resque status (waiting) set, and idle workers are
woken through a pub/sub message. ``enqueue_many`` sends any number in one round trip.

Durable enqueues (``Queue(..., durable=True)``, or ``wait_replicas=N`` per call): Redis
replicates asynchronously, so a job the primary acknowledged can be lost if the primary
dies before a replica has it. A durable enqueue sends ``WAIT N timeout`` behind the push, in
the same round trip, and returns only once N replicas have the job; else it raises
:class:`~labqueue.errors.NotReplicated` (the job is queued on the primary, not yet safe).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import redis

from .delayed import delay_seconds, due_time, push_delayed
from .errors import ConfigurationError, NotReplicated, PayloadError
from .jobs import JobRef, Registry, build_payload, job_args, registry
from .keys import DEFAULT_NAMESPACE, Keys
from .payload import Payload, check_queue_name, new_payload_json
from .scripts import ENQUEUE, ENQUEUE_NEW, encoded
from .status import JobStatus, status_json

#: How many jobs one script call carries in enqueue_many (Lua's argument stack is finite).
BULK_CHUNK = 2000
#: How long a durable enqueue waits for its replicas by default (seconds).
WAIT_TIMEOUT = 1.0


def _default_connection() -> redis.Redis:
    from .connection import connect

    return connect()


class Queue:
    """One named queue. ``connection`` defaults to :func:`labqueue.connect`.

    ``durable=True`` (one replica) or ``wait_replicas=N``: every enqueue returns only once N
    replicas have the job (``WAIT``, at most ``wait_timeout`` seconds; see the module doc).
    """

    def __init__(
        self,
        name: str = "default",
        connection: redis.Redis | None = None,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        registry: Registry = registry,
        durable: bool = False,
        wait_replicas: int | None = None,
        wait_timeout: float = WAIT_TIMEOUT,
    ) -> None:
        self.name = check_queue_name(name)
        self.connection = connection if connection is not None else _default_connection()
        self.wait_replicas = _replicas(wait_replicas if wait_replicas is not None else durable)
        self.wait_timeout = _wait_timeout(wait_timeout)
        if self.wait_replicas:
            _check_can_wait(self.connection)
        self.keys = Keys(namespace)
        self.registry = registry
        k = self.keys
        # ENQUEUE's arguments that are the same for every job of this queue, encoded once
        self._lists = encoded([k.queues, k.queue(self.name)])
        self._about = encoded([self.name, k.wakeup_channel])
        self._status_key = (k.status_prefix, Keys.STATUS_SUFFIX)

    def __repr__(self) -> str:
        return f"Queue({self.name!r})"

    def enqueue(
        self, job: JobRef, /, *args: Any, wait_replicas: int | None = None, **data: Any
    ) -> str:
        """Enqueue one job; returns its id. ``q.enqueue(SendEmail, to="a@b.c")``.

        ``wait_replicas=N`` makes this one enqueue durable (the queue's setting otherwise):
        hence no job can take a ``wait_replicas`` keyword as data.
        """
        replicas = self.wait_replicas if wait_replicas is None else _replicas(wait_replicas)
        if replicas and not self.wait_replicas:
            _check_can_wait(self.connection)
        arg_list = job_args(args, data)
        job_id, text = new_payload_json(self.registry.name_of(job), arg_list)
        self._push_one(job_id, text, replicas)
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
        if self.wait_replicas:  # a second round trip: the delayed push is not a script call here
            self._check_replicated([payload.id], self.connection.execute_command(*self._wait()))  # type: ignore[list-item]
        return payload.id  # type: ignore[return-value]

    def enqueue_in(self, seconds: float, job: JobRef, /, *args: Any, **data: Any) -> str:
        """Enqueue in ``seconds`` from now; returns the id (see :meth:`enqueue_at`)."""
        return self.enqueue_at(time.time() + delay_seconds(seconds), job, *args, **data)

    def _push_one(self, job_id: str, text: str, replicas: int = 0) -> None:
        """One payload: one EVALSHA, one round trip (the hot path); with ``replicas``, a WAIT
        behind it in the same round trip."""
        prefix, suffix = self._status_key
        keys = (*self._lists, prefix + job_id + suffix)
        args = (*self._about, status_json(JobStatus.WAITING), text)
        if not replicas:
            ENQUEUE.call(self.connection, keys, args)
            return
        _, confirmed = ENQUEUE.call_then(self.connection, keys, args, self._wait(replicas))
        self._check_replicated([job_id], confirmed, replicas)

    def _wait(self, replicas: int = 0) -> tuple[str, int, int]:
        """``WAIT numreplicas timeout-ms`` (never 0 ms: that would block for ever)."""
        return ("WAIT", replicas or self.wait_replicas, max(1, round(self.wait_timeout * 1000)))

    def _check_replicated(self, job_ids: list[str], confirmed: Any, replicas: int = 0) -> None:
        wanted = replicas or self.wait_replicas
        if int(confirmed) < wanted:
            raise NotReplicated(job_ids, int(confirmed), wanted, self.wait_timeout)

    def _push(self, payloads: list[Payload]) -> None:
        if len(payloads) == 1:
            self._push_one(payloads[0].id, payloads[0].to_json())  # type: ignore[arg-type]
            return
        if not payloads:
            return
        with self.connection.pipeline(transaction=False) as pipe:
            self._push_into(pipe, payloads)
            if self.wait_replicas:
                pipe.execute_command(*self._wait())
            replies = pipe.execute()
        if self.wait_replicas:
            self._check_replicated([p.id for p in payloads], replies[-1])  # type: ignore[misc]

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
    ids: list[str] = [p.id for _, p in pushes]  # type: ignore[misc]
    durable = max((q for q, _ in pushes), key=lambda q: q.wait_replicas)
    if durable.wait_replicas:  # after EXEC: WAIT inside MULTI would not wait
        durable._check_replicated(ids, connection.execute_command(*durable._wait()))
    return ids


def _replicas(value: int | bool) -> int:
    if isinstance(value, bool):
        return int(value)
    if not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"wait_replicas must be a whole number >= 0, not {value!r}")
    return value


def _wait_timeout(seconds: float) -> float:
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds <= 0:
        raise ConfigurationError(f"wait_timeout must be seconds > 0, not {seconds!r}")
    return float(seconds)


def _check_can_wait(connection: redis.Redis) -> None:
    if type(connection).__module__.startswith("fakeredis"):
        raise ConfigurationError(
            "durable enqueues need a redis-server with replicas (fakeredis has no WAIT)"
        )


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
