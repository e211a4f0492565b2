"""Where the store finds its database, Redis, mail server and ERP: one dataclass.

Every process of the stack (gunicorn's workers, ``labqueue worker``) reads the same
environment, so ``StoreConfig.from_env()`` and ``config.to_env()`` are the two ends:

    STORE_DB         SQLite file (default: <tmp>/labqueue-store/store.db)
    REDIS_URL        Redis for the job queues (default: labqueue.connect()'s choice)
    STORE_SMTP       host:port of the mail server (default 127.0.0.1:8025)
    STORE_ERP_URL    base URL of the ERP (default http://127.0.0.1:8027)
    STORE_TIMEOUT    seconds a mail or ERP call may take (default 10, at most 600)
    LABQUEUE_NAMESPACE  key prefix (default resque)
    STORE_ERP_LIMIT  at most this many ERP jobs run at once, across every worker, process,
                     thread and host (the store's two ERP job classes declare
                     ``max_concurrency=K, limiter="erp"`` when they are imported; unset: no
                     limit). The stack sets it for its workers with ``--erp-limit K``.

A value the store cannot honour (a NaN or infinite timeout, a port past 65535, an ERP URL
that is not http(s), a sender that is not one plain address) raises
:class:`~.errors.BadSetting` naming the field, when the config is made.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from labqueue.errors import ConfigurationError
from labqueue.keys import DEFAULT_NAMESPACE

from .errors import BadSetting, shown
from .orderform import plain_address_problem

DEFAULT_SMTP_PORT = 8025
DEFAULT_MAIL_HTTP_PORT = 8026
DEFAULT_ERP_PORT = 8027
DEFAULT_STORE_PORT = 8000
#: Seconds: a mail or ERP call allowed longer than this ties up a web worker for good.
MAX_TIMEOUT = 600.0
#: The most threads a store worker runs (``--queue-threads``: ``labqueue worker --threads``).
MAX_THREADS = 64
#: The environment variable the store's workers read their ERP jobs' limit from.
ERP_LIMIT_ENV = "STORE_ERP_LIMIT"
#: The limiter the store's two ERP job classes share (their K slots are the ERP's).
ERP_LIMITER = "erp"


def default_db_path() -> str:
    return str(Path(tempfile.gettempdir()) / "labqueue-store" / "store.db")


@dataclass(frozen=True)
class StoreConfig:
    """Everything the store's code needs to reach its database and its neighbours."""

    db_path: str = ""
    redis_url: str | None = None
    smtp_host: str = "127.0.0.1"
    smtp_port: int = DEFAULT_SMTP_PORT
    erp_url: str = f"http://127.0.0.1:{DEFAULT_ERP_PORT}"
    timeout: float = 10.0
    namespace: str = DEFAULT_NAMESPACE
    email_queue: str = "email"
    erp_queue: str = "erp"
    sender: str = "receipts@toystore.test"

    def __post_init__(self) -> None:
        for name in ("db_path", "smtp_host", "erp_url", "namespace", "email_queue", "erp_queue"):
            _text(name, getattr(self, name), empty_ok=name == "db_path")
        if self.redis_url is not None:
            _text("redis_url", self.redis_url)
        if not self.db_path:
            object.__setattr__(self, "db_path", default_db_path())
        object.__setattr__(self, "erp_url", _http_url("erp_url", self.erp_url).rstrip("/"))
        _port("smtp_port", self.smtp_port)
        object.__setattr__(self, "timeout", _seconds("timeout", self.timeout))
        if "@" not in self.sender or plain_address_problem(self.sender):
            problem = plain_address_problem(self.sender) or "it has no @"
            raise BadSetting("sender", f"sender {shown(self.sender)} is not one address: {problem}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StoreConfig:
        env = os.environ if env is None else env
        try:
            host, port = parse_hostport(env.get("STORE_SMTP", f"127.0.0.1:{DEFAULT_SMTP_PORT}"))
        except ConfigurationError as exc:
            raise BadSetting("smtp_port", f"STORE_SMTP: {exc}") from None
        try:
            timeout = float(env.get("STORE_TIMEOUT", "10"))
        except ValueError:
            raise BadSetting("timeout", "STORE_TIMEOUT must be a number of seconds") from None
        names = {"timeout": "STORE_TIMEOUT", "erp_url": "STORE_ERP_URL", "db_path": "STORE_DB"}
        try:
            return cls(
                db_path=env.get("STORE_DB", ""),
                redis_url=env.get("REDIS_URL") or None,
                smtp_host=host,
                smtp_port=port,
                erp_url=env.get("STORE_ERP_URL", cls.erp_url),
                timeout=timeout,
                namespace=env.get("LABQUEUE_NAMESPACE", DEFAULT_NAMESPACE),
            )
        except BadSetting as exc:
            variable = names.get(exc.field, "LABQUEUE_NAMESPACE")
            raise BadSetting(exc.field, f"{variable}: {exc}") from None

    def to_env(self) -> dict[str, str]:
        """The environment a child process needs to build the same config."""
        env = {
            "STORE_DB": self.db_path,
            "STORE_SMTP": f"{self.smtp_host}:{self.smtp_port}",
            "STORE_ERP_URL": self.erp_url,
            "STORE_TIMEOUT": str(self.timeout),
            "LABQUEUE_NAMESPACE": self.namespace,
        }
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        return env

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> StoreConfig:
        """From a dict of field names (unknown names fail clearly)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigurationError(f"unknown store settings {unknown}; known: {sorted(known)}")
        return cls(**data)


def check_erp_limit(value: Any) -> int:
    """``value`` as the ERP jobs' limit (a whole number >= 1), else BadSetting."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadSetting(
            "erp_limit", f"the ERP limit must be a whole number of jobs >= 1, got {shown(value)}"
        )
    return value


def erp_limit_from_env(env: Mapping[str, str] | None = None) -> int | None:
    """``$STORE_ERP_LIMIT`` as a count (None when unset or empty); BadSetting naming the
    variable when it is not a whole number >= 1."""
    text = (os.environ if env is None else env).get(ERP_LIMIT_ENV, "").strip()
    if not text:
        return None
    try:
        return check_erp_limit(int(text))
    except (ValueError, BadSetting):
        raise BadSetting(
            "erp_limit", f"{ERP_LIMIT_ENV} must be a whole number of jobs >= 1, got {shown(text)}"
        ) from None


def parse_hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or not 0 < int(port) <= 65535:
        raise ConfigurationError(f"expected HOST:PORT with a port 1-65535, got {shown(text)}")
    return host or "127.0.0.1", int(port)


def _text(name: str, value: Any, empty_ok: bool = False) -> str:
    if not isinstance(value, str) or not (value or empty_ok):
        raise BadSetting(name, f"{name} must be a non-empty string, got {shown(value)}")
    return value


def _port(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise BadSetting(name, f"{name} must be a port number 0-65535, got {shown(value)}")
    return value


def _seconds(name: str, value: Any) -> float:
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if number is None or not math.isfinite(number) or not 0 < number <= MAX_TIMEOUT:
        raise BadSetting(
            name, f"{name} must be a number of seconds above 0, at most {MAX_TIMEOUT:g}; "
            f"got {shown(value)}",
        )  # fmt: skip
    return float(number)


def _http_url(name: str, url: str) -> str:
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError past 65535
    except ValueError:
        ok = False
    if not ok:
        raise BadSetting(name, f"{name} must be an http(s) URL with a host, got {shown(url)}")
    return url
