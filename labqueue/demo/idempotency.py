"""``Idempotency-Key`` on both checkouts: a retried request never places a second order.

A client that timed out does not know whether its order was placed (a timeout is not a
rollback: in the reference load test gunicorn placed 442 sync orders while Locust saw only
409 answers in time). Sent again with the same ``Idempotency-Key`` header, the checkout
answers for the first order instead of placing another. What the store does, as the IETF
draft (draft-ietf-httpapi-idempotency-key-header) and Stripe do:

- the key is 1-255 characters of ``A-Z a-z 0-9 - _ . : ~ + / =`` (a UUID, a ULID, base64):
  anything else, or the header twice, is a 400 naming ``Idempotency-Key``;
- a new key is stored in the transaction that writes the order (its primary key: a key
  names one order, whatever the concurrency), then given the first answer, status and body;
- the same key again, for the same checkout (endpoint, email, items): the first answer
  again, status and body byte for byte (its ``timings_ms`` are the first request's), with
  ``Idempotent-Replayed: true``. That is what the first client would have read, a 200, a
  502 (the order failed in the ERP) or a 503 alike; the order's state now is at
  ``GET /orders/<id>``;
- while the first request is still under way, a retry waits for its answer up to
  :data:`WAIT` seconds, then answers 409 naming the key (``Retry-After: 1``);
- when the first request never answered (its process died: the key's owner is gone from
  this host, or it is older than :data:`STALE_AFTER`), there is no first answer to give:
  the answer is the order as ``GET /orders/<id>`` shows it, 200, ``Idempotent-Replayed``;
- the same key with another body or on the other endpoint: 422 naming the key, nothing
  written (a key is one request's, not a session's);
- a request the store refuses (400) stores nothing: its key stays free.

Keys are kept a day (pruned by the relay, :mod:`.outbox`); a key reused after that places a
new order. A request without the header works as before.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import sqlite3
import time
from dataclasses import dataclass

import psutil

from .errors import BadInput, StoreError
from .orderform import CheckoutRequest

HEADER = "Idempotency-Key"
#: Characters a key may have, and how many (1-255, as Stripe's).
KEY_PATTERN = re.compile(r"[A-Za-z0-9\-_.:~+/=]{1,255}")
#: Seconds a retry waits for the first request's answer before a 409.
WAIT = 10.0
#: Seconds after which a key without an answer is taken to have lost its request (gunicorn
#: kills a worker stuck for 60 s).
STALE_AFTER = 120.0
#: The header a replayed answer carries (Stripe's name).
REPLAYED = "Idempotent-Replayed"


class KeySeen(StoreError):
    """The checkout's key names an order already: answer for it (see :func:`settle`)."""

    def __init__(self, row: KeyRow) -> None:
        super().__init__(f"{HEADER} {row.key!r} was used for order {row.order_id}")
        self.row = row


class KeyReused(StoreError):
    """The key was used for another request (another body, the other endpoint): 422."""


class KeyBusy(StoreError):
    """The key's first request is still under way: 409, try again."""

    def __init__(self, message: str, order_id: int) -> None:
        super().__init__(message)
        self.order_id = order_id


@dataclass(frozen=True)
class KeyRow:
    key: str
    mode: str
    fingerprint: str
    order_id: int
    owner: str
    status_code: int | None
    response: str | None
    created_at: float


def header_key(values: list[str]) -> str | None:
    """The key from the request's ``Idempotency-Key`` headers (None: none sent); BadInput
    naming the header when it is sent twice or is not a key."""
    if not values:
        return None
    if len(values) > 1:
        raise BadInput(HEADER, f"send one {HEADER} header, not {len(values)}")
    if not KEY_PATTERN.fullmatch(values[0]):
        raise BadInput(
            HEADER, f"{HEADER} must be 1-255 characters of A-Z a-z 0-9 - _ . : ~ + / = "
            f"(a UUID will do); got {len(values[0])} characters that are not",
        )  # fmt: skip
    return values[0]


def fingerprint(mode: str, req: CheckoutRequest) -> str:
    """What makes two checkouts the same request: the endpoint, the email and the items."""
    items = [[item.sku, item.qty] for item in req.items]
    text = json.dumps([mode, req.email, items], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def find(conn: sqlite3.Connection, key: str) -> KeyRow | None:
    row = conn.execute("SELECT * FROM idempotency_key WHERE key = ?", (key,)).fetchone()
    return None if row is None else KeyRow(*(row[f] for f in KeyRow.__dataclass_fields__))


def check(conn: sqlite3.Connection, key: str, mode: str, fp: str) -> None:
    """Inside the order's transaction, before the order is written: KeySeen when the key
    names an order already (of this same request), KeyReused when another request's."""
    row = find(conn, key)
    if row is None:
        return
    if row.mode != mode or row.fingerprint != fp:
        where = "the other checkout" if row.mode != mode else "a different body"
        raise KeyReused(
            f"{HEADER} {key!r} was used for order {row.order_id} with {where}: "
            "a key stands for one request; use a new key for a new order"
        )
    raise KeySeen(row)


def add(conn: sqlite3.Connection, key: str, mode: str, fp: str, order_id: int, now: float) -> None:
    """Inside the order's transaction: the key now names this order (no answer yet)."""
    conn.execute(
        "INSERT INTO idempotency_key (key, mode, fingerprint, order_id, owner, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (key, mode, fp, order_id, owner(), now),
    )


def remember(conn: sqlite3.Connection, key: str, status: int, body: str) -> None:
    """The key's first answer, to give again."""
    conn.execute(
        "UPDATE idempotency_key SET status_code = ?, response = ? "
        "WHERE key = ? AND status_code IS NULL",
        (status, body, key),
    )


def lost(row: KeyRow, now: float) -> bool:
    """Did the key's first request die without answering? (its process is gone from this
    host, or it is older than STALE_AFTER)"""
    if now - row.created_at > STALE_AFTER:
        return True
    host, _, pid = row.owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        return psutil.Process(int(pid)).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False


@dataclass(frozen=True)
class Replay:
    """What a request with a used key is answered: the first answer, or the order's state."""

    status: int
    body: str | None  #: the first answer's JSON (None: show the order as it is now)
    order_id: int


def settle(conn: sqlite3.Connection, row: KeyRow, wait: float | None = None) -> Replay:
    """The answer for a used key: its first answer once there is one (waiting up to
    ``wait`` seconds, default WAIT, for it), the order's state when its request died;
    KeyBusy otherwise."""
    deadline = time.monotonic() + (WAIT if wait is None else wait)
    current: KeyRow | None = row
    while current is not None and current.status_code is None:
        if lost(current, time.time()):
            return Replay(200, None, current.order_id)
        if time.monotonic() >= deadline:
            break
        time.sleep(0.05)
        current = find(conn, row.key)
    if current is None or current.status_code is None:
        raise KeyBusy(
            f"the first request with {HEADER} {row.key!r} (order {row.order_id}) is still "
            "under way: try again in a moment",
            row.order_id,
        )
    return Replay(current.status_code, current.response, current.order_id)
