"""The store's web app: ``create_app(config)``, the Flask factory gunicorn serves.

    POST /checkout/sync        steps 1-7 in the request
    POST /checkout/deferred    steps 1-4 in the request, 5-7 as jobs on queues email and erp
                               body {"email": "a@b.c", "items": [{"sku": "SKU-1", "qty": 2}]}
                               header Idempotency-Key (optional): a retry with the same key
                               gets the first order's answer again, never a second order
    GET  /orders/<id>          the order, each step's outcome and its job's status
    GET  /products             the catalogue (SKU-1 .. SKU-20, prices in cents)
    GET  /healthz              {"ok": true} when the database and Redis answer

Answers: 200 with the order and ``timings_ms``; 400 ``{"error", "field"}`` for bad input
(nothing written); 404, 405, 413 (a body over ``MAX_BODY``) and 415 (a checkout body not
sent as ``Content-Type: application/json``) answer ``{"error", "field"}`` too; 502
``{"error", "step", "cause", "order_id"}`` when the mail server or the ERP fails a sync
checkout (the order is kept, status failed); 503 when Redis refuses the jobs of a
deferred checkout. With an ``Idempotency-Key`` (see :mod:`.idempotency`): a used key's first
answer again (``Idempotent-Replayed: true``), 400 for a malformed key, 422 for a key used
with another body, 409 while its first request is still under way; each names the header
in ``field``. No error answer or stored error carries a Redis password.

Under gunicorn: ``gunicorn -w 4 -b 127.0.0.1:8000 'labqueue.demo.app:create_app()'`` with
the settings in the environment (STORE_DB, REDIS_URL, STORE_SMTP, STORE_ERP_URL).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, UnsupportedMediaType

from . import db, idempotency, steps
from .checkout import Store
from .config import StoreConfig
from .errors import MAX_ECHO, BadInput, OrderNotFound, StepFailed, shown

#: The largest request body the store reads: a 50-line checkout is about 3 KB.
MAX_BODY = 64 * 1024
JSON_TYPE = "application/json"
#: SQLite's largest rowid: no order id is larger.
MAX_ORDER_ID = 2**63 - 1
#: What a client error of each status is about, for the ``field`` of its answer.
FIELD_OF_STATUS = {404: "path", 405: "method", 413: "body", 415: "Content-Type"}


def create_app(
    config: StoreConfig | Mapping[str, Any] | None = None, redis_client: Any = None
) -> Flask:
    """The app. ``config``: a StoreConfig, or a dict of StoreConfig fields overriding the
    environment's; ``redis_client``: a client to use instead of ``config.redis_url``."""
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    store = Store(_resolve(config), redis_client)
    app.extensions["store"] = store
    steps.warm_up()
    store.warm_up()
    _register_routes(app)
    _register_errors(app)
    return app


def _resolve(config: StoreConfig | Mapping[str, Any] | None) -> StoreConfig:
    if isinstance(config, StoreConfig):
        return config
    base = StoreConfig.from_env()
    if config is None:
        return base
    return StoreConfig.from_mapping({**dataclasses.asdict(base), **config})


def _store() -> Store:
    store: Store = current_app.extensions["store"]
    return store


def _body() -> Any:
    """The checkout's JSON body: 415 unless it says it is JSON (a cross-site form cannot),
    413 over MAX_BODY, 400 when it does not parse."""
    if request.mimetype != JSON_TYPE:
        got = request.headers.get("Content-Type")
        said = "no Content-Type" if got is None else f"Content-Type {shown(got)}"
        raise UnsupportedMediaType(f"expected Content-Type: {JSON_TYPE}, got {said}")
    raw = _read_body(request.max_content_length)
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise BadInput("body", f"not JSON ({str(exc)[:MAX_ECHO]})") from None
    except RecursionError:
        raise BadInput("body", "not JSON this program can read (nested too deep)") from None


def _read_body(limit: int | None) -> bytes:
    """The whole body, in chunks, 413 past ``limit``: a chunked upload has no
    Content-Length to refuse up front, and a single read would cut it short silently."""
    chunks, size = [], 0
    while chunk := request.stream.read(65536):
        size += len(chunk)
        if limit is not None and size > limit:
            raise RequestEntityTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def _order_id(text: str) -> int:
    """The order id in a URL: 404 naming ``order_id`` for anything no order can have."""
    if (
        not (text.isascii() and text.isdigit())
        or len(text) > 19
        or not 0 < int(text) <= MAX_ORDER_ID
    ):
        raise OrderNotFound(f"no order {shown(text)}")
    return int(text)


def _register_routes(app: Flask) -> None:
    @app.post("/checkout/sync")
    def checkout_sync() -> Response:
        return _checkout("sync")

    @app.post("/checkout/deferred")
    def checkout_deferred() -> Response:
        return _checkout("deferred")

    @app.get("/orders/<order_ref>")
    def order(order_ref: str) -> Response:
        return jsonify(_store().order_view(_order_id(order_ref)))

    @app.get("/products")
    def products() -> Response:
        rows = db.all_products(_store().db)
        return jsonify({"products": [dict(r) for r in rows]})

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        checks = _health(_store())
        ok = all(v == "ok" for v in checks.values())
        return jsonify({"ok": ok, **checks}), 200 if ok else 503


def _checkout(mode: str) -> Response:
    """One checkout; with an Idempotency-Key, the key's first answer is stored, and a key in
    use is answered from it (see :mod:`.idempotency`)."""
    store = _store()
    data = _body()
    key = idempotency.header_key(request.headers.getlist(idempotency.HEADER))
    run = store.checkout_sync if mode == "sync" else store.checkout_deferred
    try:
        try:
            resp = jsonify(run(data, idempotency_key=key).to_json())
        except StepFailed as exc:  # the order is placed (and failed): an answer to keep
            resp = _step_failed(exc)
    except idempotency.KeySeen as seen:
        return _replay(store, seen.row)
    if key is not None:
        store.remember(key, resp.status_code, resp.get_data(as_text=True))
    return resp


def _replay(store: Store, row: idempotency.KeyRow) -> Response:
    """The answer for a key in use: its first answer, or the order now if there was none."""
    replay = idempotency.settle(store.db, row)
    if replay.body is None:
        resp = jsonify(store.order_view(replay.order_id))
    else:
        resp = Response(replay.body, replay.status, mimetype=JSON_TYPE)
    resp.headers[idempotency.REPLAYED] = "true"
    return resp


def _step_failed(exc: StepFailed) -> Response:
    """502 when the mail server or the ERP failed a sync step, 503 when Redis refused the
    jobs; the order is kept, failed."""
    body = {
        "error": _store().redacted(str(exc)),
        "step": exc.step,
        "cause": _store().redacted(exc.cause),
        "order_id": exc.order_id,
        "status": "failed",
        "timings_ms": exc.timings_ms,
    }
    resp = jsonify(body)
    resp.status_code = 503 if exc.step == "enqueue" else 502
    return resp


def _health(store: Store) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        store.db.execute("SELECT 1").fetchone()
        checks["db"] = "ok"
    except Exception as exc:
        checks["db"] = store.redacted(f"{type(exc).__name__}: {exc}")[:500]
    try:
        store.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = store.redacted(f"{type(exc).__name__}: {exc}")[:500]
    return checks


def _register_errors(app: Flask) -> None:
    @app.errorhandler(BadInput)
    def bad_input(exc: BadInput) -> tuple[Response, int]:
        return jsonify({"error": exc.message, "field": exc.field}), 400

    @app.errorhandler(StepFailed)
    def step_failed(exc: StepFailed) -> Response:
        return _step_failed(exc)

    @app.errorhandler(idempotency.KeyReused)
    def key_reused(exc: idempotency.KeyReused) -> tuple[Response, int]:
        return jsonify({"error": str(exc), "field": idempotency.HEADER}), 422

    @app.errorhandler(idempotency.KeyBusy)
    def key_busy(exc: idempotency.KeyBusy) -> tuple[Response, int, dict[str, str]]:
        body = {"error": str(exc), "field": idempotency.HEADER, "order_id": exc.order_id}
        return jsonify(body), 409, {"Retry-After": "1"}

    @app.errorhandler(OrderNotFound)
    def not_found(exc: OrderNotFound) -> tuple[Response, int]:
        return jsonify({"error": str(exc), "field": "order_id"}), 404

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int, list[tuple[str, str]]]:
        code = exc.code or 500
        body = {"error": f"{exc.name}: {exc.description}"}
        if 400 <= code < 500:
            body["field"] = FIELD_OF_STATUS.get(code, "request")
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
        return jsonify(body), code, headers  # 405 keeps its Allow header

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> tuple[Response, int]:
        app.logger.exception("unexpected error in %s %s", request.method, request.path[:200])
        text = _store().redacted(f"internal error: {type(exc).__name__}: {exc}")
        return jsonify({"error": text[:500]}), 500
