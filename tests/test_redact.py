"""No Redis password in a message: ``redact(url)`` for every form redis-py reads a password
from, and ``redact_text(text, url)`` for an error text that quotes the URL, the host or the
password itself (issue 15, item 8)."""

from __future__ import annotations

from urllib.parse import quote, quote_plus

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from labqueue import connection as server

SECRET = "hunter2-Sw0rdfish"

#: (URL, what must survive redaction): every way redis-py takes a password from a URL.
FORMS = [
    (f"redis://:{SECRET}@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
    (f"redis://alice:{SECRET}@127.0.0.1:6379/0", "redis://alice:***@127.0.0.1:6379/0"),
    (f"rediss://:{SECRET}@cache.example:6380/1", "rediss://:***@cache.example:6380/1"),
    (f"redis://127.0.0.1:6379/0?password={SECRET}", "redis://127.0.0.1:6379/0?password=***"),
    (
        f"redis://127.0.0.1/0?db=2&password={SECRET}&socket_timeout=1",
        "redis://127.0.0.1/0?db=2&password=***&socket_timeout=1",
    ),
    (f"rediss://h:6380?password={quote(SECRET)}", "rediss://h:6380?password=***"),
    (f"redis://h/0?pass%77ord={SECRET}", "redis://h/0?pass%77ord=***"),
    (f"redis://h/0?password={SECRET}&password=other", "redis://h/0?password=***&password=***"),
    (
        f"unix:///tmp/redis.sock?password={SECRET}&db=3",
        "unix:///tmp/redis.sock?password=***&db=3",
    ),
    (f"unix://:{SECRET}@/tmp/redis.sock?db=0", "unix://:***@/tmp/redis.sock?db=0"),
    (f"redis://:{quote(SECRET + '@:/?#', safe='')}@h:1/0", "redis://:***@h:1/0"),
    (f"redis://:{SECRET}@[::1]:6379/0", "redis://:***@[::1]:6379/0"),
    (f"redis://:{SECRET}@h:6379/0#frag", "redis://:***@h:6379/0#frag"),
    (f"redis://alice:{SECRET}@h/0?password={SECRET}", "redis://alice:***@h/0?password=***"),
    (f"rediss://h/0?ssl_password={SECRET}", "rediss://h/0?ssl_password=***"),
    # not what redis-py parses, but what a user types: still no secret in the message
    (f"redis://:{SECRET}@[bad", "redis://:***@[bad"),
    (f"redis://:pa/{SECRET}@h:1/0", "redis://:***@h:1/0"),
    (f":{SECRET}@localhost:6379", ":***@localhost:6379"),
    (f"REDIS://:{SECRET}@h/0", "REDIS://:***@h/0"),
    (f"redis:/:{SECRET}@h/0", "redis:***@h/0"),
]

UNCHANGED = [
    "redis://127.0.0.1:6379/0",
    "redis://alice@127.0.0.1:6379/0",
    "redis://:@h/0",
    "unix:///tmp/redis.sock?db=0",
    "unix:///tmp/odd@name.sock",
    "redis://h/0?db=1&socket_timeout=0.5",
    "redis://h/0?password=",
    "",
    "localhost:6379",
]


@pytest.mark.parametrize(("url", "expected"), FORMS)
def test_redact_replaces_every_password_redis_py_reads(url: str, expected: str) -> None:
    out = server.redact(url)
    assert out == expected
    assert SECRET not in out and quote(SECRET) not in out


@pytest.mark.parametrize("url", UNCHANGED)
def test_redact_leaves_a_url_without_a_password_as_it_is(url: str) -> None:
    assert server.redact(url) == url


@pytest.mark.parametrize(
    "url", [u for u, _ in FORMS if u.startswith(("redis://", "rediss://", "unix://"))]
)
def test_what_redis_py_reads_as_the_password_is_gone(url: str) -> None:
    """The redacted URL, parsed by redis-py, yields no password but ***."""
    try:
        kwargs = redis.connection.parse_url(server.redact(url))
    except ValueError:
        return
    assert kwargs.get("password") in (None, "***")


#: The forms whose password is SECRET (not SECRET with more characters in it).
PLAIN_SECRET = [u for u, _ in FORMS if "%40" not in u]


@pytest.mark.parametrize("url", PLAIN_SECRET)
def test_redact_text_removes_the_url_and_the_password_from_an_error(url: str) -> None:
    text = (
        f"cannot reach Redis at {url} (Error 111 connecting to 127.0.0.1:6379. "
        f"Connection refused.); AUTH {SECRET} refused; {quote(SECRET)}; {quote_plus(SECRET)}; "
        f"repr {url!r}; ({url})"
    )
    out = server.redact_text(text, url)
    assert SECRET not in out and quote(SECRET) not in out, out
    assert "Connection refused" in out


def test_redact_text_without_the_url_still_redacts_every_url_in_it() -> None:
    text = f"one redis://:{SECRET}@h/0 two 'rediss://h/0?password={SECRET}' three"
    out = server.redact_text(text)
    assert SECRET not in out
    assert out.startswith("one redis://:***@h/0 two 'rediss://h/0?password=***")


def test_redact_text_handles_passwords_with_regex_and_url_characters() -> None:
    secret = "a.b*c(d)[e]+f?g\\h|i$j^k @/#%"
    url = f"redis://:{quote(secret, safe='')}@h/0"
    text = f"failed: {secret}; {quote(secret, safe='')}; {url}; {secret!r}"
    out = server.redact_text(text, url)
    assert secret not in out and quote(secret, safe="") not in out
    assert repr(secret)[1:-1] not in out


def test_a_short_password_is_removed_where_it_stands_alone_only() -> None:
    url = "redis://:pw@h/0"
    out = server.redact_text("AUTH pw failed for redis://:pw@h/0 (password pw)", url)
    assert out == "AUTH *** failed for redis://:***@h/0 (password ***)"


def test_redact_text_with_no_url_or_an_empty_one_is_the_structural_redaction() -> None:
    assert server.redact_text("plain words", None, "") == "plain words"


secrets = st.text(min_size=1, max_size=20).map(lambda s: "Zq9" + s)


@settings(max_examples=200, deadline=None)
@given(secret=secrets, form=st.integers(0, 4))
def test_no_password_survives_redaction_whatever_its_characters(secret: str, form: int) -> None:
    encoded = quote(secret, safe="")
    url = [
        f"redis://:{encoded}@127.0.0.1:6379/0",
        f"redis://user:{encoded}@127.0.0.1:6379/0",
        f"redis://127.0.0.1:6379/0?password={encoded}",
        f"unix:///tmp/r.sock?db=0&password={quote_plus(secret)}",
        f"rediss://127.0.0.1:6380/0?db=1&password={encoded}&ssl_cert_reqs=none",
    ][form]
    assert encoded not in server.redact(url)
    message = f"Error connecting to {url}: {secret} / {encoded} / {secret!r}"
    out = server.redact_text(message, url)
    assert encoded not in out and secret not in out and repr(secret)[1:-1] not in out
    kwargs = redis.connection.parse_url(server.redact(url))
    assert kwargs.get("password") in (None, "***")
