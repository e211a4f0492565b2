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
