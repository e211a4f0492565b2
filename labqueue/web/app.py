"""The monitor's app factory, and a small threaded server for ``labqueue web``.

    from labqueue.web import create_app
    app = create_app(connection=labqueue.connect(), config={"LABQUEUE_PASSWORD": "..."})

Configuration keys (``config`` or ``app.config``):

    REDIS_URL                 used when no connection is given (else labqueue.connect())
    LABQUEUE_NAMESPACE        key prefix, ``resque`` by default
    LABQUEUE_PASSWORD         require HTTP Basic auth with this password (any user name)
    LABQUEUE_PER_PAGE         rows per page (25; 1 to 500)
    LABQUEUE_STALE_AFTER      seconds without a heartbeat before a worker is marked stale
                              (60; 0.1 to 30 days)
    LABQUEUE_REFRESH_MS       how often the overview polls the JSON API (2000; 100 to 1 h)
    LABQUEUE_HISTORY_SECONDS  how far back the depth charts go (600; 1 to a day)
    SECRET_KEY                signs the session (CSRF token); $LABQUEUE_SECRET_KEY, else a
                              random key per process (set one when several processes serve)
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
from collections.abc import Callable, Mapping
from typing import Any

import redis
from flask import Flask, jsonify, render_template, request
from markupsafe import Markup
from werkzeug.exceptions import HTTPException
from werkzeug.serving import make_server

from ..connection import connection_url, redact_text
from ..keys import DEFAULT_NAMESPACE, Keys
from ..reading import printable, tolerant
from ..worker.liveness import DEAD_AFTER
from . import actions, api, metrics, security, views
from .fmt import FILTERS
from .history import History
from .monitor import Monitor, job_link, link, monitor
from .settings import check_settings

DEFAULTS: dict[str, Any] = {
    "REDIS_URL": None,
    "LABQUEUE_NAMESPACE": DEFAULT_NAMESPACE,
    "LABQUEUE_PASSWORD": None,
    "LABQUEUE_PER_PAGE": 25,
    "LABQUEUE_STALE_AFTER": DEAD_AFTER,
    "LABQUEUE_REFRESH_MS": 2000,
    "LABQUEUE_HISTORY_SECONDS": 600,
    "SESSION_COOKIE_NAME": "labqueue_session",
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Strict",
}


def create_app(connection: Any = None, config: Mapping[str, Any] | None = None) -> Flask:
    """A monitor for ``connection`` (default: ``REDIS_URL`` / :func:`labqueue.connect`);
    ConfigurationError, in one line, for a setting it cannot honour."""
    app = Flask(__name__)
    app.config.update(DEFAULTS)
    app.config["SECRET_KEY"] = os.environ.get("LABQUEUE_SECRET_KEY") or secrets.token_bytes(32)
    app.config.update(config or {})
    app.config.update(check_settings(app.config))
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if connection is None:
        from ..connection import connect

        connection = connect(app.config["REDIS_URL"])
    app.extensions["labqueue"] = Monitor(
        tolerant(connection),
        Keys(app.config["LABQUEUE_NAMESPACE"]),
        History(window=app.config["LABQUEUE_HISTORY_SECONDS"]),
        app.config["LABQUEUE_PER_PAGE"],
        app.config["LABQUEUE_STALE_AFTER"],
        connection_url(connection),
    )
    # every {{ value }} of every page: control characters and bytes that were not UTF-8
    # are shown as escapes (before HTML escaping, which Jinja does next)
    app.jinja_options = {**app.jinja_options, "finalize": _shown}
    app.jinja_env.filters.update(FILTERS)
    app.jinja_env.globals.update(link=link, job_link=job_link)
    security.install(app)
    _register(app)
    metrics.install(app, app.extensions["labqueue"])
    return app


def _shown(value: Any) -> Any:
    if isinstance(value, str) and not isinstance(value, Markup):
        return printable(value, lines=True)
    return value


def _register(app: Flask) -> None:
    app.register_blueprint(views.bp)
    app.register_blueprint(actions.bp)
    app.register_blueprint(api.bp)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        return _error(exc.code or 500, exc.name, exc.description or "")

    @app.errorhandler(redis.RedisError)
    def redis_error(exc: redis.RedisError) -> Any:
        detail = redact_text(f"{type(exc).__name__}: {exc}", monitor().url)
        return _error(503, "Redis unavailable", detail)


def _error(code: int, title: str, detail: str) -> Any:
    if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
        return jsonify(error=title, detail=detail), code
    return render_template("error.html", code=code, title=title, detail=detail), code


def serve(
    app: Flask,
    host: str = "127.0.0.1",
    port: int = 5678,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``app`` with threads until Ctrl-C / SIGTERM-as-KeyboardInterrupt; tells
    ``ready`` the URL once listening (default: print it). Requests are not logged: the
    overview polls every two seconds."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(host, port, app, threaded=True)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{server.server_port}/"
    (ready or (lambda u: print(f"labqueue monitor on {u} (Ctrl-C to stop)", file=sys.stderr)))(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
