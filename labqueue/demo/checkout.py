"""The checkout, as the talk tells it, each step timed:

1. ``insert_order``: look up the prices, insert into ``order`` (takes the write lock)
2. ``insert_items``: one ``order_product`` row per item, the ``order_step`` rows, COMMIT
3. ``render_receipt``: Jinja2, templates/receipt.html
4. the receipt goes back in the answer
5. ``send_email``, 6. ``erp_record_sale``, 7. ``erp_decrease_inventory``: in the request
   (``checkout_sync``), or as three jobs (``enqueue``, ``checkout_deferred``).

:class:`Store` is usable without Flask, so a notebook can time the real code in-process::

    store = Store(StoreConfig(db_path=..., smtp_port=..., erp_url=...))
    result = store.checkout_sync({"email": "a@b.c", "items": [{"sku": "SKU-1", "qty": 2}]})
    result.timings_ms      # {"insert_order": 0.4, ..., "send_email": 301.2, ..., "total": 812.9}
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import redis

import labqueue
from labqueue.connection import redact, redact_text
from labqueue.keys import Keys

from . import db, steps
from .config import StoreConfig
from .db import SLOW_STEPS, Line, Order
from .errors import BadInput, OrderNotFound, StepFailed
from .orderform import CheckoutRequest, parse_checkout

log = logging.getLogger("labqueue.demo")

#: Every key of ``timings_ms``, always present (0.0 for a step the mode does not run).
TIMING_KEYS = (
    "insert_order",
    "insert_items",
    "render_receipt",
    "send_email",
    "erp_record_sale",
    "erp_decrease_inventory",
    "enqueue",
    "total",
)

#: The job class names (Resque style) that run each slow step, see :mod:`.jobs`.
JOB_NAMES = {
    "send_email": "Store\\Jobs\\SendReceiptEmail",
    "erp_record_sale": "Store\\Jobs\\RecordSaleInERP",
    "erp_decrease_inventory": "Store\\Jobs\\DecreaseInventoryInERP",
}


class Timings:
    """Milliseconds per step, from the moment the object is made."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.ms: dict[str, float] = dict.fromkeys(TIMING_KEYS, 0.0)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = round((time.perf_counter() - t0) * 1000, 3)

    def finish(self) -> dict[str, float]:
        self.ms["total"] = round((time.perf_counter() - self.started) * 1000, 3)
        return self.ms


@dataclass
class CheckoutResult:
    order_id: int
    mode: str
    status: str
    total_cents: int
    receipt_html: str
    timings_ms: dict[str, float]
    jobs: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "order_id": self.order_id,
            "mode": self.mode,
            "status": self.status,
            "total": self.total_cents / 100,
            "total_cents": self.total_cents,
            "receipt_html": self.receipt_html,
            "timings_ms": self.timings_ms,
        }
        if self.mode == "deferred":
            out["jobs"] = self.jobs
        return out


class Store:
    """The store's logic over one database, one Redis, one mail server and one ERP."""

    def __init__(self, config: StoreConfig, redis_client: Any = None) -> None:
        self.config = config
        self._redis = redis_client
        self._local = threading.local()
        self._queues: dict[str, labqueue.Queue] = {}
        db.init_db(config.db_path)

    # -- connections -------------------------------------------------------------------
    @property
    def db(self) -> sqlite3.Connection:
        """This thread's SQLite connection."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = db.connect(self.config.db_path)
        return conn

    @property
    def redis(self) -> Any:
        if self._redis is None:
            try:
                self._redis = labqueue.connect(self.config.redis_url)
            except (TypeError, ValueError) as exc:  # redis-py refusing a URL's option
                url = redact(self.config.redis_url or os.environ.get("REDIS_URL", ""))
                msg = self.redacted(f"invalid Redis URL {url}: {exc}")
                raise labqueue.ConfigurationError(msg) from None
        return self._redis

    def redacted(self, text: str) -> str:
        """``text`` with no password of this store's Redis (or ERP) URL left in it: for every
        answer, stored error and log line that may quote a URL or an exception."""
        client_url = None
        if self._redis is not None:
            with contextlib.suppress(Exception):
                client_url = labqueue.connection_url(self._redis)
        urls = (self.config.redis_url, os.environ.get("REDIS_URL"), client_url, self.config.erp_url)
        return redact_text(text, *urls)

    def warm_up(self) -> None:
        """Open the database and Redis connections now, so the first checkout does not pay
        for them (only when Redis is configured: no embedded server is started here)."""
        self.db.execute("SELECT 1").fetchone()
        if self._redis is None and not self.config.redis_url:
            return
        try:
            self.redis.ping()
            for step in SLOW_STEPS:
                self.queue_for(step)
        except (redis.RedisError, labqueue.LabqueueError) as exc:
            why = self.redacted(str(exc))
            log.warning("Redis not reachable yet (%s); deferred checkouts will retry", why)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- checkout ----------------------------------------------------------------------
    def checkout_sync(self, data: Any) -> CheckoutResult:
        """Steps 1-7 in the caller's time. StepFailed (order recorded failed) on a bad step."""
        t = Timings()
        order = self._place(parse_checkout(data), "sync", t)
        with t.step("render_receipt"):
            html = steps.render_receipt(order)
        failure: StepFailed | None = None
        done: list[str] = []
        for step in SLOW_STEPS:
            with t.step(step):
                try:
                    self._run(step, order, html)
                except StepFailed as exc:
                    failure = exc
            if failure:
                break
            done.append(step)
        self._finish_sync(order.id, done, failure)
        t.finish()
        if failure is not None:
            failure.timings_ms = t.ms
            raise failure
        return CheckoutResult(order.id, "sync", "complete", order.total_cents, html, t.ms)

    def checkout_deferred(self, data: Any) -> CheckoutResult:
        """Steps 1-4 in the caller's time, 5-7 enqueued as jobs (queues email and erp)."""
        t = Timings()
        payloads: dict[str, labqueue.Payload] = {}
        order = self._place(parse_checkout(data), "deferred", t, payloads)
        with t.step("render_receipt"):
            html = steps.render_receipt(order)
        with t.step("enqueue"):
            self._enqueue(order.id, payloads)
        t.finish()
        jobs = {step: p.id or "" for step, p in payloads.items()}
        return CheckoutResult(order.id, "deferred", "queued", order.total_cents, html, t.ms, jobs)

    def _place(
        self,
        req: CheckoutRequest,
        mode: str,
        t: Timings,
        payloads: dict[str, labqueue.Payload] | None = None,
    ) -> Order:
        """Steps 1 and 2 in one transaction; BadInput (nothing written) for an unknown SKU."""
        conn = self.db
        status = "queued" if mode == "deferred" else "processing"
        try:
            with t.step("insert_order"):
                conn.execute("BEGIN IMMEDIATE")
                lines, rows = self._price(conn, req)
                total = sum(line.subtotal_cents for line in lines)
                now = time.time()
                order_id = db.insert_order(conn, req.email, mode, status, total, now)
            with t.step("insert_items"):
                db.insert_order_products(conn, order_id, rows)
                if payloads is not None:
                    payloads.update(self._payloads(order_id))
                job_ids = {step: p.id or "" for step, p in (payloads or {}).items()}
                db.insert_steps(conn, order_id, "queued" if payloads else "pending", job_ids)
                conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return Order(order_id, req.email, mode, status, total, now, lines)

    @staticmethod
    def _price(
        conn: sqlite3.Connection, req: CheckoutRequest
    ) -> tuple[list[Line], list[tuple[int, int, int]]]:
        products = db.products_by_sku(conn, [item.sku for item in req.items])
        lines, rows = [], []
        for item in req.items:
            product = products.get(item.sku)
            if product is None:
                raise BadInput(
                    f"items[{item.index}].sku", f"unknown SKU {item.sku!r} (the shop sells SKU-1..)"
                )
            lines.append(Line(item.sku, product["name"], item.qty, product["price_cents"]))
            rows.append((product["id"], item.qty, product["price_cents"]))
        return lines, rows

    def _run(self, step: str, order: Order, html: str | None = None) -> None:
        """One slow step; its StepFailed carries a cause with no password in it."""
        try:
            if step == "send_email":
                steps.send_email(self.config, order, html or steps.render_receipt(order))
            elif step == "erp_record_sale":
                steps.erp_record_sale(self.config, order)
            else:
                steps.erp_decrease_inventory(self.config, order)
        except StepFailed as exc:
            raise StepFailed(exc.step, self.redacted(exc.cause), exc.order_id) from None

    def _finish_sync(self, order_id: int, done: list[str], failure: StepFailed | None) -> None:
        conn = self.db
        with db.transaction(conn):
            for step in done:
                db.record_step(conn, order_id, step, "done")
            if failure is not None:
                db.record_step(conn, order_id, failure.step, "failed", failure.cause)
                for step in SLOW_STEPS[len(done) + 1 :]:
                    db.record_step(conn, order_id, step, "skipped", attempted=False)
            db.set_order_status(conn, order_id, "failed" if failure else "complete")

    # -- jobs --------------------------------------------------------------------------
    def _payloads(self, order_id: int) -> dict[str, labqueue.Payload]:
        return {s: labqueue.Payload.new(JOB_NAMES[s], [{"order_id": order_id}]) for s in SLOW_STEPS}

    def queue_for(self, step: str) -> labqueue.Queue:
        name = self.config.email_queue if step == "send_email" else self.config.erp_queue
        if name not in self._queues:
            self._queues[name] = labqueue.Queue(name, self.redis, namespace=self.config.namespace)
        return self._queues[name]

    def _enqueue(self, order_id: int, payloads: dict[str, labqueue.Payload]) -> None:
        try:
            labqueue.enqueue_together([(self.queue_for(s), p) for s, p in payloads.items()])
        except (redis.RedisError, labqueue.LabqueueError) as exc:
            cause = self.redacted(f"could not enqueue the jobs: {exc}")
            conn = self.db
            with db.transaction(conn):
                for step in SLOW_STEPS:
                    db.record_step(conn, order_id, step, "failed", cause, attempted=False)
                db.set_order_status(conn, order_id, "failed")
            raise StepFailed("enqueue", cause, order_id) from None

    def run_step(self, order_id: int, step: str) -> str:
        """What a job does: run one slow step for an order; "done", or "skipped" if the
        receipt was already sent. StepFailed (recorded on the order) when it fails."""
        if step not in SLOW_STEPS:
            raise ValueError(f"unknown step {step!r}; steps: {SLOW_STEPS}")
        order = self.order(order_id)
        row = order.steps.get(step)
        if step == "send_email" and row is not None and row.status == "done":
            return "skipped"
        conn = self.db
        try:
            self._run(step, order)
        except StepFailed as exc:
            with db.transaction(conn):
                db.record_step(conn, order_id, step, "failed", exc.cause)
            raise
        with db.transaction(conn):
            db.record_step(conn, order_id, step, "done")
            db.complete_if_done(conn, order_id)
        return "done"

    # -- reading -----------------------------------------------------------------------
    def order(self, order_id: int) -> Order:
        order = db.load_order(self.db, order_id)
        if order is None:
            raise OrderNotFound(f"no order {order_id}")
        return order

    def job_statuses(self, job_ids: list[str | None]) -> dict[str | None, str | None]:
        """Each job's status label, read in one round trip: "unknown" when it has none (or it
        expired), "unavailable" when Redis does not answer, None for no job."""
        ids = [i for i in job_ids if i]
        try:
            found = labqueue.get_statuses(self.redis, ids, Keys(self.config.namespace))
        except (redis.RedisError, labqueue.LabqueueError):
            return {i: "unavailable" if i else None for i in job_ids}
        labels = {i: rec.status.label if rec else "unknown" for i, rec in found.items()}
        return {i: labels[i] if i else None for i in job_ids}

    def order_view(self, order_id: int) -> dict[str, Any]:
        """The order as GET /orders/<id> shows it, with the status of each of its jobs."""
        order = self.order(order_id)
        statuses = self.job_statuses([row.job_id for row in order.steps.values()])
        return {
            "order_id": order.id,
            "email": order.email,
            "mode": order.mode,
            "status": order.status,
            "total": order.total_cents / 100,
            "total_cents": order.total_cents,
            "created_at": order.created_at,
            "items": [
                {"sku": ln.sku, "name": ln.name, "qty": ln.qty, "price_cents": ln.price_cents}
                for ln in order.lines
            ],
            "steps": {
                name: {
                    "status": row.status,
                    "attempts": row.attempts,
                    "error": self.redacted(row.error) if row.error else row.error,
                    "job_id": row.job_id,
                    "job_status": statuses[row.job_id],
                }
                for name, row in order.steps.items()
            },
        }
