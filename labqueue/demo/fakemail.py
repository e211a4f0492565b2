"""A fake mail server: real SMTP (aiosmtpd) on loopback, with latency and failures,
keeping every message it accepted and showing them over HTTP.

    mail = FakeMail(latency=0.3, error_rate=0.0, seed=1).start()
    mail.smtp_port        # where the store sends its receipts
    GET  {mail.url}/messages?order_id=7     {"count": 1, "messages": [{..., "html": "..."}]}
    GET  {mail.url}/messages/1              one message, with its HTML body
    GET  {mail.url}/stats                   {"received": .., "refused": .., "faults": {..}}
    GET  {mail.url}/calls?since=0           every DATA: {order_id, to, received, answered, result}
    POST {mail.url}/config                  {"latency": 0.1, "error_rate": 0.5}
    DELETE {mail.url}/messages              forget them all
    mail.stop()

The delay is spent before the server answers the message's DATA, so the sender waits
for it, as it would for a slow relay; a failure is a ``451`` temporary error.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.parser
import email.policy
import threading
import time
from collections import deque
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from .calllog import CallLog
from .errors import StoreError
from .netfake import (
    Faults,
    HttpError,
    JsonService,
    Request,
    bound_socket,
    int_or_none,
    positive_or_none,
)

#: Bodies (the HTML) are kept for this many recent messages; the rest keep their headers.
KEEP_BODIES = 1000


class Mailbox:
    """The messages the server accepted, oldest first (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = []
        self._bodies: deque[dict[str, Any]] = deque()
        self.refused = 0
        self.calls = CallLog()

    def add(self, envelope: Envelope) -> int:
        raw = _raw(envelope)
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        html_part = msg.get_body(("html",))
        record: dict[str, Any] = {
            "received_at": time.time(),
            "mail_from": envelope.mail_from,
            "to": list(envelope.rcpt_tos),
            "subject": str(msg.get("Subject", "")),
            "message_id": str(msg.get("Message-ID", "")),
            "order_id": _order_id(msg),
            "size": len(raw),
            "html": _text(html_part),
        }
        with self._lock:
            record["id"] = len(self._messages) + 1
            self._messages.append(record)
            self._bodies.append(record)
            if len(self._bodies) > KEEP_BODIES:
                self._bodies.popleft()["html"] = None
        return int(record["id"])

    def list(self, order_id: int | None = None, to: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                m
                for m in self._messages
                if (order_id is None or m["order_id"] == order_id) and (to is None or to in m["to"])
            ]

    def get(self, message_id: int) -> dict[str, Any] | None:
        with self._lock:
            if 1 <= message_id <= len(self._messages):
                return self._messages[message_id - 1]
        return None

    def clear(self) -> int:
        with self._lock:
            n = len(self._messages)
            self._messages.clear()
            self._bodies.clear()
            self.refused = 0
        self.calls.clear()
        return n

    @property
    def received(self) -> int:
        return len(self._messages)


def _raw(envelope: Envelope) -> bytes:
    content = envelope.original_content or envelope.content or b""
    return content if isinstance(content, bytes) else content.encode()


def _order_id(msg: Any) -> int | None:
    order = str(msg.get("X-Order-Id", "")).strip()
    return int(order) if order.isdigit() else None


def log_call(mailbox: Mailbox, envelope: Envelope, received: float, result: str) -> None:
    """One line in the call log: the order (from its X-Order-Id header) and the recipient."""
    headers = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(_raw(envelope))
    to = envelope.rcpt_tos[0] if envelope.rcpt_tos else None
    mailbox.calls.add("mail", _order_id(headers), received, result, to)


def _text(part: Any) -> str | None:
    """A text part's content with the wire's CRLF line ends made plain newlines."""
    return None if part is None else str(part.get_content()).replace("\r\n", "\n")


class _Handler:
    """aiosmtpd handler: wait, maybe fail, else keep the message."""

    def __init__(self, mailbox: Mailbox, faults: Faults) -> None:
        self.mailbox = mailbox
        self.faults = faults

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        received = time.time()
        delay, fails = self.faults.draw()
        if delay:
            await asyncio.sleep(delay)
        if fails:
            self.mailbox.refused += 1
            log_call(self.mailbox, envelope, received, "refused")
            return "451 4.3.0 fake mail server: simulated failure, try again later"
        number = self.mailbox.add(envelope)
        log_call(self.mailbox, envelope, received, "accepted")
        return f"250 2.0.0 OK: queued as {number}"


class FakeMail:
    """SMTP on ``smtp_port`` and its HTTP API on ``http_port``, in background threads."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        smtp_port: int = 0,
        http_port: int = 0,
        latency: float = 0.3,
        jitter: float = 0.2,
        error_rate: float = 0.0,
        seed: int | None = 1,
        verbose: bool = False,
    ) -> None:
        self.host = host
        self.smtp_port = smtp_port
        self.faults = Faults(latency, jitter, error_rate, seed)
        self.mailbox = Mailbox()
        self.api = JsonService("fakemail", host, http_port, verbose)
        self._routes()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL of the HTTP API."""
        return self.api.url

    @property
    def http_port(self) -> int:
        return self.api.port

    def start(self) -> FakeMail:
        sock = bound_socket(self.host, self.smtp_port, "fakemail (SMTP)")
        self.smtp_port = int(sock.getsockname()[1])
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._serve_smtp, args=(sock, ready), name="fakemail-smtp", daemon=True
        )
        try:
            self._thread.start()
            if not ready.wait(10):
                raise StoreError(
                    f"fake mail: SMTP on {self.host}:{self.smtp_port} did not start within 10 s "
                    "(its error is printed above)"
                )
            self.api.start()
        except BaseException:
            self.stop()  # no SMTP listener left behind when the HTTP port is taken
            sock.close()
            raise
        return self

    def _serve_smtp(self, sock: Any, ready: threading.Event) -> None:
        loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        handler = _Handler(self.mailbox, self.faults)

        def factory() -> SMTP:
            return SMTP(handler, hostname="fakemail.test", ident="labqueue fake mail", loop=loop)

        server = loop.run_until_complete(loop.create_server(factory, sock=sock))
        ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.close()

    def stop(self) -> None:
        self.api.stop()
        loop, self._loop = self._loop, None
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> FakeMail:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- HTTP API ----------------------------------------------------------------------
    def _routes(self) -> None:
        r = self.api.route
        r("GET", "/healthz", lambda req: (200, {"ok": True, "service": "fakemail"}))
        r("GET", "/messages", self._list)
        r("DELETE", "/messages", lambda req: (200, {"deleted": self.mailbox.clear()}))
        r("GET", r"/messages/(\d+)", self._one)
        r("GET", "/stats", lambda req: (200, self.stats()))
        self.mailbox.calls.route(self.api)
        self.faults.route(self.api)

    def stats(self) -> dict[str, Any]:
        return {
            "received": self.mailbox.received,
            "refused": self.mailbox.refused,
            "smtp": f"{self.host}:{self.smtp_port}",
            "faults": self.faults.to_json(),
        }

    def _list(self, req: Request) -> tuple[int, Any]:
        order_id = int_or_none(req.query.get("order_id"), "order_id")
        limit = positive_or_none(req.query.get("limit"), "limit") or 100
        found = self.mailbox.list(order_id, req.query.get("to"))
        return 200, {"count": len(found), "messages": found[-limit:]}

    def _one(self, req: Request) -> tuple[int, Any]:
        message = self.mailbox.get(int(req.match.group(1)))
        if message is None:
            raise HttpError(404, f"no message {req.match.group(1)}")
        return 200, message
