"""Job events: an opt-in record of every job's life, one JSON line per job a worker ran.

    labqueue worker --queues email,erp --job-events var/jobs     # or LABQUEUE_JOB_EVENTS
    Worker(["email"], r, job_events="var/jobs")                  # the same from Python
    events = read_job_events("var/jobs")                         # every row, oldest first

Each worker process appends to its own file, ``<dir>/jobs-<host>-<pid>.jsonl``, one line per
job it ran, flushed at once (a killed worker keeps what it wrote)::

    {"id": "..", "class": "Shop::SendReceiptEmail", "queue": "email", "args": [{"order_id": 7}],
     "enqueued": 1.7e9, "started": 1.7e9, "finished": 1.7e9, "outcome": "done",
     "worker": "host:pid:email,erp"}

``enqueued`` is the payload's ``queue_time`` (the producer's clock; null for Ruby producers,
which send none); ``started`` and ``finished`` are the worker's clock, taken around
``perform``. ``outcome`` is ``done``, ``failed`` (recorded in the failed store) or ``retry``
(scheduled again: the same id comes back as another row). A job interrupted by a second
signal or a killed worker has no row: it runs again, and that run writes one.

Off (the default), the worker runs exactly the code it runs without this module: the
recorder wraps the worker's ``_perform`` only when a directory is given. It is for load
tests and investigations, not for production: a line per job costs a file write.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

from .payload import Payload

log = logging.getLogger("labqueue.events")

#: The environment variable ``labqueue worker --job-events`` reads.
ENV = "LABQUEUE_JOB_EVENTS"
#: What every file of job events is called: ``jobs-<host>-<pid>.jsonl``.
PATTERN = "jobs-*.jsonl"


@dataclass(frozen=True)
class JobEvent:
    """One run of one job, as a worker saw it."""

    id: str | None  #: the payload's id (None: a Ruby producer's job, or an unreadable one)
    job_class: str | None  #: the payload's class name (None: not a readable payload)
    queue: str
    args: list[Any]
    enqueued: float | None  #: the payload's queue_time (epoch s), when it has one
    started: float  #: when the worker began ``perform`` (epoch s)
    finished: float  #: when ``perform`` returned or raised (epoch s)
    outcome: str  #: "done", "failed" or "retry"
    worker: str  #: the worker's id, ``host:pid:queues``

    def to_json(self) -> str:
        data = asdict(self)
        data["class"] = data.pop("job_class")
        return json.dumps(data, separators=(",", ":"), default=str)

    @classmethod
    def from_json(cls, line: str) -> JobEvent:
        data = json.loads(line)
        return cls(
            id=data.get("id"),
            job_class=data.get("class"),
            queue=str(data.get("queue", "")),
            args=data.get("args") if isinstance(data.get("args"), list) else [],
            enqueued=_number(data.get("enqueued")),
            started=float(data["started"]),
            finished=float(data["finished"]),
            outcome=str(data.get("outcome", "")),
            worker=str(data.get("worker", "")),
        )


def _number(value: Any) -> float | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok else None


class _Fetched(Protocol):
    @property
    def queue(self) -> str: ...
    @property
    def raw(self) -> str: ...


class _Outcome(Protocol):
    @property
    def failure(self) -> str: ...
    @property
    def retry(self) -> Any: ...


F = TypeVar("F", bound=_Fetched)
R = TypeVar("R", bound=_Outcome)


def outcome_name(outcome: _Outcome) -> str:
    if outcome.retry is not None:
        return "retry"
    return "failed" if outcome.failure else "done"


class JobEventLog:
    """Appends job events to this process's file in ``directory`` (created if need be)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._file: IO[str] | None = None
        self._pid = 0
        self.broken = False
        self._lock = threading.Lock()  # a process of worker threads writes one file

    @property
    def path(self) -> Path:
        return self.directory / f"jobs-{socket.gethostname()}-{os.getpid()}.jsonl"

    def write(self, event: JobEvent) -> None:
        """Append one line; a file that cannot be written is logged once, then left alone."""
        with self._lock:
            self._write(event)

    def _write(self, event: JobEvent) -> None:
        if self.broken:
            return
        try:
            if self._file is None or self._pid != os.getpid():
                self.directory.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
                self._pid = os.getpid()
            self._file.write(event.to_json() + "\n")
            self._file.flush()
        except OSError as exc:
            self.broken = True
            log.warning("job events: cannot write to %s (%s); no more events", self.directory, exc)

    def wrap(self, perform: Callable[[F], R], worker_id: Callable[[], str]) -> Callable[[F], R]:
        """``perform`` (a worker's ``_perform(fetched) -> outcome``), timed and recorded."""

        def recorded(fetched: F) -> R:
            started = time.time()
            outcome = perform(fetched)
            self.write(event_of(fetched, outcome, started, time.time(), worker_id()))
            return outcome

        return recorded

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def event_of(
    fetched: _Fetched, outcome: _Outcome, started: float, finished: float, worker: str
) -> JobEvent:
    """The event of one run: what the payload says, and what the worker saw."""
    try:
        payload: Payload | None = Payload.from_json(fetched.raw)
    except Exception:  # not a readable payload: it failed, and the row says so
        payload = None
    return JobEvent(
        id=payload.id if payload else None,
        job_class=payload.class_name if payload else None,
        queue=fetched.queue,
        args=list(payload.args) if payload else [],
        enqueued=_number(payload.queue_time) if payload else None,
        started=started,
        finished=finished,
        outcome=outcome_name(outcome),
        worker=worker,
    )


def iter_job_events(directory: str | os.PathLike[str]) -> Iterator[JobEvent]:
    """Every event in ``directory``'s files (a torn last line, from a killed worker, skipped)."""
    for path in sorted(Path(directory).glob(PATTERN)):
        with path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    yield JobEvent.from_json(line)
                except (ValueError, KeyError, TypeError):
                    continue


def read_job_events(directory: str | os.PathLike[str]) -> list[JobEvent]:
    """Every event in ``directory``, in the order the jobs started."""
    return sorted(iter_job_events(directory), key=lambda e: e.started)
