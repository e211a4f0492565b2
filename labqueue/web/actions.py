"""The actions that change data: requeue or remove one failure, requeue all, clear all.

POST only, with the session's CSRF token. Each asks first: without ``confirm=yes`` the
answer is a confirmation page (the page's script asks in a dialog and sends ``confirm=yes``
itself). A failure is named by its record digest, so the one the user saw is the one
acted on, even when other failures come and go in between, and Ruby's (no job id) too, and
an item that is no record at all (it can be removed, not requeued).
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from ..errors import JobNotFound, NotRequeuable, UnreadableKey
from ..failures import FailedStore
from . import data, security
from .monitor import monitor

bp = Blueprint("actions", __name__)

DIGEST = re.compile(r"[0-9a-f]{16}")

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
    """The item of the failed list with this digest (a record or not), or 404."""
    if not DIGEST.fullmatch(digest):
        abort(404, description=f"{digest[:40]!r} does not name a failure.")
    try:
        items = _store().items()
    except UnreadableKey as exc:
        abort(404, description=str(exc))
    for item in items:
        if item.digest == digest:
            return data.FailureRow.of(item)
    abort(404, description=GONE)


def _confirmed(action: str, row: data.FailureRow | None = None) -> Any:
    """None when the user confirmed; else the confirmation page to answer with."""
    if request.form.get("confirm") == "yes":
        return None
    try:
        count: Any = len(_store())
    except UnreadableKey:
        count = "?"
    question = QUESTIONS[action].format(n=count)
    target = request.path
    return render_template("confirm.html", question=question, target=target, row=row, active="")


def _done(message: str, category: str = "ok") -> Any:
    flash(message, category)
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
    except NotRequeuable as exc:  # it stays where it is; the user may remove it
        return _done(f"{exc}.", "error")
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
    try:
        requeued, left = _store().requeue_all()
    except UnreadableKey as exc:
        return _done(f"{exc}.", "error")
    if left:
        return _done(
            f"Requeued {_plural(requeued, 'job')}; {_plural(left, 'failure record')} cannot be "
            "requeued (no job in it, or no queue to go to): they stay, to remove or fix.",
            "error",
        )
    return _done(f"Requeued {_plural(requeued, 'job')}.")


@bp.post("/failed/clear")
def clear() -> Any:
    security.check_csrf()
    page = _confirmed("clear")
    if page is not None:
        return page
    try:
        removed = _store().remove(None)
    except UnreadableKey as exc:
        return _done(f"{exc}.", "error")
    return _done(f"Removed {_plural(removed, 'failure record')}.")
