"""A fake legacy ERP: an HTTP service on loopback that is slow, sometimes fails, and keys
every call on the order id, so a second call for the same order changes nothing.

    erp = FakeERP(latency=0.25, error_rate=0.0, seed=2).start()
    POST {erp.url}/sales               {"order_id": 7, "total_cents": .., "items": [..]}
         -> 201 {"recorded": true}  |  200 {"recorded": false, "duplicate": true}
    POST {erp.url}/inventory/decrease  {"order_id": 7, "items": [{"sku": "SKU-1", "qty": 2}]}
         -> 200 {"applied": true, ...}  |  200 {"applied": false, "duplicate": true}
    GET  {erp.url}/sales?order_id=7    {"count": .., "revenue_cents": .., "sales": [..]}
    GET  {erp.url}/sales/7             one sale
    GET  {erp.url}/inventory           {"inventory": {"SKU-1": 99998, ..}, "orders_applied": ..}
    GET  {erp.url}/stats               calls, failures, duplicates, faults
    GET  {erp.url}/calls?since=0       every call: {call, order_id, received, answered, result}
                                       (with a capacity also: started, in_service)
    POST {erp.url}/config              {"latency": 0.1, "error_rate": 0.5}
    POST {erp.url}/reset               forget the sales, restock
    erp.stop()

A simulated failure (``503``) happens after the delay and changes nothing.

``capacity=K`` (``python -m labqueue.demo erp --capacity K``) makes it an old system behind
a pool of K connections: at most K calls (sales and stock together) are in service at once;
the others wait inside the ERP, first come first served, each in its own HTTP thread, and
are served in turn. Its call log then says when each call's service started (the wait is
``started - received``) and how many calls were in service then; ``GET /stats`` adds
``"capacity": {"capacity": K, "in_service": .., "waiting": ..}``. 0 (the default) is
unlimited (set at start; ``POST /config`` does not change it), and
every answer is exactly what it was before capacities existed.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from .calllog import CallLog
from .capacity import Gate, Visit
from .catalog import INITIAL_STOCK, PRODUCTS
from .errors import shown
from .netfake import (
    Faults,
    HttpError,
    JsonService,
    Request,
    int_or_none,
    positive_or_none,
)


def _order_id(body: Any) -> int:
    if not isinstance(body, dict):
        raise HttpError(400, "expected a JSON object with order_id and items", "body")
    order_id = body.get("order_id")
    if isinstance(order_id, bool) or not isinstance(order_id, int) or order_id <= 0:
        raise HttpError(
            400, f"order_id must be a positive whole number, got {shown(order_id)}", "order_id"
        )
    return order_id


def _items(body: dict[str, Any]) -> list[dict[str, Any]]:
    items = body.get("items")
    if not isinstance(items, list) or not items:
        raise HttpError(400, "items must be a non-empty list of {sku, qty}", "items")
    for item in items:
        ok = isinstance(item, dict) and isinstance(item.get("sku"), str)
        qty = item.get("qty") if isinstance(item, dict) else None
        if not ok or isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
            raise HttpError(
                400, f"bad item {shown(item)}: expected {{sku: str, qty: int > 0}}", "items"
            )
    return items


def _total(body: dict[str, Any]) -> int | None:
    total = body.get("total_cents")
    if total is not None and (isinstance(total, bool) or not isinstance(total, int) or total < 0):
        raise HttpError(400, f"total_cents must be cents >= 0, got {shown(total)}", "total_cents")
    return total


def _text_or_none(value: Any) -> str | None:
    return value[:200] if isinstance(value, str) else None


class FakeERP:
    """The ERP's books (sales, stock) behind a JSON HTTP API, in a background thread."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.25,
        jitter: float = 0.2,
        error_rate: float = 0.0,
        seed: int | None = 2,
        verbose: bool = False,
        capacity: int = 0,
    ) -> None:
        self.faults = Faults(latency, jitter, error_rate, seed)
        self.gate = Gate(capacity)
        self.api = JsonService("fakeerp", host, port, verbose)
        self._lock = threading.Lock()
        self.sales: dict[int, dict[str, Any]] = {}
        self.inventory: dict[str, int] = {}
        self.decreased: set[int] = set()
        self.calls: Counter[str] = Counter()
        self.call_log = CallLog()
        self._restock()
        self._routes()

    @property
    def url(self) -> str:
        return self.api.url

    @property
    def port(self) -> int:
        return self.api.port

    def start(self) -> FakeERP:
        self.api.start()
        return self

    def stop(self) -> None:
        self.api.stop()

    def __enter__(self) -> FakeERP:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _restock(self) -> None:
        self.inventory = {p.sku: INITIAL_STOCK for p in PRODUCTS}

    # -- the ERP's two operations --------------------------------------------------------
    def _slow_call(self, name: str, order_id: int, to: Any = None) -> tuple[float, Visit | None]:
        """Wait for a slot (with a capacity) and spend this call's delay; returns when the
        call arrived and, with a capacity, its visit (what the log adds). A simulated failure
        is logged, answers 503 and changes nothing."""
        received = time.time()
        with self.gate.serve() as visit:
            delay, fails = self.faults.draw()
            if delay:
                time.sleep(delay)
            with self._lock:
                self.calls[name] += 1
                if fails:
                    self.calls["failures"] += 1
            seen = visit if self.gate.capacity else None
            if fails:
                self.call_log.add(name, order_id, received, "failed", _text_or_none(to), seen)
                raise HttpError(503, "ERP unavailable (simulated failure), try again later")
        return received, seen

    def record_sale(self, req: Request) -> tuple[int, Any]:
        order_id = _order_id(req.body)
        items = _items(req.body)
        total = _total(req.body)
        email = req.body.get("email")
        received, visit = self._slow_call("sales", order_id, email)
        with self._lock:
            duplicate = order_id in self.sales
            if duplicate:
                self.calls["duplicates"] += 1
            else:
                self.sales[order_id] = {
                    "order_id": order_id,
                    "email": email,
                    "total_cents": total,
                    "items": items,
                    "recorded_at": time.time(),
                }
        result = "duplicate" if duplicate else "recorded"
        self.call_log.add("sales", order_id, received, result, _text_or_none(email), visit)
        if duplicate:
            return 200, {"order_id": order_id, "recorded": False, "duplicate": True}
        return 201, {"order_id": order_id, "recorded": True, "duplicate": False}

    def decrease_inventory(self, req: Request) -> tuple[int, Any]:
        order_id = _order_id(req.body)
        items = _items(req.body)
        received, visit = self._slow_call("inventory", order_id)
        with self._lock:
            duplicate = order_id in self.decreased
            if duplicate:
                self.calls["duplicates"] += 1
            else:
                self.decreased.add(order_id)
                for item in items:
                    self.inventory[item["sku"]] = self.inventory.get(item["sku"], 0) - item["qty"]
                levels = {item["sku"]: self.inventory[item["sku"]] for item in items}
        result = "duplicate" if duplicate else "applied"
        self.call_log.add("inventory", order_id, received, result, visit=visit)
        if duplicate:
            return 200, {"order_id": order_id, "applied": False, "duplicate": True}
        return 200, {"order_id": order_id, "applied": True, "duplicate": False, "levels": levels}

    # -- HTTP API ------------------------------------------------------------------------
    def _routes(self) -> None:
        r = self.api.route
        r("GET", "/healthz", lambda req: (200, {"ok": True, "service": "fakeerp"}))
        r("POST", "/sales", self.record_sale)
        r("GET", "/sales", self._list_sales)
        r("GET", r"/sales/(\d+)", self._one_sale)
        r("POST", "/inventory/decrease", self.decrease_inventory)
        r("GET", "/inventory", self._inventory)
        r("GET", "/stats", lambda req: (200, self.stats()))
        self.call_log.route(self.api)
        self.faults.route(self.api)
        r("POST", "/reset", self._reset)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            out = {
                "calls": {"sales": self.calls["sales"], "inventory": self.calls["inventory"]},
                "failures": self.calls["failures"],
                "duplicates": self.calls["duplicates"],
                "sales": len(self.sales),
                "inventory_orders": len(self.decreased),
                "faults": self.faults.to_json(),
            }
        if self.gate.capacity:
            out["capacity"] = self.gate.to_json()
        return out

    def _list_sales(self, req: Request) -> tuple[int, Any]:
        order_id = int_or_none(req.query.get("order_id"), "order_id")
        limit = positive_or_none(req.query.get("limit"), "limit") or 100
        with self._lock:
            sales = [s for s in self.sales.values() if order_id in (None, s["order_id"])]
            revenue = sum(int(s["total_cents"] or 0) for s in sales)
        return 200, {"count": len(sales), "revenue_cents": revenue, "sales": sales[-limit:]}

    def _one_sale(self, req: Request) -> tuple[int, Any]:
        with self._lock:
            sale = self.sales.get(int(req.match.group(1)))
        if sale is None:
            raise HttpError(404, f"no sale for order {req.match.group(1)}")
        return 200, sale

    def _inventory(self, req: Request) -> tuple[int, Any]:
        with self._lock:
            return 200, {"inventory": dict(self.inventory), "orders_applied": len(self.decreased)}

    def _reset(self, req: Request) -> tuple[int, Any]:
        with self._lock:
            self.sales.clear()
            self.decreased.clear()
            self.calls.clear()
            self.call_log.clear()
            self._restock()
        return 200, {"reset": True}
