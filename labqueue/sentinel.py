"""Redis behind Sentinel: the ``redis+sentinel://`` URL, and clients of the current primary.

    redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name[/db][?options]

- the hosts are the sentinels (at least one; ``host`` alone means port 26379);
- ``service_name`` is the name the sentinels monitor (``sentinel monitor NAME ...``);
- ``db`` is the database number on the primary (default 0);
- the userinfo password (or ``?password=``) is the primary's and replicas' (``requirepass``);
  ``?sentinel_password=`` (and ``sentinel_username``) the sentinels' own, when they have one;
- any other option is redis-py's URL option (``socket_timeout=``, ...), for the primary.

A client (:func:`client_for`) is redis-py's ``Sentinel(...).master_for(service_name)``:
each new connection asks the sentinels where the primary is, so after a failover the next
connection goes to the promoted replica (a connection still open to a demoted primary is
dropped on its READONLY reply). Only the first address of each connection changes; what a
command did on a primary that died before a replica had it is gone (see ``Queue(durable=...)``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode

import redis
from redis.connection import parse_url
from redis.sentinel import Sentinel, SentinelConnectionPool

from .errors import ConfigurationError

SCHEME = "redis+sentinel"
DEFAULT_PORT = 26379
#: Query options meant for the sentinels, not the primary.
_SENTINEL_OPTIONS = ("sentinel_password", "sentinel_username")


def is_sentinel_url(url: str) -> bool:
    return url.lower().startswith(SCHEME + "://")


def _address(part: str) -> tuple[str, int]:
    """``host:port``, ``host`` (port 26379), ``[::1]:port`` -> (host, port)."""
    host, colon, port = part.rpartition(":")
    if not colon or part.endswith("]"):
        host, port = part, str(DEFAULT_PORT)
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise ConfigurationError(f"not a sentinel address: {part!r} (host:port)")
    return host, int(port)


Parsed = tuple[list[tuple[str, int]], str, dict[str, Any], dict[str, Any]]


def parse_sentinel_url(url: str) -> Parsed:
    """``(sentinels, service_name, primary's connection kwargs, sentinels' kwargs)``."""
    if not is_sentinel_url(url):
        raise ConfigurationError(f"not a {SCHEME}:// URL")
    rest = url[len(SCHEME) + 3 :]
    rest, _, query = rest.partition("?")
    where, _, path = rest.partition("/")
    userinfo, at, hosts = where.rpartition("@")
    sentinels = [_address(h) for h in hosts.split(",") if h]
    parts = [p for p in path.split("/") if p]
    if not sentinels or not parts or len(parts) > 2:
        raise ConfigurationError(
            f"a sentinel URL is {SCHEME}://host:port[,host:port...]/service_name[/db]"
        )
    if len(parts) == 2 and not parts[1].isdigit():
        raise ConfigurationError(f"the database must be a number, not {parts[1]!r}")
    params = parse_qsl(query, keep_blank_values=True)
    theirs = {k: v for k, v in params if k in _SENTINEL_OPTIONS}
    ours = urlencode([(k, v) for k, v in params if k not in _SENTINEL_OPTIONS])
    auth = f"{userinfo}@" if at else ""
    db = parts[1] if len(parts) == 2 else "0"
    try:
        kwargs = parse_url(f"redis://{auth}{sentinels[0][0]}:{sentinels[0][1]}/{db}?{ours}")
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    for key in ("host", "port", "connection_class"):
        kwargs.pop(key, None)
    sentinel_kwargs = {k.removeprefix("sentinel_"): v for k, v in theirs.items()}
    return sentinels, unquote(parts[0]), kwargs, sentinel_kwargs


def client_for(url: str, **overrides: Any) -> redis.Redis:
    """A client of the primary that the sentinels of ``url`` name (asked per connection)."""
    sentinels, service, kwargs, sentinel_kwargs = parse_sentinel_url(url)
    kwargs = {"decode_responses": True, **kwargs, **overrides}
    timeouts = {k: v for k, v in kwargs.items() if k.startswith("socket_")}
    manager = Sentinel(sentinels, sentinel_kwargs={**timeouts, **sentinel_kwargs})
    return manager.master_for(service, **kwargs)


def is_sentinel_client(client: Any) -> bool:
    return isinstance(getattr(client, "connection_pool", None), SentinelConnectionPool)


def url_of(client: redis.Redis) -> str:
    """The ``redis+sentinel://`` URL that reaches the same service (passwords included)."""
    pool: Any = client.connection_pool
    kwargs = pool.connection_kwargs
    hosts = []
    sentinel_auth: dict[str, str] = {}
    for node in pool.sentinel_manager.sentinels:
        node_kwargs = node.connection_pool.connection_kwargs
        hosts.append(f"{node_kwargs['host']}:{node_kwargs['port']}")
        for key in ("username", "password"):
            if node_kwargs.get(key):
                sentinel_auth["sentinel_" + key] = node_kwargs[key]
    auth = ""
    if kwargs.get("password"):
        user = quote(kwargs.get("username") or "", safe="")
        auth = f"{user}:{quote(kwargs['password'], safe='')}@"
    query = f"?{urlencode(sentinel_auth)}" if sentinel_auth else ""
    service = quote(pool.service_name, safe="")
    return f"{SCHEME}://{auth}{','.join(hosts)}/{service}/{kwargs.get('db', 0)}{query}"


def clone_pool(pool: Any, kwargs: dict[str, Any]) -> SentinelConnectionPool:
    """A new pool for the same service and sentinels, with ``kwargs`` as its settings."""
    kwargs = {k: v for k, v in kwargs.items() if k != "connection_pool"}
    return SentinelConnectionPool(
        pool.service_name,
        pool.sentinel_manager,
        connection_class=pool.connection_class,
        is_master=pool.is_master,
        check_connection=pool.check_connection,
        **kwargs,
    )
