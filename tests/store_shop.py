"""The store in-process, for every store test: the Flask app on real fake services (SMTP
and HTTP on loopback), fakeredis for the queues, and an in-process worker for the jobs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import requests
from flask.testing import FlaskClient

import labqueue
from labqueue.demo import db, jobs
from labqueue.demo.app import create_app
from labqueue.demo.config import StoreConfig
from labqueue.demo.fakeerp import FakeERP
from labqueue.demo.fakemail import FakeMail

CART = {
    "email": "shopper@example.com",
    "items": [{"sku": "SKU-1", "qty": 2}, {"sku": "SKU-4", "qty": 1}],
}
CART_TOTAL = 2 * 3499 + 399


@dataclass
class Shop:
    client: FlaskClient
    config: StoreConfig
    redis: Any
    mail: FakeMail
    erp: FakeERP

    def post(self, mode: str, body: Any = CART) -> Any:
        return self.client.post(f"/checkout/{mode}", json=body)

    def messages(self, order_id: int | None = None) -> list[dict[str, Any]]:
        query = "" if order_id is None else f"?order_id={order_id}"
        return requests.get(f"{self.mail.url}/messages{query}", timeout=5).json()["messages"]

    def erp_get(self, path: str) -> Any:
        return requests.get(self.erp.url + path, timeout=5).json()

    def rows(self, table: str) -> int:
        conn = db.connect(self.config.db_path)
        try:
            return db.count_rows(conn, table)
        finally:
            conn.close()

    def written(self) -> tuple[int, ...]:
        """What a request could have written: rows of each order table, jobs, mails, sales."""
        queued = sum(labqueue.Queue(q, self.redis).length for q in labqueue.queues(self.redis))
        rows = tuple(self.rows(t) for t in ("order", "order_product", "order_step"))
        return (*rows, queued, self.mail.mailbox.received, len(self.erp.sales))

    def work(self) -> int:
        """Run every queued job in this process, then return how many ran."""
        return labqueue.Worker(["email", "erp"], self.redis, poll_interval=0.05).work(burst=True)


@pytest.fixture(name="shop")
def shop_fixture(tmp_path: Path) -> Iterator[Shop]:
    """The fixture ``shop``: import ``shop_fixture`` from here to use it."""
    with FakeMail(latency=0.005, seed=1) as mail, FakeERP(latency=0.005, seed=2) as erp:
        config = StoreConfig(
            db_path=str(tmp_path / "store.db"), smtp_port=mail.smtp_port, erp_url=erp.url, timeout=5
        )
        r = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
        app = create_app(config, redis_client=r)
        jobs.configure(config, r)
        try:
            yield Shop(app.test_client(), config, r, mail, erp)
        finally:
            jobs.configure(None)
            app.extensions["store"].close()
