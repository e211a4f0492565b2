"""Reading a checkout body: ``{"email": "a@b.c", "items": [{"sku": "SKU-1", "qty": 2}]}``.

Anything else raises :class:`~.errors.BadInput` naming the field (``email``, ``items``,
``items[0].qty``, an unknown field's name ...), before anything is written. Unknown SKUs
are found by the database step (``items[i].sku``), inside a transaction that is then
rolled back. A value echoed in a message is cut to ``MAX_ECHO`` characters.

The email must be one plain address that a mail header carries as it is: checked by
``email-validator`` (no deliverability lookup), and by :func:`plain_address_problem`, so
the receipt goes to exactly one recipient, the one typed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from email_validator import validate_email

from .errors import BadInput, field_name, shown

MAX_EMAIL = 254  # RFC 5321: a path holds at most 256 octets, the brackets included
MAX_LOCAL = 64  # RFC 5321: the part before the @
MAX_LINES = 50
MAX_QTY = 1000
MAX_SKU = 64
FIELDS = ("email", "items")
ITEM_FIELDS = ("sku", "qty")


def plain_address_problem(value: str) -> str | None:
    """Why ``value`` cannot stand alone in a mail header as one address, or None: whatever
    a parser allows, it must be printable ASCII without spaces (no CR, LF, NUL), without a
    comma (a second recipient) or an angle bracket (a display name, another address), and
    without ``=?`` (an encoded word, which mail libraries decode into anything)."""
    if not value.isascii():
        return "it must be plain ASCII"
    if not value.isprintable() or " " in value:
        return "it must not contain spaces or control characters (CR, LF, NUL, ...)"
    bad = [c for c in ",<>" if c in value]
    if bad:
        return f"it must not contain {' '.join(bad)}"
    if "=?" in value:
        return "it must not contain '=?' (an encoded word)"
    if len(value.rpartition("@")[0]) > MAX_LOCAL:
        return f"the part before the @ is longer than {MAX_LOCAL} characters"
    return None


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
    _no_unknown_fields(data, FIELDS, "")
    return CheckoutRequest(_email(data.get("email")), _items(data.get("items")))


def _no_unknown_fields(data: dict[Any, Any], known: tuple[str, ...], where: str) -> None:
    unknown = next((key for key in data if key not in known), None)
    if unknown is not None:
        name = field_name(unknown)
        raise BadInput(f"{where}{name}", f"unknown field; expected only {', '.join(known)}")


def _email(value: Any) -> str:
    if value is None:
        raise BadInput("email", "missing")
    if not isinstance(value, str):
        raise BadInput("email", f"{shown(value)} is not an email address (expected a string)")
    if len(value) > MAX_EMAIL:
        raise BadInput("email", f"{shown(value)} is longer than {MAX_EMAIL} characters")
    problem = plain_address_problem(value)
    if problem is None:
        try:
            validate_email(value, check_deliverability=False, allow_smtputf8=False)
        except ValueError as exc:  # EmailNotValidError, and anything a parser lets slip
            problem = str(exc)[:200]
    if problem is not None:
        raise BadInput("email", f"{shown(value)} is not an email address: {problem}")
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
    _no_unknown_fields(raw, ITEM_FIELDS, f"{where}.")
    return ItemRequest(i, _sku(where, raw.get("sku")), _qty(where, raw.get("qty")))


def _sku(where: str, sku: Any) -> str:
    if sku is None:
        raise BadInput(f"{where}.sku", "missing")
    ok = isinstance(sku, str) and sku.strip() and len(sku) <= MAX_SKU and sku.isprintable()
    if not ok:
        raise BadInput(f"{where}.sku", f"{shown(sku)} is not a SKU (e.g. 'SKU-1')")
    return str(sku)


def _qty(where: str, qty: Any) -> int:
    if qty is None:
        raise BadInput(f"{where}.qty", "missing")
    if isinstance(qty, bool) or not isinstance(qty, int):
        raise BadInput(f"{where}.qty", f"{shown(qty)} is not a whole number")
    if qty <= 0:
        raise BadInput(f"{where}.qty", f"must be at least 1, got {shown(qty)}")
    if qty > MAX_QTY:
        raise BadInput(f"{where}.qty", f"at most {MAX_QTY} of one SKU per order")
    return qty
