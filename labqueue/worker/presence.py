"""Being seen alive by every fleet that shares the Redis: labqueue's, Resque's, php-resque's.

- **Process title.** Resque and php-resque, when a worker of theirs starts, unregister every
  worker of their host whose pid does not show in ``ps`` output matching ``resque`` (Ruby:
  ``[r]esque:work|[r]esque:\\sStarting|[r]esque-[0-9]``, never ``resque-web``). A labqueue
  worker therefore names its process ``resque-<version>-labqueue: Waiting for q1,q2`` /
  ``... Processing <queue> since <epoch s> [<class>]``, before it registers (:class:`Title`);
  a process of worker threads shows ``... Processing 3 of 8 threads busy on q1,q2``.
- **labqueue's own record.** ``<ns>:labqueue:workers`` holds, per labqueue worker id, its pid
  namespace (with the kernel's boot id: pid checks are only trusted within one namespace),
  version, instance token, heartbeat interval and last beat on Redis' clock
  (:class:`WorkerRecord`). A registered id without a record is another library's worker.
- **Every beat re-registers** (:data:`~labqueue.scripts.BEAT`): SADD ``workers``, the start
  time if it is missing, the Resque heartbeat (ISO 8601, from Redis ``TIME``), the record,
  and the busy record while a job of ours still runs: a wrong prune by anyone heals within
  one heartbeat.
- **One clock.** Heartbeats are written and judged on Redis' ``TIME``; a worker whose own clock
  is more than :data:`CLOCK_SKEW_WARN` seconds off says so, once.
- **One id, one worker** (issue 15, item 10): a worker refuses to start under an id that a
  live labqueue worker holds (:meth:`Presence.claim`).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import redis
import setproctitle

from .. import timefmt
from ..errors import ConfigurationError
from ..keys import Keys
from ..scripts import BEAT, CLAIM

log = logging.getLogger("labqueue.worker")

#: A worker whose clock is further than this (seconds) from Redis' says so, once.
CLOCK_SKEW_WARN = 5.0

#: This machine's clock (a name of its own, so a test can set it wrong).
local_clock = time.time


@cache
def version() -> str:
    """labqueue's version for the title (a digit first, as Resque's pattern wants)."""
    from importlib import metadata

    try:
        found = metadata.version("labqueue")
    except metadata.PackageNotFoundError:  # a bare checkout
        found = "0"
    return found if found[:1].isdigit() else "0"


@cache
def pid_namespace() -> str:
    """Which pid namespace this process lives in: ``<boot id>/<ns inode>`` on Linux (two
    machines with one hostname differ by boot id, two containers by the inode); elsewhere
    the boot time (no pid namespaces there)."""
    try:
        inode = os.stat("/proc/self/ns/pid").st_ino
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        return f"{boot}/{inode}"
    except OSError:
        import psutil

        return f"boot-{int(psutil.boot_time())}"


def redis_time(connection: redis.Redis) -> float:
    """Redis' clock (``TIME``), in epoch seconds."""
    seconds, micros = connection.time()
    return int(seconds) + int(micros) / 1e6


@dataclass(frozen=True)
class WorkerRecord:
    """What ``<ns>:labqueue:workers`` holds for one labqueue worker."""

    pidns: str  #: :func:`pid_namespace` of the worker's process
    token: str  #: this Worker object's own (two workers with one id differ here)
    beat: float  #: last beat, Redis' clock (epoch s)
    every: float  #: its heartbeat interval (s)
    version: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: Any) -> WorkerRecord | None:
        """The record, or None when it cannot be read (treated as no record)."""
        try:
            data = json.loads(raw)
            return cls(
                str(data["pidns"]),
                str(data["token"]),
                float(data["beat"]),
                float(data.get("every", 0)),
                str(data.get("version", "")),
            )
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            return None


class Title:
    """The process title Resque's and php-resque's prune rules keep (see the module doc).

    ``enabled=None``: only when the worker runs in the main thread (a worker in a thread
    shares its process with others, whose title is not its to change).
    """

    def __init__(self, queues: list[str], enabled: bool | None = None) -> None:
        on_main = threading.current_thread() is threading.main_thread()
        self.enabled = on_main if enabled is None else enabled
        self.prefix = f"resque-{version()}-labqueue: "
        self.queues = ",".join(queues)
        self.waiting = f"{self.prefix}Waiting for {self.queues}"
        self._saved: str | None = None
        self._shown = ""

    def show(self, text: str) -> None:
        if self.enabled and text != self._shown:
            if self._saved is None:
                self._saved = setproctitle.getproctitle()
            setproctitle.setproctitle(text)
            self._shown = text

    def wait(self) -> None:
        self.show(self.waiting)

    def processing(self, queue: str, since: float, job_class: str) -> None:
        self.show(f"{self.prefix}Processing {queue} since {int(since)} [{job_class}]")

    def threads(self, busy: int, total: int) -> None:
        """A process of ``total`` worker threads, ``busy`` of them running a job."""
        if busy:
            self.show(f"{self.prefix}Processing {busy} of {total} threads busy on {self.queues}")
        else:
            self.show(f"{self.waiting} ({total} threads)")

    def restore(self) -> None:
        if self._saved is not None:
            setproctitle.setproctitle(self._saved)
            self._saved, self._shown = None, ""


class Presence:
    """One worker's registration, heartbeat and record (see the module doc)."""

    def __init__(self, connection: redis.Redis, keys: Keys, worker_id: str, every: float) -> None:
        self.connection = connection
        self.keys = keys
        self.id = worker_id
        self.every = every
        self.token = os.urandom(8).hex()
        self.skew_warned = False
        self.run_at = ""  #: when the job we run was taken (Resque's text), for the busy record

    def record(self, now: float) -> WorkerRecord:
        return WorkerRecord(pid_namespace(), self.token, now, self.every, version())

    def claim(self, dead: Callable[[WorkerRecord, float], bool]) -> None:
        """Take our id in labqueue's record; ConfigurationError when a live labqueue worker
        (another process, or another Worker object) holds it: one that ``dead(record, now)``,
        labqueue's rule (:func:`.liveness.labqueue_dead`), does not call dead."""
        for _ in range(5):
            now = self.now()
            held = self.connection.hget(self.keys.labqueue_workers, self.id)
            other = WorkerRecord.from_json(held) if held is not None else None
            mine = other is None or other.token == self.token
            if other and not mine and not dead(other, now):
                raise ConfigurationError(
                    f"worker id {self.id} is taken by a live labqueue worker (last beat "
                    f"{max(now - other.beat, 0):.0f} s ago): two workers with one id would "
                    "release each other's jobs; give this one other queues or stop the other"
                )
            args = (self.id, "" if held is None else held, self.record(now).to_json())
            if CLAIM.call(self.connection, (self.keys.labqueue_workers,), args):
                return
        raise ConfigurationError(f"worker id {self.id}: could not claim it (contended)")

    def now(self) -> float:
        """Redis' clock; warns once when ours is off by more than CLOCK_SKEW_WARN."""
        local = local_clock()
        now = redis_time(self.connection)
        skew = local - now
        if abs(skew) > CLOCK_SKEW_WARN and not self.skew_warned:
            self.skew_warned = True
            log.warning(
                "%s: this machine's clock is %+.1f s off Redis' clock; heartbeats use Redis' "
                "clock, but fix NTP here",
                self.id,
                skew,
            )
        return now

    def beat(self) -> None:
        """Be registered and beating, on Redis' clock, in one script (see the module doc)."""
        BEAT.call(self.connection, *self.beat_call(self.now()))

    def beat_call(self, now: float) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """BEAT's keys and arguments at ``now`` (Redis' clock): a process with many worker
        threads queues one per thread in a pipeline (see :mod:`.threads`)."""
        k, wid = self.keys, self.id
        keys = (
            k.workers,
            k.worker_started(wid),
            k.heartbeat,
            k.labqueue_workers,
            k.worker(wid),
            k.inprogress(wid),
        )
        args = (
            wid,
            timefmt.started(now),
            timefmt.heartbeat(now),
            self.record(now).to_json(),
            self.run_at or timefmt.run_at(now),
        )
        return keys, args
