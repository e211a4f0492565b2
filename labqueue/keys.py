"""Every Redis key labqueue reads or writes: the one home for key names.

Resque's keys (DESIGN.md) come first; labqueue's additions, for what Resque lacks
(reliable fetch, wake-ups), live under ``<namespace>:labqueue:`` so a Resque reader
never trips over them. No other module writes a key literal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_NAMESPACE = "resque"


@dataclass(frozen=True)
class WorkerId:
    """A worker's id as Resque writes it, ``host:pid:queue1,queue2``: the member of
    ``resque:workers`` and the tail of every per-worker key. Parsed and formatted here only.
    """

    host: str
    pid: str  #: digits for labqueue, Resque and php-resque workers; kept as text
    queues: tuple[str, ...]

    @classmethod
    def of(cls, host: str, pid: int, queues: Sequence[str]) -> WorkerId:
        return cls(host, str(pid), tuple(queues))

    @classmethod
    def parse(cls, text: str) -> WorkerId:
        """Any id, whoever wrote it: what is missing is empty (``"h"`` has no pid, no queues)."""
        host, _, rest = text.partition(":")
        pid, _, queues = rest.partition(":")
        return cls(host, pid, tuple(queues.split(",")) if queues else ())

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{','.join(self.queues)}"

    @property
    def process(self) -> int | None:
        """The pid as a number (None when the id carries none)."""
        return int(self.pid) if self.pid.isdigit() else None


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

    def status(self, job_id: str) -> str:
        """php-resque status JSON of one job."""
        return self.status_prefix + job_id + self.STATUS_SUFFIX

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
