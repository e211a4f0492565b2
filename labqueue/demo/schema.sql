-- The toy store's schema. Money is in integer cents. "order" is quoted: it is an SQL keyword.
CREATE TABLE IF NOT EXISTS product (
    id          INTEGER PRIMARY KEY,
    sku         TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    price_cents INTEGER NOT NULL CHECK (price_cents >= 0)
);

-- status: processing (sync, steps under way), queued (deferred, jobs pending),
--         complete (every step done), failed (a sync step failed; see order_step)
CREATE TABLE IF NOT EXISTS "order" (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    email        TEXT    NOT NULL,
    mode         TEXT    NOT NULL CHECK (mode IN ('sync', 'deferred')),
    status       TEXT    NOT NULL,
    total_cents  INTEGER NOT NULL,
    created_at   REAL    NOT NULL,
    updated_at   REAL    NOT NULL
);

CREATE TABLE IF NOT EXISTS order_product (
    order_id    INTEGER NOT NULL REFERENCES "order" (id),
    product_id  INTEGER NOT NULL REFERENCES product (id),
    qty         INTEGER NOT NULL CHECK (qty > 0),
    price_cents INTEGER NOT NULL,
    PRIMARY KEY (order_id, product_id)
);

-- One row per slow step of an order: send_email, erp_record_sale, erp_decrease_inventory.
-- status: pending, queued, done, failed; attempts counts runs (jobs may run twice).
CREATE TABLE IF NOT EXISTS order_step (
    order_id   INTEGER NOT NULL REFERENCES "order" (id),
    step       TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    job_id     TEXT,
    attempts   INTEGER NOT NULL DEFAULT 0,
    error      TEXT,
    updated_at REAL    NOT NULL,
    PRIMARY KEY (order_id, step)
);

-- The outbox: a deferred checkout's jobs, written in the transaction that writes its order,
-- so no order exists without them; a relay then puts them in Redis and marks them sent
-- (see outbox.py). status: pending (not known to be in Redis yet), sent, cancelled (Redis
-- refused them while the shopper waited, who was answered 503: the order failed).
-- claimed_by / claimed_until: the relay (or request) sending the row now, and until when
-- its claim holds; a row whose claim ran out is anybody's again.
CREATE TABLE IF NOT EXISTS outbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id      INTEGER NOT NULL REFERENCES "order" (id),
    queue         TEXT    NOT NULL,
    payload       TEXT    NOT NULL,
    status        TEXT    NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('pending', 'sent', 'cancelled')),
    created_at    REAL    NOT NULL,
    claimed_by    TEXT,
    claimed_until REAL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    sent_at       REAL,
    error         TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (claimed_until) WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS outbox_order ON outbox (order_id);

-- Idempotency-Key: one row per key a checkout came with, written in the transaction that
-- writes its order (so a key never names two orders), then given the first answer
-- (see idempotency.py). status_code is NULL while the first request is under way.
CREATE TABLE IF NOT EXISTS idempotency_key (
    key          TEXT    PRIMARY KEY,
    mode         TEXT    NOT NULL,
    fingerprint  TEXT    NOT NULL,
    order_id     INTEGER NOT NULL REFERENCES "order" (id),
    owner        TEXT    NOT NULL,
    status_code  INTEGER,
    response     TEXT,
    created_at   REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS idempotency_key_age ON idempotency_key (created_at);
