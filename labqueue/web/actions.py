"""The actions that change data: requeue or remove one failure, requeue all, clear all.

POST only, with the session's CSRF token. Each asks first: without ``confirm=yes`` the
answer is a confirmation page (the page's script asks in a dialog and sends ``confirm=yes``
itself). A failure is named by its record digest, so the one the user saw is the one
acted on, even when other failures come and go in between, and Ruby's (no job id) too.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from ..errors import JobNotFound
from ..failures import FailedStore
from . import data, security
from .monitor import monitor

bp = Blueprint("actions", __name__)

DIGEST = re.compile(r"^[0-9a-f]{16}$")

QUESTIONS = {
    "requeue": "Requeue this failed job? It goes back to the end of its queue.",
    "remove": "Remove this failure record? The job will not run again.",
    "requeue-all": "Requeue every failed job ({n})? Each goes back to its queue.",
    "clear": "Clear every failure record ({n})? None of these jobs will run again.",
}


def _store() -> FailedStore:
    mon = monitor()
    return FailedStore(mon.connection, mon.keys.namespace)


GONE = "That failure is gone: someone requeued or removed it."


def _find(digest: str) -> data.FailureRow:
    """The failure record with this digest, or 404."""
    if not DIGEST.match(digest):
        abort(404, description=f"{digest[:40]!r} does not name a failure.")
    mon = monitor()
    for i, raw in enumerate(mon.connection.lrange(mon.keys.failed, 0, -1)):
        if data.record_digest(raw) == digest:
            return data.failure_row(raw, i)
    abort(404, description=GONE)


def _confirmed(action: str, row: data.FailureRow | None = None) -> Any:
    """None when the user confirmed; else the confirmation page to answer with."""
    if request.form.get("confirm") == "yes":
        return None
    question = QUESTIONS[action].format(n=len(_store()))
    target = request.path
    return render_template("confirm.html", question=question, target=target, row=row, active="")


def _done(message: str) -> Any:
    flash(message, "ok")
    return redirect(url_for("monitor.failed"), code=303)


def _one(action: str, digest: str) -> Any:
    security.check_csrf()
    page = _confirmed(action, _find(digest))
    if page is not None:
        return page
    store = _store()
    try:  # the store matches the digest again, atomically: the record seen, or none
        if action == "requeue":
            store.requeue(digest)
        else:
            store.remove(digest)
    except JobNotFound:
        abort(404, description=GONE)
    return _done("Requeued 1 job." if action == "requeue" else "Removed 1 failure record.")


@bp.post("/failed/<digest>/requeue")
def requeue(digest: str) -> Any:
    return _one("requeue", digest)


@bp.post("/failed/<digest>/remove")
def remove(digest: str) -> Any:
    return _one("remove", digest)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@bp.post("/failed/requeue-all")
def requeue_all() -> Any:
    security.check_csrf()
    page = _confirmed("requeue-all")
    if page is not None:
        return page
    return _done(f"Requeued {_plural(_store().requeue(None), 'job')}.")


@bp.post("/failed/clear")
def clear() -> Any:
    security.check_csrf()
    page = _confirmed("clear")
    if page is not None:
        return page
    return _done(f"Removed {_plural(_store().remove(None), 'failure record')}.")
