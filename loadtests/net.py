"""The one guard every load obeys: it only ever targets this machine."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback(url: str | None) -> bool:
    """True for http://127.x.y.z, http://[::1] and http://localhost URLs."""
    host = urlsplit(url or "").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
