"""What the fake mail server and the fake ERP share: seeded faults and a small JSON HTTP API.

:class:`Faults` draws, per call, a delay (a gamma distribution with mean ``latency`` and
coefficient of variation ``jitter``: always positive, skewed right like real service times)
and whether the call fails (probability ``error_rate``), from one seeded generator, so a
run with the same seed and the same order of calls sees the same delays. A setting it
cannot honour (NaN, infinite, negative, past ``MAX_LATENCY``/``MAX_JITTER``, an error rate
outside 0..1, not a number) raises :class:`~.errors.BadSetting` naming it, and the old
settings stay.

:class:`JsonService` is a threaded ``http.server`` on loopback with a route table; each
handler gets a :class:`Request` and returns ``(status, json_body)``. A request it cannot
read (a bad Content-Length, a body over ``MAX_REQUEST``, JSON nested too deep) is a 4xx,
and the service keeps serving. Each connection gets a thread of its own, as many as there
are callers, so callers waiting behind a capacity (:mod:`.capacity`) wait in a handler,
where the call log (:mod:`.calllog`) sees them arrive, never in the listen backlog.
"""

from __future__ import annotations

import json
import logging
import math
import random
import re
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from labqueue.errors import ConfigurationError

from .errors import BadSetting, StoreError, field_name, shown

log = logging.getLogger("labqueue.demo")

#: Seconds: the largest mean delay a fake takes (a slower one only ties up its threads).
MAX_LATENCY = 60.0
#: The largest spread of the delay (coefficient of variation).
MAX_JITTER = 10.0
#: Below this spread a delay is the latency itself (the gamma shape would overflow).
MIN_JITTER = 1e-3
#: What each setting may be: (lowest, highest).
LIMITS = {"latency": (0.0, MAX_LATENCY), "jitter": (0.0, MAX_JITTER), "error_rate": (0.0, 1.0)}
#: The largest request body a fake reads.
MAX_REQUEST = 1024 * 1024


def check_setting(name: str, value: Any) -> float:
    """``value`` as a float if the setting ``name`` can honour it, else BadSetting."""
    low, high = LIMITS[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadSetting(name, f"{name} must be a number, got {shown(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number) or not low <= number <= high:
        raise BadSetting(name, f"{name} must be between {low:g} and {high:g}, got {shown(value)}")
    return number


@dataclass
class Faults:
    """Latency and failures of a fake service; thread-safe, changeable while it runs."""

    latency: float = 0.0
    jitter: float = 0.2
    error_rate: float = 0.0
    seed: int | None = 1
    _rng: random.Random = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for name in LIMITS:
            setattr(self, name, check_setting(name, getattr(self, name)))
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int)
        ):
            raise BadSetting("seed", f"seed must be a whole number, got {shown(self.seed)}")
        self._rng = random.Random(self.seed)

    def draw(self) -> tuple[float, bool]:
        """(seconds to wait, whether this call fails)."""
        with self._lock:
            if self.latency > 0 and self.jitter >= MIN_JITTER:
                shape = 1.0 / self.jitter**2
                delay = self._rng.gammavariate(shape, self.latency / shape)
            else:
                delay = self.latency
            fails = self._rng.random() < self.error_rate
        return delay, fails

    def update(self, changes: dict[str, Any]) -> None:
        """Change latency, jitter or error_rate (from POST /config): all of them or none."""
        unknown = next((k for k in changes if k not in LIMITS), None)
        if unknown is not None:
            name = field_name(unknown)
            raise BadSetting(name, f"unknown setting {name}; settings: {', '.join(LIMITS)}")
        new = {k: check_setting(k, v) for k, v in changes.items()}
        with self._lock:
            for name, value in new.items():
                setattr(self, name, value)

    def to_json(self) -> dict[str, Any]:
        return {
            "latency": self.latency,
            "jitter": self.jitter,
            "error_rate": self.error_rate,
            "seed": self.seed,
        }

    def route(self, api: JsonService) -> None:
        """Serve these settings as ``GET /config`` and change them by ``POST /config``."""
        api.route("GET", "/config", lambda req: (200, self.to_json()))
        api.route("POST", "/config", self._configure)

    def _configure(self, req: Request) -> tuple[int, Any]:
        if not isinstance(req.body, dict):
            raise HttpError(400, 'expected {"latency": s, "jitter": cv, "error_rate": p}', "body")
        self.update(req.body)
        return 200, self.to_json()


@dataclass
class Request:
    method: str
    path: str
    match: re.Match[str]
    query: dict[str, str]
    body: Any


Handler = Callable[[Request], tuple[int, Any]]


class HttpError(Exception):
    """Raised by a route handler: answer ``status`` with ``{"error": message, "field": ..}``."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": str(self)}
        if self.field is not None:
            out["field"] = self.field
        return out


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer (a worker killed mid-call) is no error here."""
        if not isinstance(sys.exc_info()[1], BrokenPipeError | ConnectionResetError):
            super().handle_error(request, client_address)


class JsonService:
    """A JSON HTTP API on a loopback port, served from a background thread."""

    def __init__(self, name: str, host: str = "127.0.0.1", port: int = 0, verbose: bool = False):
        self.name = name
        self.host = host
        self.port = port
        self.verbose = verbose
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(f"^{pattern}$"), handler))

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> JsonService:
        try:
            self._server = _Server((self.host, self.port), _make_handler(self))
        except (OSError, OverflowError, TypeError) as exc:  # taken; a port past 65535
            what = f"{self.name} (HTTP)"
            raise StoreError(cannot_listen(self.host, self.port, what, exc)) from None
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.name}-http",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def dispatch(self, method: str, target: str, raw: bytes) -> tuple[int, Any]:
        parts = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        allowed = False
        for route_method, pattern, handler in self.routes:
            match = pattern.match(parts.path)
            if match is None:
                continue
            allowed = True
            if route_method == method:
                return handler(Request(method, parts.path, match, query, _json_body(raw)))
        if allowed:
            return 405, {"error": f"{method} not allowed on {shown(parts.path)}", "field": "method"}
        found = {"error": f"no such endpoint {shown(parts.path)}", "field": "path"}
        return 404, {**found, "endpoints": self.endpoints()}

    def endpoints(self) -> list[str]:
        return [f"{m} {p.pattern.strip('^$')}" for m, p, _ in self.routes]


def _json_body(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise HttpError(400, "the body is not JSON (or nested too deep)", "body") from None


def _content_length(text: str | None) -> int:
    """The request's Content-Length: HttpError 400 unless it is a count, 413 past the limit."""
    if text is None:
        return 0
    text = text.strip()
    if not (text.isascii() and text.isdigit()):
        raise HttpError(400, f"Content-Length {shown(text)} is not a count", "Content-Length")
    if len(text) > 18 or int(text) > MAX_REQUEST:
        raise HttpError(413, f"bodies of at most {MAX_REQUEST} bytes", "Content-Length")
    return int(text)


def _make_handler(service: JsonService) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        server_version = f"labqueue-{service.name}/1"

        def _answer(self) -> None:
            try:
                raw = self.rfile.read(_content_length(self.headers.get("Content-Length")))
            except HttpError as exc:
                self.close_connection = True  # the body is left unread
                self._send(exc.status, exc.body())
                return
            try:
                status, body = service.dispatch(self.command, self.path, raw)
            except HttpError as exc:
                status, body = exc.status, exc.body()
            except BadSetting as exc:
                status, body = 400, {"error": str(exc), "field": exc.field}
            except ConfigurationError as exc:
                status, body = 400, {"error": str(exc)}
            except Exception as exc:  # a bug: answer it, log it, keep serving
                log.exception("%s: %s %s failed", service.name, self.command, self.path[:200])
                status, body = 500, {"error": f"internal error: {type(exc).__name__}"}
            self._send(status, body)

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            if service.verbose:
                log.info("%s %s - %s", service.name, self.address_string(), format % args)

    return _Handler


def cannot_listen(host: str, port: int, what: str, exc: Exception) -> str:
    """The one line for a port that cannot be bound (taken, say), and what to do."""
    return (
        f"cannot listen on {host}:{port} for {what} ({getattr(exc, 'strerror', None) or exc}): "
        "choose another port (0: any free port)"
    )


def bound_socket(host: str, port: int, what: str = "") -> socket.socket:
    """A listening TCP socket on host:port (0: a free port). With ``what`` (the service), a
    port that cannot be bound raises StoreError with :func:`cannot_listen`'s line."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(256)
    except (OSError, OverflowError, TypeError) as exc:  # taken; a port past 65535
        sock.close()
        if what:
            raise StoreError(cannot_listen(host, port, what, exc)) from None
        raise
    return sock


def int_or_none(text: str | None, name: str) -> int | None:
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise HttpError(400, f"{name} must be a whole number, got {shown(text)}", name) from None


def positive_or_none(text: str | None, name: str) -> int | None:
    """A count from the query string (``limit``): None when absent, 400 unless it is >= 1."""
    value = int_or_none(text, name)
    if value is not None and value < 1:
        raise HttpError(400, f"{name} must be at least 1, got {value}", name)
    return value
