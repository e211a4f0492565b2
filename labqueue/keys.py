"""Every Redis key labqueue reads or writes: the one home for key names.

Resque's keys (DESIGN.md) come first; labqueue's additions, for what Resque lacks
(reliable fetch, wake-ups), live under ``<namespace>:labqueue:`` so a Resque reader
never trips over them. No other module writes a key literal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_NAMESPACE = "resque"


#: The fourth field of a worker thread's id: ``:t<K>`` (``labqueue worker --threads N``).
_THREAD_FIELD = re.compile(r":t([0-9]{1,9})$")


@dataclass(frozen=True)
class WorkerId:
    """A worker's id as Resque writes it, ``host:pid:queue1,queue2``: the member of
    ``resque:workers`` and the tail of every per-worker key. Parsed and formatted here only.

    A thread of ``labqueue worker --threads N`` (N > 1) is a worker of its own, with a fourth
    field: ``host:pid:queues:tK``, K = 1..N. The pid field stays the process's real pid, so
    Ruby Resque's prune (``host, pid, queues = id.split(':')``, then the pid looked up in
    ``ps``) and php-resque's (``explode(':', $id, 3)``) keep the thread alive exactly as they
    keep its process, and resque-web shows ``host:pid`` and the queues.
    """

    host: str
    pid: str  #: digits for labqueue, Resque and php-resque workers; kept as text
    queues: tuple[str, ...]
    thread: int | None = None  #: K of a worker thread (``--threads N``, N > 1), else None

    @classmethod
    def of(cls, host: str, pid: int, queues: Sequence[str], thread: int | None = None) -> WorkerId:
        return cls(host, str(pid), tuple(queues), thread)

    @classmethod
    def parse(cls, text: str) -> WorkerId:
        """Any id, whoever wrote it: what is missing is empty (``"h"`` has no pid, no queues).
        A trailing ``:t<digits>`` after the queues is a thread's number."""
        host, _, rest = text.partition(":")
        pid, _, queues = rest.partition(":")
        thread = None
        found = _THREAD_FIELD.search(queues)
        if found is not None and found.start() > 0:
            thread, queues = int(found.group(1)), queues[: found.start()]
        return cls(host, pid, tuple(queues.split(",")) if queues else (), thread)

    def __str__(self) -> str:
        tail = "" if self.thread is None else f":t{self.thread}"
        return f"{self.host}:{self.pid}:{','.join(self.queues)}{tail}"

    @property
    def process(self) -> int | None:
        """The pid as a number (None when the id carries none)."""
        return int(self.pid) if self.pid.isdigit() else None


def status_id(job_id: str, prefix: str = "") -> str:
    """``P_ID`` for php-resque's prefix P, else the id (PHP's empty(): ``""``, ``"0"``)."""
    return f"{prefix}_{job_id}" if prefix and prefix != "0" else job_id


@dataclass(frozen=True)
class Keys:
    """Key names for one namespace (``resque`` unless configured otherwise)."""

    namespace: str = DEFAULT_NAMESPACE

    def _k(self, *parts: str) -> str:
        return ":".join((self.namespace, *parts))

    # -- Resque's layout ---------------------------------------------------------------
    @property
    def queues(self) -> str:
        """Set of known queue names (SADD on every enqueue)."""
        return self._k("queues")

    @property
    def queue_prefix(self) -> str:
        """Prefix of every queue list; ``queue_prefix + name`` is the queue's key."""
        return self._k("queue", "")

    def queue(self, name: str) -> str:
        """List of payloads waiting on queue ``name`` (RPUSH in, taken from the left)."""
        return self.queue_prefix + name

    @property
    def failed(self) -> str:
        """List of failure records."""
        return self._k("failed")

    @property
    def workers(self) -> str:
        """Set of registered worker ids ``host:pid:queues``."""
        return self._k("workers")

    def worker(self, worker_id: str) -> str:
        """JSON ``{queue, run_at, payload}`` while the worker is busy."""
        return self._k("worker", worker_id)

    def worker_started(self, worker_id: str) -> str:
        """When the worker started."""
        return self._k("worker", worker_id, "started")

    @property
    def heartbeat(self) -> str:
        """Hash worker id -> ISO 8601 time of its last beat."""
        return self._k("workers", "heartbeat")

    def stat(self, name: str, worker_id: str | None = None) -> str:
        """Counter ``processed`` or ``failed``, globally or for one worker."""
        return self._k("stat", name) if worker_id is None else self._k("stat", name, worker_id)

    @property
    def status_prefix(self) -> str:
        return self._k("job", "")

    STATUS_SUFFIX = ":status"

    def status(self, job_id: str, prefix: str = "") -> str:
        """php-resque status JSON of one job; php-resque's ``prefix`` P (a payload field)
        makes it ``job:P_ID:status`` (``""`` and ``"0"`` are no prefix, as PHP's empty())."""
        return self.status_prefix + status_id(job_id, prefix) + self.STATUS_SUFFIX

    @property
    def delayed_schedule(self) -> str:
        """resque-scheduler: zset of timestamps that have delayed jobs."""
        return self._k("delayed_queue_schedule")

    @property
    def delayed_prefix(self) -> str:
        return self._k("delayed", "")

    def delayed(self, timestamp: int) -> str:
        """resque-scheduler: list of payloads (with ``queue``) due at ``timestamp``."""
        return self.delayed_prefix + str(int(timestamp))

    @staticmethod
    def delayed_member(timestamp: int | str) -> str:
        """``delayed:<ts>`` without the namespace: what resque-scheduler puts in a
        ``timestamps:`` set (redis-namespace prefixes key names, not values)."""
        return f"delayed:{timestamp}"

    @property
    def timestamps_prefix(self) -> str:
        return self._k("timestamps", "")

    def timestamps(self, item: str) -> str:
        """resque-scheduler's index: set of the ``delayed:<ts>`` keys holding the encoded
        item ``{"class":..,"args":..,"queue":..}`` (the key ends with the item's exact text)."""
        return self.timestamps_prefix + item

    # -- labqueue's additions ----------------------------------------------------------
    @property
    def inprogress_prefix(self) -> str:
        return self._k("labqueue", "inprogress", "")

    def inprogress(self, worker_id: str) -> str:
        """Hash ``{queue, payload}`` of the job a worker has taken (reliable fetch)."""
        return self.inprogress_prefix + worker_id

    @property
    def wakeup_channel(self) -> str:
        """Pub/sub channel an enqueue publishes the queue name on, to wake idle workers."""
        return self._k("labqueue", "enqueued")

    @staticmethod
    def push_event_channels(db: int) -> list[str]:
        """Keyevent channels of list pushes (their message is the key): how a worker hears of
        jobs that Resque or php-resque producers push, which publish no wake-up."""
        return [f"__keyevent@{db}__:{event}" for event in ("rpush", "lpush")]

    @property
    def scheduled_prefix(self) -> str:
        return self._k("labqueue", "scheduled", "")

    def scheduled(self, timestamp: int) -> str:
        """Hash beside ``delayed:<ts>``: encoded item -> JSON list of what labqueue keeps of
        each copy (its id, queue_time, exact due time), which resque-scheduler's item cannot
        carry without breaking Ruby's ``remove_delayed`` matching."""
        return self.scheduled_prefix + str(int(timestamp))

    @property
    def labqueue_workers(self) -> str:
        """Hash worker id -> JSON record of labqueue's own workers (pid namespace, version,
        instance token, last beat on Redis' clock): how labqueue tells its workers from
        Resque's and php-resque's, and judges them by its own rule."""
        return self._k("labqueue", "workers")

    @property
    def aside_prefix(self) -> str:
        return self._k("labqueue", "aside", "")

    def aside(self, key: bytes, stamp: str) -> bytes:
        """Where a key of the layout holding the wrong type is moved, content intact:
        ``<ns>:labqueue:aside:<stamp>:<key>`` (bytes: the key's may not be UTF-8)."""
        return self.aside_prefix.encode() + stamp.encode() + b":" + key

    @property
    def prune_lock(self) -> str:
        """Held by the one worker pruning dead workers."""
        return self._k("labqueue", "pruning")

    # -- concurrency limits (labqueue.worker.limits) -----------------------------------
    @property
    def limits(self) -> str:
        """Hash limiter name -> its size K (``max_concurrency``), written by every acquire:
        how sweepers, ``labqueue stats`` and the monitor find every limiter."""
        return self._k("labqueue", "limits")

    @property
    def limit_holders_prefix(self) -> str:
        return self._k("labqueue", "limit", "holders", "")

    def limit_holders(self, name: str) -> str:
        """Zset of one limiter's slots: worker id -> lease deadline (Redis' clock, epoch s)."""
        return self.limit_holders_prefix + name

    @property
    def limit_parked_prefix(self) -> str:
        return self._k("labqueue", "limit", "parked", "")

    def limit_parked(self, name: str) -> str:
        """List of one limiter's parked jobs, oldest first: JSON ``{queue, payload}`` (the
        payload as a string, byte for byte), out of their queue until a slot frees."""
        return self.limit_parked_prefix + name
