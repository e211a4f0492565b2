"""The checkout, as the talk tells it, each step timed:

1. ``insert_order``: look up the prices, insert into ``order`` (takes the write lock)
2. ``insert_items``: one ``order_product`` row per item, the ``order_step`` rows, COMMIT
3. ``render_receipt``: Jinja2, templates/receipt.html
4. the receipt goes back in the answer
5. ``send_email``, 6. ``erp_record_sale``, 7. ``erp_decrease_inventory``: in the request
   (``checkout_sync``), or as three jobs (``checkout_deferred``): written to the outbox in
   step 2's transaction, then enqueued (``enqueue``) by the request itself, or by the relay
   if the request died first (see :mod:`.outbox`).

Both take an ``idempotency_key`` (the ``Idempotency-Key`` header): the same key never
places a second order (see :mod:`.idempotency`).

:class:`Store` is usable without Flask, so a notebook can time the real code in-process::

    store = Store(StoreConfig(db_path=..., smtp_port=..., erp_url=...))
    result = store.checkout_sync({"email": "a@b.c", "items": [{"sku": "SKU-1", "qty": 2}]})
    result.timings_ms      # {"insert_order": 0.4, ..., "send_email": 301.2, ..., "total": 812.9}
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sqlite3
import threading
import time
from typing import Any

import redis

import labqueue
from labqueue.connection import redact, redact_text
from labqueue.keys import Keys

from . import db, idempotency, outbox, steps
from .config import StoreConfig
from .db import SLOW_STEPS, Line, Order
from .errors import BadInput, OrderNotFound, StepFailed
from .orderform import CheckoutRequest, parse_checkout
from .timings import TIMING_KEYS, CheckoutResult, Timings

__all__ = ["JOB_NAMES", "TIMING_KEYS", "CheckoutResult", "Store", "Timings"]

log = logging.getLogger("labqueue.demo")

#: A test hook (fault injection, as the fakes' error_rate is): a deferred checkout for the
#: email address in this environment variable SIGKILLs its own process right after its
#: order is committed, before its jobs are enqueued: the crash the outbox is for.
CRASH_AFTER_COMMIT = "STORE_CRASH_AFTER_COMMIT"

#: The job class names (Resque style) that run each slow step, see :mod:`.jobs`.
JOB_NAMES = {
    "send_email": "Store\\Jobs\\SendReceiptEmail",
    "erp_record_sale": "Store\\Jobs\\RecordSaleInERP",
    "erp_decrease_inventory": "Store\\Jobs\\DecreaseInventoryInERP",
}


class Store:
    """The store's logic over one database, one Redis, one mail server and one ERP."""

    def __init__(self, config: StoreConfig, redis_client: Any = None) -> None:
        self.config = config
        self._redis = redis_client
        self._local = threading.local()
        self._queues: dict[str, labqueue.Queue] = {}
        self._crash_for = os.environ.get(CRASH_AFTER_COMMIT) or None
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
    def checkout_sync(self, data: Any, idempotency_key: str | None = None) -> CheckoutResult:
        """Steps 1-7 in the caller's time. StepFailed (order recorded failed) on a bad step;
        KeySeen / KeyReused when ``idempotency_key`` names an order already."""
        t = Timings()
        order = self._place(parse_checkout(data), "sync", t, key=idempotency_key)
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

    def checkout_deferred(self, data: Any, idempotency_key: str | None = None) -> CheckoutResult:
        """Steps 1-4 in the caller's time, 5-7 enqueued as jobs (queues email and erp),
        through the outbox; ``idempotency_key`` as for :meth:`checkout_sync`."""
        t = Timings()
        payloads: dict[str, labqueue.Payload] = {}
        owner = outbox.owner_token()
        req = parse_checkout(data)
        order = self._place(req, "deferred", t, payloads, idempotency_key, owner)
        if self._crash_for is not None and order.email == self._crash_for:
            log.warning("order %s: %s, crashing after the commit", order.id, CRASH_AFTER_COMMIT)
            os.kill(os.getpid(), signal.SIGKILL)
        with t.step("render_receipt"):
            html = steps.render_receipt(order)
        with t.step("enqueue"):
            self._enqueue(order.id, payloads, owner)
        t.finish()
        jobs = {step: p.id or "" for step, p in payloads.items()}
        return CheckoutResult(order.id, "deferred", "queued", order.total_cents, html, t.ms, jobs)

    def _place(
        self,
        req: CheckoutRequest,
        mode: str,
        t: Timings,
        payloads: dict[str, labqueue.Payload] | None = None,
        key: str | None = None,
        owner: str = "",
    ) -> Order:
        """Steps 1 and 2 in one transaction, with the idempotency key (if any) and, for
        ``payloads`` (deferred), the outbox rows claimed by ``owner``; BadInput (nothing
        written) for an unknown SKU, KeySeen or KeyReused for a key in use."""
        conn = self.db
        status = "queued" if mode == "deferred" else "processing"
        fingerprint = idempotency.fingerprint(mode, req) if key else ""
        try:
            with t.step("insert_order"):
                conn.execute("BEGIN IMMEDIATE")
                if key:
                    idempotency.check(conn, key, mode, fingerprint)
                lines, rows = self._price(conn, req)
                total = sum(line.subtotal_cents for line in lines)
                now = time.time()
                order_id = db.insert_order(conn, req.email, mode, status, total, now)
                if key:
                    idempotency.add(conn, key, mode, fingerprint, order_id, now)
            with t.step("insert_items"):
                db.insert_order_products(conn, order_id, rows)
                if payloads is not None:
                    payloads.update(self._payloads(order_id))
                    jobs = [(self.queue_name(s), p) for s, p in payloads.items()]
                    outbox.add(conn, order_id, jobs, owner, now)
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

    def queue_name(self, step: str) -> str:
        return self.config.email_queue if step == "send_email" else self.config.erp_queue

    def queue_for(self, step: str) -> labqueue.Queue:
        return self.queue(self.queue_name(step))

    def queue(self, name: str) -> labqueue.Queue:
        if name not in self._queues:
            self._queues[name] = labqueue.Queue(name, self.redis, namespace=self.config.namespace)
        return self._queues[name]

    def _enqueue(self, order_id: int, payloads: dict[str, labqueue.Payload], owner: str) -> None:
        """Relay the order's outbox rows now (the request still holds their claim). When
        Redis refuses them: cancel the rows and fail the order (StepFailed, a 503), unless a
        relay has taken them over meanwhile, in which case they are on their way."""
        try:
            pushes = [(self.queue_for(s), p) for s, p in payloads.items()]
            labqueue.enqueue_together(pushes, once=True)
        except (redis.RedisError, labqueue.LabqueueError) as exc:
            cause = self.redacted(f"could not enqueue the jobs: {exc}")
            conn = self.db
            with db.transaction(conn):
                if not outbox.cancel(conn, order_id, owner, cause):
                    return
                for step in SLOW_STEPS:
                    db.record_step(conn, order_id, step, "failed", cause, attempted=False)
                db.set_order_status(conn, order_id, "failed")
            raise StepFailed("enqueue", cause, order_id) from None
        outbox.order_sent(self.db, order_id, time.time())

    def relay(self) -> outbox.Relay:
        """A relay for this store's outbox (``python -m labqueue.demo relay`` runs one)."""
        return outbox.Relay(self)

    def remember(self, key: str, status: int, body: str) -> None:
        """The first answer given for an Idempotency-Key, to give again."""
        with db.transaction(self.db) as conn:
            idempotency.remember(conn, key, status, body)

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
            "outbox_pending": outbox.pending(self.db, order.id),
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
