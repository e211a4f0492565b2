"""What every page and API call shares: the app's :class:`Monitor` and the request helpers.

A leaf, as ``db.py`` is in Flask's tutorial: the blueprints (:mod:`.views`, :mod:`.api`,
:mod:`.actions`) import from here, the factory (:mod:`.app`) imports the blueprints, and
no import goes the other way.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, cast

from flask import abort, current_app, request, url_for

from ..keys import Keys
from ..stats import Ages, Snapshot, snapshot, waiting_ages
from . import data
from .history import History

#: What a job id may look like: labqueue's 32 hex digits, and other producers' ids.
JOB_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")
#: A page number as a URL gives it.
_PAGE = re.compile(r"[0-9]{1,9}")


@dataclass
class Monitor:
    """What every request needs: the connection, the key names, the chart history."""

    connection: Any
    keys: Keys
    history: History
    per_page: int
    stale_after: float
    url: str | None = None  #: where Redis is, for messages (redact it before showing it)

    def snapshot(self) -> Snapshot:
        """The current numbers, also kept in the history."""
        return self.look()[0]

    def look(self) -> tuple[Snapshot, dict[str, float | None]]:
        """The current numbers and the age of the oldest job waiting for each queue, in it or
        parked by a limiter (seconds; None: unknown), both kept in the history. The ages take
        one more round trip for all queues."""
        snap, ages = self.look_all()
        return snap, ages.waiting

    def look_all(self) -> tuple[Snapshot, Ages]:
        """As :meth:`look`, with each limiter's parked jobs' age too."""
        snap = snapshot(self.connection, self.keys.namespace)
        ages = waiting_ages(self.connection, snap.queues, self.keys.namespace)
        self.history.record(snap, ages.waiting)
        return snap, ages


def monitor() -> Monitor:
    """The Monitor of the app serving this request."""
    return cast(Monitor, current_app.extensions["labqueue"])


def page_arg() -> int:
    """``?page=N`` (1 when absent); 404 when not a positive number."""
    raw = request.args.get("page", "1")
    if not _PAGE.fullmatch(raw) or int(raw) < 1:
        abort(404, description=f"no page {raw[:40]!r}: pages count from 1")
    return int(raw)


def link(endpoint: str, **values: Any) -> str | None:
    """``url_for``, or None when a value read from Redis cannot stand in a URL (bytes that
    were not UTF-8): the page shows the name without a link."""
    try:
        return url_for(endpoint, **values)
    except UnicodeError:
        return None


def job_link(job_id: Any) -> str | None:
    """The job page's URL, for an id that can have one."""
    if not isinstance(job_id, str) or not JOB_ID.fullmatch(job_id):
        return None
    return url_for("monitor.job", job_id=job_id)


def lookup(job_id: str) -> data.JobLookup:
    """The job or a 404."""
    mon = monitor()
    known = JOB_ID.fullmatch(job_id)
    found = data.find_job(mon.connection, mon.keys, job_id) if known else None
    if found is None:
        abort(404, description=f"no job {job_id[:140]!r}: no status and not in any queue")
    return found


def overview_data(mon: Monitor, since: float | None = None) -> dict[str, Any]:
    """Everything the overview shows; ``since`` limits the history to newer samples."""
    snap, found = mon.look_all()
    ages = found.waiting
    stale = sum(  # no heartbeat is not stale: php-resque workers never beat
        1 for w in snap.workers if w.heartbeat_age is not None and w.heartbeat_age > mon.stale_after
    )
    return {
        "time": snap.time,
        "queues": [
            {"name": n, "depth": d, "oldest_age": ages.get(n), "url": link("monitor.queue", name=n)}
            for n, d in snap.queues.items()
        ],
        "queued": snap.queued,
        "processed": snap.processed,
        "failed": snap.failed,
        "failed_store": snap.failed_store,
        "delayed": snap.delayed,
        "workers": {
            "total": len(snap.workers),
            "busy": snap.busy_workers,
            "idle": len(snap.workers) - snap.busy_workers,
            "stale": stale,
        },
        "rates": mon.history.rates(),
        "history": mon.history.series(since),
        "unreadable": snap.unreadable,
        "limits": [  # concurrency limits: parked jobs are in no queue, so they show here
            {
                "name": lim.name,
                "limit": lim.limit,
                "running": lim.running,
                "holders": lim.holders,
                "parked": lim.parked,
                "oldest_parked_age": _parked_age(found, lim.name),
                "next_parked": [asdict(j) for j in lim.next_parked],
            }
            for lim in snap.limiters
        ],
    }


def _parked_age(ages: Ages, limiter: str) -> float | None:
    """Seconds the limiter's longest-parked job has waited (0.0: none parked; None: unknown)."""
    found = ages.parked.get(limiter)
    return found.age if found is not None else 0.0
