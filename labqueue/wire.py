"""One command packed here and sent on a pooled connection: the enqueue hot path.

redis-py wraps every command in retries, metrics and response callbacks that cost more
than the command itself when the command is a small script call on loopback. For a plain
``redis.Redis`` client, :func:`call` packs the RESP array itself and reads the one reply;
any other client (fakeredis, a single-connection client) takes ``execute_command``. No
retry: a command cut off by a dropped connection raises instead of being sent twice.
``pool.get_connection()`` without a command name is redis-py 5.3's (hence ``redis>=5.3``:
on 5.2 every enqueue and worker step would raise TypeError).
"""

from __future__ import annotations

from typing import Any

import redis


def pack(*args: bytes | str | int) -> bytes:
    """A RESP array of bulk strings: how every Redis command travels."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def direct(client: redis.Redis) -> bool:
    """True when ``client`` is a plain pooled redis-py client (the fast path applies)."""
    return (
        isinstance(client, redis.Redis)
        and type(client).__module__.startswith("redis.")
        and getattr(client, "connection", None) is None
    )


def call_many(client: redis.Redis, *commands: tuple[bytes | str | int, ...]) -> list[Any]:
    """Run several commands in one round trip (sent together, replies read in order); the
    first error reply is raised once every reply has been read (the connection stays clean)."""
    if not direct(client):
        return [client.execute_command(*args) for args in commands]
    pool = client.connection_pool
    conn = pool.get_connection()
    replies: list[Any] = []
    try:
        conn.send_packed_command([pack(*args) for args in commands])
        for _ in commands:
            try:
                replies.append(conn.read_response())
            except redis.ResponseError as exc:
                replies.append(exc)
    except BaseException:
        conn.disconnect()
        raise
    finally:
        pool.release(conn)
    for reply in replies:
        if isinstance(reply, redis.ResponseError):
            raise reply
    return replies


def call(client: redis.Redis, *args: bytes | str | int) -> Any:
    """Run one command and return its reply (errors raised as redis-py raises them)."""
    if not direct(client):
        return client.execute_command(*args)
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        conn.send_packed_command([pack(*args)])
        return conn.read_response()
    except BaseException:
        conn.disconnect()
        raise
    finally:
        pool.release(conn)
