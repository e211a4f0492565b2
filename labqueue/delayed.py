"""Delayed jobs, in resque-scheduler's layout.

    resque:delayed_queue_schedule   zset, member and score = a whole second (epoch)
    resque:delayed:<second>         list of payloads due in that second, each with "queue"

    resque:timestamps:<item>        set of the delayed:<second> lists holding that item

``Queue.enqueue_at(when, Job, ...)`` and ``Queue.enqueue_in(seconds, Job, ...)`` put a job
there (its status says waiting); every worker moves due jobs to their queues from a small
timer thread (:class:`DelayedMover`), and ``labqueue scheduler`` does the same on its own.
Moving is one Lua script, so a due job reaches its queue exactly once however many workers
and schedulers run. The item is exactly what resque-scheduler writes, indexed as it indexes
it, so ``Resque.remove_delayed`` cancels labqueue's delayed jobs and ``labqueue delayed
remove`` cancels Ruby's (see :mod:`labqueue.delayed_index`). resque-scheduler's keys hold
whole seconds; labqueue also keeps each job's exact time (and id) in a note beside the item
and never moves a job before it, so a job due at 12.7 s runs at 12.7 s, not at 12 s. Jobs
that resque-scheduler wrote (no note) are due at their second, as there. Retries keep their
id and exact time in the payload (``scheduled_for``), as before.

Bad content never stops the others: a ``delayed:<second>`` that is not a list, or a job whose
queue key holds another type, is left alone by the move and then moved aside (renamed, content
intact, one warning: see :mod:`labqueue.badkeys`); a schedule entry is due by its score, and a
member that is not a number is due at its score; an entry scored ``inf`` is never due and
never makes the mover hurry. The mover reports one problem once, not at every look.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, cast

import redis

from . import timefmt
from .badkeys import ATTEMPTS, heal, set_aside
from .delayed_index import NOTES_TTL, note, parse_notes, ruby_item, with_note
from .errors import BadKey, ConfigurationError, PayloadError, UnreadableData
from .failures import Failure
from .keys import DEFAULT_NAMESPACE, Keys
from .lua import bad_keys
from .payload import (
    ATTEMPTS_FIELD,
    QUEUE_FIELD,
    SCHEDULED_FOR_FIELD,
    Payload,
    check_queue_name,
)
from .reading import Batch, epoch, excerpt, loads, read_one, schedule_problem
from .scripts import MOVE_DUE, SCHEDULE
from .status import JobStatus, status_json

log = logging.getLogger("labqueue.scheduler")

#: How many jobs one MOVE_DUE call moves at most (the script stays short; the mover loops).
BUDGET = 1000


def due_time(when: float | datetime) -> float:
    """Epoch seconds for ``when`` (epoch seconds, or a datetime: naive means local time)."""
    if isinstance(when, datetime):
        return when.timestamp()
    if isinstance(when, bool) or not isinstance(when, int | float) or not math.isfinite(when):
        raise ConfigurationError(
            f"a delayed job needs a time (epoch seconds or a datetime), not {when!r}"
        )
    return float(when)


def parse_when(text: str) -> float:
    """``--at``: epoch seconds (``1767225600``) or ISO 8601 (``2026-01-01T09:00:00+01:00``)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        return due_time(seconds)  # ConfigurationError (a ValueError too) for nan or inf
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise ConfigurationError(
            f"--at {text!r}: give epoch seconds or an ISO 8601 time like 2026-01-01T09:00:00"
        ) from None


def delay_seconds(seconds: float) -> float:
    """Validate ``enqueue_in``'s delay: finite seconds, zero or more."""
    ok = isinstance(seconds, int | float) and not isinstance(seconds, bool)
    if not ok or not math.isfinite(seconds) or seconds < 0:
        raise ConfigurationError(f"enqueue_in needs a delay in seconds >= 0, not {seconds!r}")
    return float(seconds)


def push_delayed(
    connection: redis.Redis,
    keys: Keys,
    queue: str,
    payload: Payload,
    at: float,
    status: bool = True,
) -> str:
    """Put ``payload`` in the schedule, due at ``at``, for ``queue``: resque-scheduler's item,
    indexed, with labqueue's note beside it (see :mod:`labqueue.delayed_index`); returns the
    payload it will move as."""
    check_queue_name(queue)
    extra = {**payload.extra, QUEUE_FIELD: queue, SCHEDULED_FOR_FIELD: at}
    full = dataclasses.replace(payload, extra=extra)
    full.to_json()  # PayloadError for what no JSON carries, before anything is written
    item = ruby_item(payload.class_name, payload.args, queue)
    line = note(full, at)
    second = math.floor(at)
    status_key = keys.status(payload.id) if payload.id else ""
    state = status_json(JobStatus.WAITING) if status and payload.id else ""
    keys_ = (
        keys.delayed(second),
        keys.delayed_schedule,
        status_key or keys.delayed(second),
        keys.timestamps(item),
        keys.scheduled(second),
    )
    args = (second, item, state, keys.delayed_member(second), line, second + NOTES_TTL)
    SCHEDULE.call(connection, keys_, args)
    return with_note(item, line.partition(" ")[2])


#: Why a delayed job without a queue name fails (its failure record's ``error``).
NO_QUEUE = "a delayed job needs a queue name in its queue field"


def move_due(
    connection: redis.Redis, keys: Keys, now: float | None = None, who: str = "scheduler"
) -> tuple[int, float | None]:
    """Move due jobs to their queues (one script call); returns (moved, soonest still due).
    Keys of the wrong type met on the way are moved aside (``who`` says so in the log)."""
    now = time.time() if now is None else now
    unmovable = Failure(timefmt.failed_at(now), None, "PayloadError", NO_QUEUE, [], "scheduler", "")
    call = partial(
        MOVE_DUE.call,
        connection,
        (keys.delayed_schedule, keys.queues, keys.failed),
        (
            repr(now),
            keys.delayed_prefix,
            keys.queue_prefix,
            keys.wakeup_channel,
            BUDGET,
            SCHEDULED_FOR_FIELD,
            *unmovable.halves(),
            keys.timestamps_prefix,
            keys.scheduled_prefix,
            keys.delayed_member(""),
        ),
    )
    moved = 0
    for _ in range(ATTEMPTS):  # again at once while it left bad keys behind (set aside now)
        try:
            reply = call()
        except BadKey as bad:  # the schedule, the queues set or the failed list: aside, again
            reply = heal(bad, call, connection, keys, who)
        moved += int(reply[0])
        soonest, left_alone = reply[1], bad_keys(reply[2:])
        for key in left_alone:
            set_aside(connection, keys, key, who)
        if not left_alone:
            break
    due = float(soonest) if soonest else None
    return moved, due if due is not None and math.isfinite(due) else None


class DelayedMover:
    """Moves due jobs from a daemon thread: at their exact time, else every ``max_pause``."""

    def __init__(
        self,
        connection: redis.Redis,
        keys: Keys,
        stop: threading.Event,
        on_error: Callable[[Exception], None],
        max_pause: float = 0.5,
    ) -> None:
        self.connection = connection
        self.keys = keys
        self.stop = stop
        self.on_error = on_error
        self.max_pause = max_pause
        self.moved = 0
        self.who = "scheduler"  #: for log lines (a worker sets its id)
        self.failing: str | None = None  #: the problem the last look met (None: it worked)

    def start(self) -> threading.Thread:
        """One move now (so a burst worker sees what is due), then a thread for the rest."""
        pause = self.tick()
        thread = threading.Thread(
            target=self._run, args=(pause,), name="labqueue-scheduler", daemon=True
        )
        thread.start()
        return thread

    def _run(self, pause: float) -> None:
        while not self.stop.wait(pause):
            pause = self.tick()

    def tick(self) -> float:
        """Move what is due; returns how long to sleep before the next look."""
        try:
            while True:
                moved, soonest = move_due(self.connection, self.keys, who=self.who)
                self.moved += moved
                if moved < BUDGET:
                    break
        except Exception as exc:  # Redis away, or worse: report each problem once, try later
            problem = f"{type(exc).__name__}: {exc}"
            if problem != self.failing:
                self.failing = problem
                self.on_error(exc)
            return self.max_pause
        self.failing = None
        if soonest is None:
            return self.max_pause
        return min(self.max_pause, max(0.005, soonest - time.time()))


@dataclass(frozen=True)
class DelayedJob:
    """One job waiting in the schedule."""

    due: float  #: exact due time if the payload has one, else its second
    queue: str | None
    raw: str  #: the payload as it moves (an item with its note: see delayed_index)
    payload: Payload | None  #: None when the payload cannot be read
    position: int = 0  #: its place in its second's list

    @property
    def attempts(self) -> int:
        """Failed runs so far (0 for a job not yet run; a retry has 1 or more)."""
        value = self.payload.extra.get(ATTEMPTS_FIELD) if self.payload else None
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    def to_dict(self) -> dict[str, Any]:
        p = self.payload
        return {
            "due": self.due if epoch(self.due) is not None else None,
            "queue": self.queue,
            "class": p.class_name if p else None,
            "id": p.id if p else None,
            "args": p.args if p else None,
            "attempts": self.attempts,
            "raw": None if p else self.raw,
        }

    def describe(self, now: float | None = None) -> str:
        """One line: when (and in how long), queue, class, id, and the retry it is."""
        if epoch(self.due) is None:  # a score of inf, a time no calendar has
            when, left = f"at no time ({self.due})", ""
        else:
            seconds = max(self.due - (time.time() if now is None else now), 0)
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.due))
            left = f" (in {seconds:.0f}s)"
        what = (
            f"{self.payload.class_name} {self.payload.id or '-'}"
            if self.payload
            else f"unreadable item: {excerpt(self.raw, 80)}"
        )
        retry = f" (retry {self.attempts})" if self.attempts else ""
        return f"{when}{left} {self.queue or '?'}: {what}{retry}"


def _delayed_job(second: float, raw: str, position: int, tail: str = "") -> DelayedJob:
    """One copy of an item (``tail``: its note's fields, see :mod:`labqueue.delayed_index`),
    its ``raw`` the payload it moves as."""
    raw = with_note(raw, tail) if tail else raw
    try:
        payload: Payload | None = Payload.from_dict(loads(raw), raw)
    except (UnreadableData, PayloadError):
        payload = None
    extra = payload.extra if payload else {}
    at, queue = epoch(extra.get(SCHEDULED_FOR_FIELD)), extra.get(QUEUE_FIELD)
    due = at if at is not None else second
    return DelayedJob(due, queue if isinstance(queue, str) else None, raw, payload, position)


def _copies(second: float, raws: list[str], notes: dict[str, Any]) -> list[DelayedJob]:
    """The jobs of one second's list, each copy of an item paired with one of its notes."""
    left = {raw: [tail for _at, tail in parse_notes(str(text))] for raw, text in notes.items()}
    jobs = []
    for i, raw in enumerate(raws):
        tails = left.get(raw) or [""]
        jobs.append(_delayed_job(second, raw, i, tails.pop(0)))
    return jobs


def read_delayed(
    connection: redis.Redis,
    namespace: str = DEFAULT_NAMESPACE,
    limit: int = 1000,
    problems: dict[str, str] | None = None,
) -> tuple[list[DelayedJob], int]:
    """Up to ``limit`` delayed jobs, soonest first by their exact due time, and how many
    wait in all: the one reader of the schedule (``labqueue delayed``, the monitor, the
    notebooks); three round trips however many seconds hold jobs. A key that cannot be
    read counts as empty, and is said (key -> why) in ``problems`` when given."""
    keys, problems = Keys(namespace), {} if problems is None else problems
    stamps = cast(
        "list[tuple[str, float]]",
        read_one(connection, problems, "zrange", keys.delayed_schedule, 0, -1, withscores=True),
    )
    odd = schedule_problem(keys.delayed_schedule, stamps)
    if odd:
        problems[keys.delayed_schedule] = odd
    lists = [keys.delayed_prefix + str(member) for member, _second in stamps]
    sizes = Batch(connection, problems)
    for key in lists:
        sizes.call("llen", key)
    counts = [int(c) for c in sizes.run()]
    wanted: list[tuple[float, str, int]] = []  # (second, its list, how many to read)
    left = limit
    for (_member, second), key, count in zip(stamps, lists, counts, strict=True):
        if min(count, left) > 0:
            wanted.append((float(second), key, min(count, left)))
            left -= min(count, left)
    items = Batch(connection, problems)
    for second, key, take in wanted:
        items.call("lrange", key, 0, take - 1)
        if math.isfinite(second):  # labqueue's notes of the copies (a score of inf has none)
            items.call("hgetall", keys.scheduled(int(second)))
    replies = iter(items.run())
    jobs = []
    for second, _key, _take in wanted:
        found = next(replies)
        notes = next(replies) if math.isfinite(second) else {}
        jobs += _copies(second, found, notes)
    return sorted(jobs, key=lambda d: d.due), sum(counts)


def delayed_jobs(
    connection: redis.Redis, namespace: str = DEFAULT_NAMESPACE, limit: int = 1000
) -> list[DelayedJob]:
    """Up to ``limit`` delayed jobs, soonest first (see :func:`read_delayed`)."""
    return read_delayed(connection, namespace, limit)[0]


def run_scheduler(
    connection: redis.Redis,
    namespace: str = DEFAULT_NAMESPACE,
    stop: threading.Event | None = None,
) -> int:
    """``labqueue scheduler``: move due jobs until ``stop`` is set; returns how many moved."""
    stop = stop or threading.Event()

    def on_error(exc: Exception) -> None:  # called once per problem (see DelayedMover.tick)
        if isinstance(exc, redis.ConnectionError | redis.TimeoutError):
            log.warning("scheduler: Redis unreachable (%s); trying again", exc)
        else:
            log.warning("scheduler: %s: %s; trying again", type(exc).__name__, exc)

    mover = DelayedMover(connection, Keys(namespace), stop, on_error)
    pause = mover.tick()
    while not stop.wait(pause):
        failing = mover.failing
        pause = mover.tick()
        if failing and not mover.failing:
            log.info("scheduler: moving again")
    return mover.moved
