"""The pages: overview, a queue, workers, failed, delayed, a job by id."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import redis
from flask import Blueprint, abort, current_app, redirect, render_template, request, url_for

from ..connection import redact
from . import data
from .monitor import JOB_ID, lookup, monitor, overview_data, page_arg

bp = Blueprint("monitor", __name__)


@bp.app_context_processor
def common() -> dict[str, Any]:
    """The header's failed count, where we look, and the current time, on every page."""
    mon = monitor()
    nav: dict[str, Any] = {"namespace": mon.keys.namespace, "failed": 0, "redis": None}
    with contextlib.suppress(redis.RedisError):  # the error page must render without Redis
        nav["failed"] = int(mon.connection.llen(mon.keys.failed))
    nav["redis"] = redact(mon.url) if mon.url else "fakeredis (this process)"
    refresh = int(current_app.config["LABQUEUE_REFRESH_MS"])
    return {"now": time.time(), "refresh_ms": refresh, "nav": nav}


@bp.get("/")
def overview() -> Any:
    return render_template("overview.html", o=overview_data(monitor()), active="overview")


@bp.get("/queues/<path:name>")
def queue(name: str) -> Any:
    mon = monitor()
    page = data.queue_page(mon.connection, mon.keys, name, page_arg(), mon.per_page)
    if page is None:
        abort(404, description=f"There is no queue called {name[:200]!r} (or no such page of it).")
    return render_template("queue.html", name=name, page=page, active="overview")


@bp.get("/workers")
def workers() -> Any:
    mon, problems = monitor(), dict[str, str]()
    rows = data.workers(mon.connection, mon.keys, time.time(), mon.stale_after, problems)
    return render_template(
        "workers.html",
        workers=rows,
        stale_after=mon.stale_after,
        problems=list(problems.values()),
        active="workers",
    )


@bp.get("/failed")
def failed() -> Any:
    mon = monitor()
    page = data.failed_page(mon.connection, mon.keys, page_arg(), mon.per_page)
    if page is None:
        abort(404, description="There is no such page of failures.")
    return render_template("failed.html", page=page, active="failed")


@bp.get("/delayed")
def delayed() -> Any:
    mon, problems = monitor(), dict[str, str]()
    rows, total = data.delayed(mon.connection, mon.keys, 500, problems)
    return render_template(
        "delayed.html", rows=rows, total=total, problems=list(problems.values()), active="delayed"
    )


@bp.get("/jobs")
def job_search() -> Any:
    """The header's search box: ``/jobs?id=ID`` goes to the job's page."""
    job_id = request.args.get("id", "").strip()
    if not job_id:
        return redirect(url_for("monitor.overview"))
    if not JOB_ID.fullmatch(job_id):
        abort(404, description=f"{job_id[:80]!r} is not a job id.")
    return redirect(url_for("monitor.job", job_id=job_id))


@bp.get("/jobs/<job_id>")
def job(job_id: str) -> Any:
    return render_template("job.html", found=lookup(job_id), active="")
