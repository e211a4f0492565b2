"""Reading a checkout body: ``{"email": "a@b.c", "items": [{"sku": "SKU-1", "qty": 2}]}``.

Anything else raises :class:`~.errors.BadInput` naming the field (``email``, ``items``,
``items[0].qty`` ...), before anything is written. Unknown SKUs are found by the
database step (``items[i].sku``), inside a transaction that is then rolled back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import BadInput

#: Something@domain.tld, no spaces: what a shop form would accept.
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
MAX_EMAIL = 254
MAX_LINES = 50
MAX_QTY = 1000


@dataclass(frozen=True)
class ItemRequest:
    index: int  # position in the request, for error messages
    sku: str
    qty: int


@dataclass(frozen=True)
class CheckoutRequest:
    email: str
    items: list[ItemRequest]


def parse_checkout(data: Any) -> CheckoutRequest:
    if not isinstance(data, dict):
        raise BadInput(
            "body", 'expected a JSON object {"email": ..., "items": [{"sku": ..., "qty": ...}]}'
        )
    return CheckoutRequest(_email(data.get("email")), _items(data.get("items")))


def _email(value: Any) -> str:
    if value is None:
        raise BadInput("email", "missing")
    if not isinstance(value, str) or len(value) > MAX_EMAIL or not EMAIL_RE.match(value):
        raise BadInput("email", f"{value!r} is not an email address")
    return value


def _items(value: Any) -> list[ItemRequest]:
    if value is None:
        raise BadInput("items", "missing")
    if not isinstance(value, list) or not value:
        raise BadInput("items", 'expected a non-empty list of {"sku": ..., "qty": ...}')
    if len(value) > MAX_LINES:
        raise BadInput("items", f"at most {MAX_LINES} lines per order, got {len(value)}")
    merged: dict[str, ItemRequest] = {}
    for i, raw in enumerate(value):
        item = _item(i, raw)
        seen = merged.get(item.sku)
        qty = item.qty + (seen.qty if seen else 0)
        if qty > MAX_QTY:
            raise BadInput(f"items[{i}].qty", f"at most {MAX_QTY} of one SKU per order")
        merged[item.sku] = ItemRequest(seen.index if seen else i, item.sku, qty)
    return list(merged.values())


def _item(i: int, raw: Any) -> ItemRequest:
    where = f"items[{i}]"
    if not isinstance(raw, dict):
        raise BadInput(where, 'expected an object {"sku": ..., "qty": ...}')
    sku, qty = raw.get("sku"), raw.get("qty")
    if sku is None:
        raise BadInput(f"{where}.sku", "missing")
    if not isinstance(sku, str) or not sku.strip():
        raise BadInput(f"{where}.sku", f"{sku!r} is not a SKU (e.g. 'SKU-1')")
    if qty is None:
        raise BadInput(f"{where}.qty", "missing")
    if isinstance(qty, bool) or not isinstance(qty, int):
        raise BadInput(f"{where}.qty", f"{qty!r} is not a whole number")
    if qty <= 0:
        raise BadInput(f"{where}.qty", f"must be at least 1, got {qty}")
    if qty > MAX_QTY:
        raise BadInput(f"{where}.qty", f"at most {MAX_QTY} of one SKU per order")
    return ItemRequest(i, sku, qty)
