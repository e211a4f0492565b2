"""Where the store finds its database, Redis, mail server and ERP: one dataclass.

Every process of the stack (gunicorn's workers, ``labqueue worker``) reads the same
environment, so ``StoreConfig.from_env()`` and ``config.to_env()`` are the two ends:

    STORE_DB         SQLite file (default: <tmp>/labqueue-store/store.db)
    REDIS_URL        Redis for the job queues (default: labqueue.connect()'s choice)
    STORE_SMTP       host:port of the mail server (default 127.0.0.1:8025)
    STORE_ERP_URL    base URL of the ERP (default http://127.0.0.1:8027)
    STORE_TIMEOUT    seconds a mail or ERP call may take (default 10)
    LABQUEUE_NAMESPACE  key prefix (default resque)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from labqueue.errors import ConfigurationError
from labqueue.keys import DEFAULT_NAMESPACE

DEFAULT_SMTP_PORT = 8025
DEFAULT_MAIL_HTTP_PORT = 8026
DEFAULT_ERP_PORT = 8027
DEFAULT_STORE_PORT = 8000


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
        if not self.db_path:
            object.__setattr__(self, "db_path", default_db_path())
        object.__setattr__(self, "erp_url", self.erp_url.rstrip("/"))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StoreConfig:
        env = os.environ if env is None else env
        host, port = parse_hostport(env.get("STORE_SMTP", f"127.0.0.1:{DEFAULT_SMTP_PORT}"))
        try:
            timeout = float(env.get("STORE_TIMEOUT", "10"))
        except ValueError:
            raise ConfigurationError("STORE_TIMEOUT must be a number of seconds") from None
        return cls(
            db_path=env.get("STORE_DB", ""),
            redis_url=env.get("REDIS_URL") or None,
            smtp_host=host,
            smtp_port=port,
            erp_url=env.get("STORE_ERP_URL", cls.erp_url),
            timeout=timeout,
            namespace=env.get("LABQUEUE_NAMESPACE", DEFAULT_NAMESPACE),
        )

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


def parse_hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigurationError(f"expected HOST:PORT, got {text!r}")
    return host or "127.0.0.1", int(port)
