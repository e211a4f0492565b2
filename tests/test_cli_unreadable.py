"""``labqueue`` on data it cannot read and on hostile arguments (issue 15 items 5, 6, 7 and 8,
CLI side): never a traceback, errors in one line with a non-zero exit, what comes from Redis
printed with its control characters escaped, and no password in any message. Fakeredis and
a real redis-server, through the CLI's own client."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import fakeredis
import pytest
import redis
from click.testing import CliRunner, Result
from test_web_unreadable import (
    DEEP,
    JOB,
    LAYOUT,
    WID,
    deep_payload,
    good_failure,
    payload,
    retype,
    write_layout,
)

import labqueue.cli.base
from labqueue.cli import main
from labqueue.failures import record_digest
from labqueue.keys import Keys

K = Keys()
Invoke = Callable[..., Result]


def strict_json(text: str) -> Any:
    """JSON as every other language reads it: no NaN or Infinity."""

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def checked(result: Result) -> Result:
    """The rules every run keeps: no traceback, exit 0, 1 or 2, an error in one line, and
    no control character from Redis reaching the terminal."""
    exc = result.exception
    assert exc is None or isinstance(exc, SystemExit), (result.output, exc)
    assert result.exit_code in (0, 1, 2) and "Traceback" not in result.output
    assert "unexpected error" not in result.output  # what Group tells of a bug
    if result.exit_code:
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not set(result.output) & {"\x1b", "\r", "\x00", "\x07", "\x9b"}, result.output
    return result


@pytest.fixture(params=["fakeredis", "redis-server"])
def cli(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> tuple[Invoke, Any]:
    """(run the command, a client that writes bytes as given) on one backend."""
    env: dict[str, str] = {}
    if request.param == "fakeredis":
        server = fakeredis.FakeServer()
        raw: Any = fakeredis.FakeRedis(server=server)
        strict = fakeredis.FakeRedis(server=server, decode_responses=True)
        monkeypatch.setattr(labqueue.cli.base, "connect", lambda url=None: strict)
        monkeypatch.delenv("REDIS_URL", raising=False)
    else:
        url = request.getfixturevalue("redis_url")
        raw = redis.Redis.from_url(url)
        env["REDIS_URL"] = url
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return checked(runner.invoke(main, list(args), env=env, color=True))

    yield invoke, raw
    raw.close()


BAD_RECORDS = [b"\x1b[31mred\r\xff", b"[1, 2]", b'{"payload":' + DEEP.encode() + b"}"]


# -- item 5 -------------------------------------------------------------------------------
def test_failed_list_shows_unreadable_records_escaped(cli: tuple[Invoke, Any]) -> None:
    invoke, raw = cli
    raw.rpush(K.failed, good_failure(), *BAD_RECORDS)
    listing = invoke("failed", "list")
    assert listing.exit_code == 0 and len(listing.stdout.splitlines()) == 4
    assert "\\x1b[31mred\\r\\xff" in listing.stdout and listing.stdout.count("unreadable") == 3
    records = strict_json(invoke("failed", "list", "--json").stdout)
    assert records[0]["payload"]["id"] == JOB
    assert records[1] == {
        "unreadable": records[1]["unreadable"],
        "raw": "\x1b[31mred\r\udcff",
        "digest": record_digest(BAD_RECORDS[0]),
    }
    assert "not JSON" in records[1]["unreadable"] and "deep" in records[3]["unreadable"]


def test_unreadable_records_are_removed_and_never_requeued(cli: tuple[Invoke, Any]) -> None:
    invoke, raw = cli
    raw.rpush(K.failed, good_failure(), *BAD_RECORDS)
    assert invoke("failed", "remove", "1").stdout.strip() == "removed 1 job"
    refused = invoke("failed", "requeue", record_digest(BAD_RECORDS[1]))
    assert refused.exit_code == 1 and "cannot be requeued" in refused.stderr
    requeued = invoke("failed", "requeue", "--all")
    assert requeued.exit_code == 0 and requeued.stdout.strip() == "requeued 1 job"
    assert "2 failure records cannot be requeued" in requeued.stderr
    assert raw.llen(K.queue("q")) == 1 and raw.llen(K.failed) == 2
    assert invoke("failed", "remove", "--all").stdout.strip() == "removed 2 jobs"
    assert raw.llen(K.failed) == 0


# -- item 6 -------------------------------------------------------------------------------
def test_stats_and_delayed_on_malformed_data(cli: tuple[Invoke, Any]) -> None:
    invoke, raw = cli
    raw.set(K.stat("processed"), "12abc")
    raw.sadd(K.workers, WID, b"h\r:1:\x1b[2J")
    raw.set(K.stat("processed", WID), "1.5")
    raw.set(K.worker(WID), f'{{"queue":"default","payload":{deep_payload()}}}')
    raw.sadd(K.queues, b"\x1b[2Jq\xff")
    raw.rpush(K.queue_prefix.encode() + b"\x1b[2Jq\xff", payload())
    raw.zadd(K.delayed_schedule, {"soon": 5, "1700000000": float("inf")})
    raw.rpush(K.delayed_prefix + "soon", payload(queue="q", scheduled_for=1e300))
    raw.rpush(K.delayed(1700000000), payload(queue="q\x1b[2J"), b"\xff not json")
    stats = invoke("stats")
    assert stats.exit_code == 0 and "\\x1b[2Jq\\xff" in stats.stdout
    assert f"{K.stat('processed')}: '12abc' is not a whole number" in stats.stdout
    snap = strict_json(invoke("stats", "--json").stdout)
    assert snap["delayed"] == 3 and K.stat("processed", WID) in snap["unreadable"]
    listed = invoke("delayed")
    assert listed.exit_code == 0 and len(listed.stdout.splitlines()) == 3
    assert len(strict_json(invoke("delayed", "--json").stdout)) == 3


@pytest.mark.parametrize(
    "record",
    [
        '{"status": 9, "updated": 1}',
        "{}",
        "[]",
        "nope \x1b[2J",
        f'{{"status":{DEEP}}}',
        '{"status": 1, "updated": "soon"}',
        b"\xff\xfe",
    ],
)
def test_status_of_a_record_that_is_not_one_is_one_line(
    cli: tuple[Invoke, Any], record: str | bytes
) -> None:
    invoke, raw = cli
    raw.set(K.status(JOB), record)
    result = invoke("status", JOB)
    assert result.exit_code == 1 and "unreadable" in result.stderr


@pytest.mark.parametrize("when", ["1e300", "-1e300", "Infinity", "NaN", "1e400"])
def test_status_at_a_time_no_calendar_has(cli: tuple[Invoke, Any], when: str) -> None:
    invoke, raw = cli
    raw.set(K.status(JOB), f'{{"status":1,"updated":{when}}}')
    result = invoke("status", JOB)
    assert result.exit_code == 0 and "waiting" in result.stdout


# -- item 7 -------------------------------------------------------------------------------
COMMANDS = [
    ["stats"],
    ["stats", "--json"],
    ["failed", "list"],
    ["failed", "list", "--json"],
    ["delayed"],
    ["delayed", "--json"],
    ["status", JOB],
    ["failed", "requeue", "--all"],
    ["failed", "remove", "0"],
]


@pytest.mark.parametrize("key", LAYOUT)
def test_a_key_of_another_type_is_named_not_a_traceback(cli: tuple[Invoke, Any], key: str) -> None:
    invoke, raw = cli
    write_layout(raw)
    kind = retype(raw, key)
    said = ""
    for args in COMMANDS:
        result = invoke(*args)
        said += result.output
        if args[-1] == "--json" and result.exit_code == 0:
            strict_json(result.stdout)
    assert f"{key} is a" in said and f"not a {kind}" in said, said


# -- hostile arguments --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["enqueue", "X", "--args", DEEP], "nested too deep"),
        (["enqueue", "X", "--args", '["\\ud800"]'], "UTF-8"),
        (["enqueue", "X", "--queue", "q\udcff"], "UTF-8"),
        (["status", "\udcff"], "UTF-8"),
        (["enqueue", "X", "--at", "9" * 5000], "--at"),
        (["enqueue", "X", "--at", "9999-12-31T23:59:59-14:00"], "--at"),
        (["enqueue", "X", "--in", "nan"], "--in"),
        (["enqueue", "X", "--in", "1e308"], "--in"),
        (["failed", "remove", "9" * 5000], "no failed job"),
        (["status", "\x1b[2J"], "\\x1b[2J"),
    ],
)
def test_hostile_arguments_are_one_line(
    cli: tuple[Invoke, Any], args: list[str], message: str
) -> None:
    invoke, _ = cli
    result = invoke(*args)
    assert result.exit_code in (1, 2) and message in result.stderr


# -- item 8 -------------------------------------------------------------------------------
SECRET = "s3cret-pw/x"
URLS = [
    "redis://127.0.0.1:1/0?password=s3cret-pw%2Fx",
    "redis://127.0.0.1:1/0?db=0&password=s3cret-pw/x",
    "redis://:s3cret-pw%2Fx@127.0.0.1:1/0",
    "redis://user:s3cret-pw%2Fx@127.0.0.1:1/0?socket_timeout=abc",
    "unix:///nonexistent/redis.sock?password=s3cret-pw%2Fx&db=0",
    "redis://127.0.0.1:1/0?password=s3cret-pw%2Fx&ssl_cert_reqs=bogus",
    "rediss://127.0.0.1:1/0?password=s3cret-pw%2Fx&ssl_cert_reqs=bogus",
    "redis://127.0.0.1:99999/0?password=s3cret-pw%2Fx",
]


def hidden(output: str) -> bool:
    return all(form not in output for form in ("s3cret", "pw%2Fx", "pw/x"))


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("args", [["stats"], ["failed", "list"], ["status", "x"], ["delayed"]])
def test_no_cli_error_shows_the_password(url: str, args: list[str]) -> None:
    result = checked(CliRunner().invoke(main, [*args, "--url", url]))
    assert result.exit_code == 1 and hidden(result.output), result.output
    result = checked(CliRunner().invoke(main, args, env={"REDIS_URL": url}))
    assert result.exit_code == 1 and hidden(result.output), result.output


def test_a_redis_error_that_carries_the_password_is_redacted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from labqueue.cli import queries

    def failing(*args: Any) -> Any:
        raise redis.ResponseError(f"ERR AUTH {SECRET} refused for s3cret-pw%2Fx")

    monkeypatch.setattr(labqueue.cli.base, "connect", lambda url=None: fakeredis.FakeRedis())
    monkeypatch.setattr(queries, "snapshot", failing)
    result = checked(CliRunner().invoke(main, ["stats", "--url", URLS[0]]))
    assert result.exit_code == 1 and hidden(result.output) and "***" in result.stderr


# -- labqueue web's settings --------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--per-page", "0"], "--per-page"),
        (["--per-page", "100000000"], "--per-page"),
        (["--stale-after", "nan"], "--stale-after"),
        (["--stale-after", "inf"], "--stale-after"),
        (["--stale-after", "-1"], "--stale-after"),
        (["--refresh", "nan"], "--refresh"),
        (["--refresh", "0"], "--refresh"),
        (["--refresh", "1e400"], "--refresh"),
    ],
)
def test_web_refuses_settings_it_cannot_honour(
    monkeypatch: pytest.MonkeyPatch, args: list[str], option: str
) -> None:
    import labqueue.web.app as web_app

    served: list[Any] = []
    monkeypatch.setattr(web_app, "serve", lambda *a, **k: served.append(a))
    monkeypatch.setattr(labqueue.cli.base, "connect", lambda url=None: fakeredis.FakeRedis())
    result = checked(CliRunner().invoke(main, ["web", *args]))
    assert result.exit_code == 2 and f"{option} must be" in result.stderr and not served


def test_web_takes_good_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    import labqueue.web.app as web_app

    served: list[Any] = []
    monkeypatch.setattr(web_app, "serve", lambda app, *a: served.append(app))
    monkeypatch.setattr(labqueue.cli.base, "connect", lambda url=None: fakeredis.FakeRedis())
    args = ["web", "--per-page", "7", "--stale-after", "90", "--refresh", "1.5"]
    result = checked(CliRunner().invoke(main, args))
    assert result.exit_code == 0, result.output
    [app] = served
    assert app.extensions["labqueue"].per_page == 7
    assert app.extensions["labqueue"].stale_after == 90.0
    assert app.config["LABQUEUE_REFRESH_MS"] == 1500


def test_text_output_names_what_it_cannot_read(cli: tuple[Invoke, Any]) -> None:
    """A busy worker whose current job cannot be read, and a delayed item that is no job,
    are said to be unreadable (an outside review saw 'running None from None since None'
    and '?: ?')."""
    invoke, raw = cli
    raw.sadd(K.workers, WID)
    raw.set(K.worker(WID), f'{{"queue":"default","payload":{deep_payload()}}}')
    raw.zadd(K.delayed_schedule, {"2": 2})
    raw.rpush(K.delayed_prefix + "2", b"\xff not json")
    stats = invoke("stats").stdout
    assert "its current job unreadable" in stats and "None" not in stats
    assert "unreadable item: '\\xff not json'" in invoke("delayed").stdout
