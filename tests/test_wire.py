"""labqueue.wire: the hand-packed command path gives what redis-py gives, errors included."""

from __future__ import annotations

import fakeredis
import pytest
import redis
from redis.exceptions import NoScriptError

from labqueue import wire


def test_pack_is_a_resp_array_of_bulk_strings() -> None:
    assert wire.pack(b"SET", "k", 12) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n"
    assert wire.pack("é") == b"*1\r\n$2\r\n\xc3\xa9\r\n"


def test_call_matches_execute_command_on_a_real_server(real: redis.Redis) -> None:
    assert wire.direct(real)
    assert wire.call(real, b"RPUSH", "q", "a", "b") == 2
    assert wire.call(real, "LRANGE", "q", 0, -1) == real.lrange("q", 0, -1) == ["a", "b"]
    with pytest.raises(NoScriptError):
        wire.call(real, b"EVALSHA", "0" * 40, 0)
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        wire.call(real, "INCR", "q")
    assert wire.call(real, "PING") in (True, "PONG")  # the pool is still usable after errors


def test_other_clients_take_redis_py_s_own_path() -> None:
    fake = fakeredis.FakeRedis(decode_responses=True)
    assert not wire.direct(fake)
    assert wire.call(fake, "RPUSH", "q", "a") == 1 and fake.lrange("q", 0, -1) == ["a"]
