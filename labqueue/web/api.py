"""The JSON API: the same data as the pages, for the overview's poller and the notebooks.

    GET /api/overview[?since=T]   totals, rates, queues, workers summary, chart history
    GET /api/stats                labqueue.stats.snapshot() as JSON
    GET /api/queues/NAME[?page=N] one queue's jobs, oldest first
    GET /api/workers              every worker, its job, heartbeat age, stale flag
    GET /api/failed[?page=N]      failures, newest first (``digest`` names one for actions)
    GET /api/delayed              delayed jobs, soonest first
    GET /api/jobs/ID              a job's status and where it is

Errors are ``{"error": ..., "detail": ...}`` with the HTTP status (404 for unknown names).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from flask import Blueprint, abort, jsonify, request, url_for

from . import data
from .monitor import lookup, monitor, overview_data, page_arg

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/overview")
def overview() -> Any:
    since = request.args.get("since", type=float)
    return jsonify(overview_data(monitor(), since))


@bp.get("/stats")
def stats() -> Any:
    return jsonify(monitor().snapshot().to_dict())


def job_dict(job: data.JobRow) -> dict[str, Any]:
    out = {k: v for k, v in asdict(job).items() if k != "raw"}
    out["class"] = out.pop("class_name")
    out["url"] = url_for("monitor.job", job_id=job.id) if job.id else None
    return out


@bp.get("/queues/<name>")
def queue(name: str) -> Any:
    mon = monitor()
    page = data.queue_page(mon.connection, mon.keys, name, page_arg(), mon.per_page)
    if page is None:
        abort(404, description=f"no queue {name!r} (or no such page)")
    return jsonify(name=name, **page.to_dict(job_dict))


def worker_dict(w: data.WorkerRow) -> dict[str, Any]:
    out = asdict(w)
    out["job"] = job_dict(w.job) if w.job else None
    return out


@bp.get("/workers")
def workers() -> Any:
    mon = monitor()
    rows = data.workers(mon.connection, mon.keys, time.time(), mon.stale_after)
    return jsonify(stale_after=mon.stale_after, workers=[worker_dict(w) for w in rows])


@bp.get("/failed")
def failed() -> Any:
    mon = monitor()
    page = data.failed_page(mon.connection, mon.keys, page_arg(), mon.per_page)
    if page is None:
        abort(404, description="no such page of failures")
    return jsonify(page.to_dict(data.FailureRow.to_dict))


@bp.get("/delayed")
def delayed() -> Any:
    mon = monitor()
    rows, total = data.delayed(mon.connection, mon.keys, limit=500)
    items = [{"due": d.due, **job_dict(d.job)} for d in rows]
    return jsonify(total=total, items=items)


@bp.get("/jobs/<job_id>")
def job(job_id: str) -> Any:
    found = lookup(job_id)
    status = found.status
    return jsonify(
        id=found.id,
        status=status.status.label if status else None,
        updated=status.updated if status else None,
        started=status.started if status else None,
        places=[
            {
                "kind": p.kind,
                "where": p.where,
                "due": p.due,
                "job": job_dict(p.job),
                "failure": p.failure.to_dict() if p.failure else None,
            }
            for p in found.places
        ],
        scanned_all=found.scanned_all,
    )
