"""The outbox: a deferred checkout's jobs go into SQLite with its order, then to Redis.

The dual-write problem: an order lives in SQLite, its jobs in Redis, and no transaction
spans both. Committing the order and then enqueueing leaves a window: a process killed
between the two (a deploy, the OOM killer, a SIGKILL) leaves an order "queued" whose jobs
never existed. Enqueueing first is no better (a job for an order that was rolled back).

So a deferred checkout writes its three jobs, as payloads with their ids, into the
``outbox`` table in the same transaction as the order: the order and its pending jobs exist
together or not at all. Then a relay enqueues the pending rows (all of one batch or none,
:func:`labqueue.enqueue_together`) and marks them sent:

- the request itself, right after its commit (the rows are born claimed by it, for
  :data:`LEASE` seconds), so a checkout's latency stays what it was, plus one small write;
- ``python -m labqueue.demo relay`` (the stack runs one), every ``interval`` seconds, for
  rows whose claim ran out: the crashed request's, or a relay's that died.

Safe to run twice, or many at once: a row is claimed in one SQLite write (``BEGIN
IMMEDIATE``), so two relays do not take the same row; and if a relay dies after enqueueing
but before marking the row sent, the next one sends it again with ``once=True``
(:data:`~labqueue.scripts.ENQUEUE_NEW`), which skips a job whose id Redis knows (its status
key lives until a day after it finished), so one row makes one job. Past that day a
duplicate could be queued again; the jobs are idempotent anyway (see :mod:`.jobs`).

When Redis refuses the jobs while the shopper waits, the answer stays what it was before
the outbox, 503 with the order failed, and the rows are cancelled: nothing the shopper was
told failed happens later behind their back. Only a crash, where nobody was told anything,
is left to the relay.
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis

import labqueue

from . import db

if TYPE_CHECKING:
    from .checkout import Store

log = logging.getLogger("labqueue.demo.relay")

#: Seconds a claim on outbox rows holds: the request that wrote them has this long to send
#: them before a relay may (and a relay, to send a batch before another may retry it).
LEASE = 5.0
#: Rows one relay pass sends at most (one MULTI/EXEC).
BATCH = 300
#: Seconds a sent row (and a used Idempotency-Key) is kept, for the curious, then pruned.
KEEP = 24 * 3600


def owner_token() -> str:
    """Who claims rows: host, pid and a random part (a request, or one relay pass)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Row:
    id: int
    order_id: int
    queue: str
    payload: str


def add(
    conn: sqlite3.Connection,
    order_id: int,
    jobs: Sequence[tuple[str, labqueue.Payload]],
    owner: str,
    now: float,
) -> None:
    """Inside the order's transaction: its jobs, (queue, payload), pending and claimed by
    ``owner`` (the request) for LEASE seconds."""
    conn.executemany(
        "INSERT INTO outbox (order_id, queue, payload, created_at, claimed_by, claimed_until) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(order_id, queue, p.to_json(), now, owner, now + LEASE) for queue, p in jobs],
    )


def claim(conn: sqlite3.Connection, owner: str, now: float, limit: int = BATCH) -> list[Row]:
    """Take up to ``limit`` pending rows whose claim ran out, for LEASE seconds: one write,
    so two relays never hold the same row."""
    with db.transaction(conn):
        found = conn.execute(
            "SELECT id, order_id, queue, payload FROM outbox WHERE status = 'pending' "
            "AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY id LIMIT ?",
            (now, limit),
        ).fetchall()
        rows = [Row(r["id"], r["order_id"], r["queue"], r["payload"]) for r in found]
        conn.executemany(
            "UPDATE outbox SET claimed_by = ?, claimed_until = ?, attempts = attempts + 1 "
            "WHERE id = ?",
            [(owner, now + LEASE, row.id) for row in rows],
        )
    return rows


def mark_sent(conn: sqlite3.Connection, ids: Sequence[int], now: float) -> None:
    with db.transaction(conn):
        conn.executemany(
            "UPDATE outbox SET status = 'sent', sent_at = ?, error = NULL "
            "WHERE id = ? AND status = 'pending'",
            [(now, i) for i in ids],
        )


def order_sent(conn: sqlite3.Connection, order_id: int, now: float) -> None:
    """The request sent its order's rows itself."""
    with db.transaction(conn):
        conn.execute(
            "UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1 "
            "WHERE order_id = ? AND status = 'pending'",
            (now, order_id),
        )


def unclaim(conn: sqlite3.Connection, ids: Sequence[int], owner: str, error: str) -> None:
    """A pass could not send its rows: free them for the next pass, with the reason."""
    with db.transaction(conn):
        conn.executemany(
            "UPDATE outbox SET claimed_until = NULL, error = ? "
            "WHERE id = ? AND claimed_by = ? AND status = 'pending'",
            [(error, i, owner) for i in ids],
        )


def cancel(conn: sqlite3.Connection, order_id: int, owner: str, error: str) -> int:
    """Inside a transaction: cancel the order's rows still pending and still ``owner``'s;
    how many (0: a relay has taken them over, so the jobs are on their way after all)."""
    cur = conn.execute(
        "UPDATE outbox SET status = 'cancelled', error = ? "
        "WHERE order_id = ? AND status = 'pending' AND claimed_by = ?",
        (error, order_id, owner),
    )
    return cur.rowcount


def pending(conn: sqlite3.Connection, order_id: int | None = None) -> int:
    """Jobs not yet known to be in Redis (of one order, or of all)."""
    if order_id is None:
        row = conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").fetchone()
    else:
        row = conn.execute(
            "SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND order_id = ?", (order_id,)
        ).fetchone()
    return int(row[0])


def prune(conn: sqlite3.Connection, now: float, keep: float = KEEP) -> None:
    """Forget sent or cancelled rows, and used Idempotency-Keys, older than ``keep``."""
    with db.transaction(conn):
        conn.execute(
            "DELETE FROM outbox WHERE status != 'pending' AND created_at < ?", (now - keep,)
        )
        conn.execute("DELETE FROM idempotency_key WHERE created_at < ?", (now - keep,))


class Relay:
    """Sends a store's pending outbox rows to Redis."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def send(self, rows: Sequence[Row]) -> None:
        """Enqueue ``rows``' jobs, all or none, each job once however often it is sent."""
        pushes = [
            (self.store.queue(row.queue), labqueue.Payload.from_json(row.payload)) for row in rows
        ]
        labqueue.enqueue_together(pushes, once=True)

    def run_once(self, now: float | None = None) -> int:
        """One pass: claim what is due, send it, mark it sent. How many jobs it sent (0 when
        there was nothing, or Redis refused them: they stay pending for the next pass)."""
        conn, owner = self.store.db, owner_token()
        rows = claim(conn, owner, time.time() if now is None else now)
        if not rows:
            return 0
        try:
            self.send(rows)
        except (redis.RedisError, labqueue.LabqueueError) as exc:
            why = self.store.redacted(f"{type(exc).__name__}: {exc}")
            unclaim(conn, [r.id for r in rows], owner, why[:500])
            log.warning("relay: could not enqueue %d jobs (%s); will try again", len(rows), why)
            return 0
        mark_sent(conn, [r.id for r in rows], time.time())
        orders = sorted({r.order_id for r in rows})
        log.info("relay: enqueued %d jobs of orders %s", len(rows), orders[:20])
        return len(rows)

    def run(self, stop: threading.Event, interval: float = 0.5) -> int:
        """Pass after pass until ``stop`` (a full batch: the next pass at once); how many
        jobs it sent. Old sent rows and keys are pruned now and then."""
        sent, passes = 0, 0
        while not stop.is_set():
            try:
                count = self.run_once()
                if passes % 600 == 0:
                    prune(self.store.db, time.time())
            except sqlite3.Error as exc:  # busy past the timeout, a disk error: log, go on
                log.warning("relay: %s: %s", type(exc).__name__, exc)
                count = 0
            sent, passes = sent + count, passes + 1
            if count < BATCH:
                stop.wait(interval)
        return sent
