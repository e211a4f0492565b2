"""The JSON API: the same data as the pages, for the overview's poller and the notebooks.

    GET /api/overview[?since=T]   totals, rates, queues, workers summary, chart history
    GET /api/stats                labqueue.stats.snapshot() as JSON, with ``oldest_age``
                                  (queue -> seconds the head job has waited; null: unknown)
    GET /api/queues/NAME[?page=N] one queue's jobs, oldest first
    GET /api/workers              every worker, its job, heartbeat age, stale flag
    GET /api/failed[?page=N]      failures, newest first (``digest`` names one for actions)
    GET /api/delayed              delayed jobs, soonest first
    GET /api/jobs/ID              a job's status and where it is

Each answer carries ``unreadable`` (key -> why) for the keys it had to skip: a key of
another type, a counter that is no number. Errors are ``{"error": ..., "detail": ...}``
with the HTTP status (404 for unknown names).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from flask import Blueprint, abort, jsonify, request

from ..reading import epoch
from . import data
from .monitor import job_link, lookup, monitor, overview_data, page_arg

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/overview")
def overview() -> Any:
    since = request.args.get("since", type=float)
    return jsonify(overview_data(monitor(), since))


@bp.get("/stats")
def stats() -> Any:
    snap, ages = monitor().look()
    return jsonify({**snap.to_dict(), "oldest_age": ages})


def job_dict(job: data.JobRow) -> dict[str, Any]:
    out = {k: v for k, v in asdict(job).items() if k != "raw"}
    out["class"] = out.pop("class_name")
    out["url"] = job_link(job.id)
    return out


@bp.get("/queues/<path:name>")
def queue(name: str) -> Any:
    mon = monitor()
    page = data.queue_page(mon.connection, mon.keys, name, page_arg(), mon.per_page)
    if page is None:
        abort(404, description=f"no queue {name[:200]!r} (or no such page)")
    return jsonify(name=name, **page.to_dict(job_dict))


def worker_dict(w: data.WorkerRow) -> dict[str, Any]:
    out = asdict(w)
    out["job"] = job_dict(w.job) if w.job else None
    return out


@bp.get("/workers")
def workers() -> Any:
    mon, problems = monitor(), dict[str, str]()
    rows = data.workers(mon.connection, mon.keys, time.time(), mon.stale_after, problems)
    workers = [worker_dict(w) for w in rows]
    return jsonify(stale_after=mon.stale_after, workers=workers, unreadable=problems)


@bp.get("/failed")
def failed() -> Any:
    mon = monitor()
    page = data.failed_page(mon.connection, mon.keys, page_arg(), mon.per_page)
    if page is None:
        abort(404, description="no such page of failures")
    return jsonify(page.to_dict(data.FailureRow.to_dict))


@bp.get("/delayed")
def delayed() -> Any:
    mon, problems = monitor(), dict[str, str]()
    rows, total = data.delayed(mon.connection, mon.keys, 500, problems)
    items = [{"due": epoch(d.due), **job_dict(d.job)} for d in rows]
    return jsonify(total=total, items=items, unreadable=problems)


@bp.get("/jobs/<job_id>")
def job(job_id: str) -> Any:
    found = lookup(job_id)
    status = found.status
    label = status.status.label if status else "unreadable" if found.status_problem else None
    return jsonify(
        id=found.id,
        status=label,
        status_problem=found.status_problem,
        updated=epoch(status.updated) if status else None,
        started=epoch(status.started) if status else None,
        places=[
            {
                "kind": p.kind,
                "where": p.where,
                "due": epoch(p.due),
                "job": job_dict(p.job),
                "failure": p.failure.to_dict() if p.failure else None,
            }
            for p in found.places
        ],
        scanned_all=found.scanned_all,
        unreadable=found.problems,
    )
