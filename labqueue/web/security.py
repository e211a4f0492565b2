"""What keeps the monitor safe to leave open: CSRF tokens, a password, strict headers.

- Every action that changes data is a POST carrying the session's CSRF token (a hidden
  field, or the ``X-CSRF-Token`` header); anything else gets 400 and nothing happens.
- With a password configured, every request needs HTTP Basic auth (any user name).
- The server binds to loopback unless told otherwise; a remote bind needs a password
  (:func:`check_bind`, used by ``labqueue web``).
- No inline script runs (Content-Security-Policy), and no page can be framed.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets

from flask import Flask, Response, abort, request, session

from ..errors import ConfigurationError

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def csrf_token() -> str:
    """This session's token (made on first use)."""
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return token


def check_csrf() -> None:
    """Abort with 400 unless the request carries this session's token."""
    expected = session.get(CSRF_FIELD)
    given = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    if not isinstance(expected, str) or not hmac.compare_digest(expected, given):
        abort(400, description="missing or wrong CSRF token: reload the page and try again")


def _authorized(password: str) -> bool:
    auth = request.authorization
    given = (auth.password or "") if auth is not None else ""
    return hmac.compare_digest(given.encode(), password.encode())


def install(app: Flask) -> None:
    """Password check before, security headers after, every request."""

    @app.before_request
    def require_password() -> Response | None:
        password = app.config.get("LABQUEUE_PASSWORD")
        if password and not _authorized(password):
            return Response(
                "labqueue monitor: password required\n",
                401,
                {"WWW-Authenticate": 'Basic realm="labqueue", charset="UTF-8"'},
                mimetype="text/plain",
            )
        return None

    @app.after_request
    def headers(resp: Response) -> Response:
        resp.headers.setdefault("Content-Security-Policy", CSP)
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["CSRF_FIELD"] = CSRF_FIELD


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (a host name other than localhost is not)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, allow_remote: bool, password: str | None) -> None:
    """Refuse a non-loopback bind unless asked explicitly and protected by a password."""
    if is_loopback(host):
        return
    if not allow_remote:
        raise ConfigurationError(
            f"refusing to serve the monitor on {host}: it can requeue and delete jobs; "
            "pass --allow-remote and --password to expose it beyond this machine"
        )
    if not password:
        raise ConfigurationError(
            f"serving the monitor on {host} needs a password: pass --password "
            "(or set LABQUEUE_WEB_PASSWORD)"
        )
