"""SQLite for the store: one file in WAL mode, shared by every web and queue worker process.

Connections are in autocommit mode; writes go through :func:`transaction`, which takes the
write lock up front (``BEGIN IMMEDIATE``) so two processes never deadlock upgrading a read
lock, and waits up to ``BUSY_TIMEOUT_MS`` for it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .catalog import PRODUCTS

BUSY_TIMEOUT_MS = 30_000

#: The slow steps of a checkout, in the order the sync path runs them.
SLOW_STEPS = ("send_email", "erp_record_sale", "erp_decrease_inventory")


@dataclass(frozen=True)
class Line:
    sku: str
    name: str
    qty: int
    price_cents: int

    @property
    def subtotal_cents(self) -> int:
        return self.qty * self.price_cents


@dataclass(frozen=True)
class StepRow:
    step: str
    status: str
    job_id: str | None
    attempts: int
    error: str | None
    updated_at: float


@dataclass(frozen=True)
class Order:
    id: int
    email: str
    mode: str
    status: str
    total_cents: int
    created_at: float
    lines: list[Line] = field(default_factory=list)
    steps: dict[str, StepRow] = field(default_factory=dict)


def connect(path: str) -> sqlite3.Connection:
    """A connection in autocommit mode with the store's pragmas."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def init_db(path: str) -> None:
    """Create the schema (WAL mode) and seed SKU-1..SKU-20; safe to run concurrently."""
    conn = connect(path)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        schema = resources.files(__package__).joinpath("schema.sql").read_text()
        with transaction(conn):
            for statement in split_sql(schema):
                conn.execute(statement)
            conn.executemany(
                "INSERT OR IGNORE INTO product (sku, name, price_cents) VALUES (?, ?, ?)",
                PRODUCTS,
            )
    finally:
        conn.close()


def split_sql(script: str) -> list[str]:
    """The statements of an SQL script (semicolons inside comments or strings are fine)."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    return statements


def remove_db(path: str) -> None:
    """Delete the database file and its WAL and shared-memory files."""
    for suffix in ("", "-wal", "-shm"):
        Path(path + suffix).unlink(missing_ok=True)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK if the block raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def products_by_sku(conn: sqlite3.Connection, skus: Iterable[str]) -> dict[str, sqlite3.Row]:
    wanted = sorted(set(skus))
    marks = ",".join("?" * len(wanted))
    rows = conn.execute(
        f"SELECT id, sku, name, price_cents FROM product WHERE sku IN ({marks})", wanted
    )
    return {row["sku"]: row for row in rows}


def all_products(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return list(conn.execute("SELECT sku, name, price_cents FROM product ORDER BY id"))


def insert_order(
    conn: sqlite3.Connection, email: str, mode: str, status: str, total: int, now: float
) -> int:
    cur = conn.execute(
        'INSERT INTO "order" (email, mode, status, total_cents, created_at, updated_at) '
        "VALUES (?, ?, ?, ?, ?, ?)",
        (email, mode, status, total, now, now),
    )
    return int(cur.lastrowid or 0)


def insert_order_products(
    conn: sqlite3.Connection, order_id: int, rows: Iterable[tuple[int, int, int]]
) -> None:
    """``rows``: (product_id, qty, price_cents) per line."""
    conn.executemany(
        "INSERT INTO order_product (order_id, product_id, qty, price_cents) VALUES (?, ?, ?, ?)",
        [(order_id, pid, qty, price) for pid, qty, price in rows],
    )


def insert_steps(
    conn: sqlite3.Connection, order_id: int, status: str, job_ids: dict[str, str] | None = None
) -> None:
    now = time.time()
    conn.executemany(
        "INSERT INTO order_step (order_id, step, status, job_id, updated_at) "
        "VALUES (?, ?, ?, ?, ?)",
        [(order_id, s, status, (job_ids or {}).get(s), now) for s in SLOW_STEPS],
    )


def record_step(
    conn: sqlite3.Connection,
    order_id: int,
    step: str,
    status: str,
    error: str | None = None,
    attempted: bool = True,
) -> None:
    """A step ended (done, failed) or was given up (skipped): count the attempt, keep the error."""
    conn.execute(
        "UPDATE order_step SET status = ?, error = ?, attempts = attempts + ?, updated_at = ? "
        "WHERE order_id = ? AND step = ?",
        (status, error, int(attempted), time.time(), order_id, step),
    )


def set_order_status(conn: sqlite3.Connection, order_id: int, status: str) -> None:
    conn.execute(
        'UPDATE "order" SET status = ?, updated_at = ? WHERE id = ?',
        (status, time.time(), order_id),
    )


def complete_if_done(conn: sqlite3.Connection, order_id: int) -> None:
    """Mark the order complete once every one of its steps is done."""
    conn.execute(
        "UPDATE \"order\" SET status = 'complete', updated_at = ? WHERE id = ? AND NOT EXISTS "
        "(SELECT 1 FROM order_step WHERE order_id = ? AND status != 'done')",
        (time.time(), order_id, order_id),
    )


def load_order(conn: sqlite3.Connection, order_id: int) -> Order | None:
    row = conn.execute('SELECT * FROM "order" WHERE id = ?', (order_id,)).fetchone()
    if row is None:
        return None
    lines = [
        Line(r["sku"], r["name"], r["qty"], r["price_cents"])
        for r in conn.execute(
            "SELECT p.sku, p.name, op.qty, op.price_cents FROM order_product op "
            "JOIN product p ON p.id = op.product_id WHERE op.order_id = ? ORDER BY op.rowid",
            (order_id,),
        )
    ]
    rows = conn.execute("SELECT * FROM order_step WHERE order_id = ?", (order_id,)).fetchall()
    rows.sort(key=lambda r: SLOW_STEPS.index(r["step"]) if r["step"] in SLOW_STEPS else 99)
    steps = {
        r["step"]: StepRow(
            r["step"], r["status"], r["job_id"], r["attempts"], r["error"], r["updated_at"]
        )
        for r in rows
    }
    return Order(
        id=row["id"],
        email=row["email"],
        mode=row["mode"],
        status=row["status"],
        total_cents=row["total_cents"],
        created_at=row["created_at"],
        lines=lines,
        steps=steps,
    )


#: The store's tables.
TABLES = ("order", "order_product", "order_step", "product", "outbox", "idempotency_key")


def count_rows(conn: sqlite3.Connection, table: str) -> int:
    """Rows in one of the store's tables (for tests and notebooks)."""
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}")
    return int(conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])
