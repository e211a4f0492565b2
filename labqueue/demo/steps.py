"""The work of a checkout after the database: render the receipt, mail it, tell the ERP.

Each slow step is a real network call (SMTP to the mail server, HTTP to the ERP) and
raises :class:`~.errors.StepFailed` with the cause when the other side fails or is away.
The ERP calls carry the order id, which the ERP uses as an idempotency key.
"""

from __future__ import annotations

import smtplib
import time
from email.message import EmailMessage
from functools import lru_cache
from typing import Any

import jinja2
import requests

from .config import StoreConfig
from .db import Order
from .errors import StepFailed


def money(cents: int) -> str:
    return f"${cents // 100}.{cents % 100:02d}"


@lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("labqueue.demo", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    env.filters["money"] = money
    return env


def warm_up() -> None:
    """Compile the receipt template now, not in the first request."""
    _templates().get_template("receipt.html")


def render_receipt(order: Order) -> str:
    """Step 3: the receipt, HTML, from templates/receipt.html."""
    placed = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(order.created_at))
    return _templates().get_template("receipt.html").render(order=order, placed=placed)


def receipt_message(config: StoreConfig, order: Order, html: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = config.sender
    msg["To"] = order.email
    msg["Subject"] = f"Your receipt for order #{order.id}"
    msg["Message-ID"] = f"<order-{order.id}.receipt@toystore.test>"
    msg["X-Order-Id"] = str(order.id)
    msg.set_content(f"Thank you for your order #{order.id}: total {money(order.total_cents)}.")
    msg.add_alternative(html, subtype="html")
    return msg


def _smtp_cause(exc: Exception) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        raw = exc.smtp_error  # bytes from the server; str only when smtplib made it up
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw or ""
        return f"mail server answered {exc.smtp_code} {text}".strip()
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return f"mail server refused the recipient: {exc.recipients}"
    return f"{type(exc).__name__}: {exc}"


def send_email(config: StoreConfig, order: Order, html: str) -> None:
    """Step 5: mail the receipt to the shopper over SMTP."""
    msg = receipt_message(config, order, html)
    try:
        # local_hostname: skip getfqdn(), a DNS lookup that can take seconds on a laptop.
        with smtplib.SMTP(
            config.smtp_host, config.smtp_port, local_hostname="toystore.test",
            timeout=config.timeout,
        ) as smtp:  # fmt: skip
            # the envelope names its one recipient, never what a header parser makes of it
            smtp.send_message(msg, from_addr=config.sender, to_addrs=[order.email])
    except (smtplib.SMTPException, OSError) as exc:
        where = f"{config.smtp_host}:{config.smtp_port}"
        raise StepFailed("send_email", f"{_smtp_cause(exc)} ({where})", order.id) from None


def _erp_post(config: StoreConfig, step: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    url = config.erp_url + path
    try:
        resp = requests.post(url, json=body, timeout=config.timeout)
    except requests.RequestException as exc:
        raise StepFailed(step, f"ERP unreachable at {url}: {exc}", body["order_id"]) from None
    if resp.status_code >= 400:
        try:
            detail = resp.json().get("error", resp.text)
        except ValueError:
            detail = resp.text[:200]
        raise StepFailed(step, f"ERP answered {resp.status_code}: {detail}", body["order_id"])
    data: dict[str, Any] = resp.json()
    return data


def erp_record_sale(config: StoreConfig, order: Order) -> dict[str, Any]:
    """Step 6: record the sale in the ERP (a second call for the same order is a no-op)."""
    body = {
        "order_id": order.id,
        "email": order.email,
        "total_cents": order.total_cents,
        "items": [
            {"sku": ln.sku, "qty": ln.qty, "price_cents": ln.price_cents} for ln in order.lines
        ],
    }
    return _erp_post(config, "erp_record_sale", "/sales", body)


def erp_decrease_inventory(config: StoreConfig, order: Order) -> dict[str, Any]:
    """Step 7: take the items out of the ERP's stock (once per order id)."""
    body = {"order_id": order.id, "items": [{"sku": ln.sku, "qty": ln.qty} for ln in order.lines]}
    return _erp_post(config, "erp_decrease_inventory", "/inventory/decrease", body)
