"""The CLI's rule, on generated input (issue 15, "The rules"): no command prints a Python
traceback for any argument or any Redis content; it exits 0, 1 or 2; an error is one line;
what comes from Redis is printed with its control characters escaped; ``--json`` is strict
JSON; no password of a URL it was given shows in any form.

Two surfaces, ``MAX_EXAMPLES`` generated inputs each per run: random Redis contents (see
:mod:`hostile_redis`) under every reading and acting command, and random command lines
(every command and option of ``labqueue``, hostile values). Long-running commands are
stubbed where they would start serving (the worker loop, the scheduler loop, the web
server, a redis-server): their argument handling is what is tried. Each test prints how
many inputs it tried and how long it took.
"""

from __future__ import annotations

import json
import logging
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import click
import fakeredis
import pytest
from click.testing import CliRunner, Result
from hostile_redis import CONTROLS, JOBS, World, deep, hostile_text, numbers, worlds, write
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from rule_settings import rule_settings

import labqueue.cli.base
import labqueue.delayed
import labqueue.web.app
import labqueue.worker
import labqueue.worker.supervisor
from labqueue import connection
from labqueue.cli import main, serve

#: hypothesis runs hundreds of generated inputs here: `make test` runs them, test-fast not
pytestmark = pytest.mark.slow

#: Generated inputs per surface and run (Redis contents; command lines).
MAX_EXAMPLES = 200

HYPOTHESIS = rule_settings(MAX_EXAMPLES, HealthCheck.large_base_example)

READING = [
    ["stats"],
    ["stats", "--json"],
    ["failed", "list"],
    ["failed", "list", "--json"],
    ["delayed"],
    ["delayed", "--json"],
    *(["status", job] for job in JOBS),
    ["failed", "requeue", "0"],
    ["failed", "remove", "1"],
    ["failed", "requeue", "--all"],
    ["failed", "remove", "--all"],
]


class Stub:
    """What stands for a loop that would serve until stopped."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def work(self, burst: bool = False) -> int:
        return 0

    def run(self) -> int:
        return 0


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The CLI on one fakeredis (decoding strictly, as a real client does), with every
    command that would serve or start something stubbed at that point; a URL given as
    ``--url`` is dialled for real (each points at a closed port or a missing socket)."""
    server = fakeredis.FakeServer()
    strict = fakeredis.FakeRedis(server=server, decode_responses=True)
    real = connection.connect

    def connect(url: str | None = None) -> Any:
        return real(url) if url else strict

    monkeypatch.setattr(labqueue.cli.base, "connect", connect)
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("LABQUEUE_NAMESPACE", raising=False)
    monkeypatch.delenv("LABQUEUE_WEB_PASSWORD", raising=False)
    monkeypatch.setattr(labqueue.worker, "Worker", Stub)
    monkeypatch.setattr(labqueue.worker.supervisor, "Supervisor", Stub)
    monkeypatch.setattr(serve, "import_job_modules", lambda modules: None)
    monkeypatch.setattr(serve, "find_redis_server", lambda: None)
    monkeypatch.setattr(labqueue.delayed, "run_scheduler", lambda *a, **k: 0)
    monkeypatch.setattr(labqueue.web.app, "serve", lambda *a, **k: None)
    monkeypatch.setattr(signal, "signal", lambda *a: None)
    logger = logging.getLogger("labqueue")
    level = logger.level
    raw = fakeredis.FakeRedis(server=server)
    yield raw
    logger.setLevel(level)


def checked(args: list[str], result: Result, secrets: tuple[str, ...] = ()) -> Result:
    """The rules, for one run of one command line."""
    exc = result.exception
    assert exc is None or isinstance(exc, SystemExit), (args, repr(exc), result.output)
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.output)
    assert "unexpected error" not in result.output, (args, result.output)  # a bug, caught
    helped = result.stderr.startswith("Usage:") and result.exit_code == 2  # no command given
    if result.exit_code and not helped:
        assert len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
    assert not CONTROLS & set(result.output), (args, result.output)
    for secret in secrets:
        assert secret not in result.output, (args, result.output)
    return result


def strict_json(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def report(name: str, tried: int, started: float, codes: Counter[int]) -> None:
    spread = ", ".join(f"exit {code}: {n}" for code, n in sorted(codes.items()))
    took = time.monotonic() - started
    print(f"\nhostile {name}: {tried} inputs in {took:.1f} s ({spread})")


def read_on_any_content(
    fake: Any, contents: Any, commands: list[list[str]]
) -> tuple[int, float, Counter[int]]:
    """Run every command of ``commands`` on each of MAX_EXAMPLES Redis contents drawn from
    ``contents``, each kept to the rules (one line, no traceback, strict JSON): (inputs tried,
    when it started, exit codes seen)."""
    runner, tried, codes = CliRunner(), list[World](), Counter[int]()
    started = time.monotonic()

    @HYPOTHESIS
    @given(world=contents)
    def run(world: World) -> None:
        tried.append(world)
        write(fake, world)
        for args in commands:
            result = checked(args, runner.invoke(main, args, color=True))
            codes[result.exit_code] += 1
            if args[-1] == "--json" and result.exit_code == 0:
                strict_json(result.stdout)

    run()
    return len(tried), started, codes


def test_no_command_fails_on_any_redis_content(fake: Any) -> None:
    tried, started, codes = read_on_any_content(fake, worlds(), READING)
    report("CLI (Redis contents x 12 commands)", tried, started, codes)
    assert tried >= MAX_EXAMPLES // 2


# -- random command lines -------------------------------------------------------------
def _commands(group: click.Group, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Every command path of ``labqueue`` and its parameters (a group: none)."""
    found: dict[tuple[str, ...], Any] = {path: []}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.update(_commands(command, (*path, name)))
        else:
            found[(*path, name)] = command.params
    return found


COMMANDS = _commands(main)
SECRET = "sekrit"
passwords = st.text("abcdefghjkmnpqrstuvwxyz0123456789", min_size=4, max_size=8).map(
    lambda s: SECRET + s
)
urls = st.builds(
    lambda form, password: form.format(password),
    st.sampled_from(
        [
            "redis://127.0.0.1:1/0?password={}",
            "redis://:{}@127.0.0.1:1/0",
            "redis://user:{}@127.0.0.1:1/abc",
            "rediss://127.0.0.1:1/0?db=0&password={}&ssl_cert_reqs=bogus",
            "unix:///nonexistent/redis.sock?password={}&db=0",
            "redis://127.0.0.1:99999/0?password={}",
            "redis://127.0.0.1:1/0?socket_timeout=abc&password={}",
        ]
    ),
    passwords,
)
values = st.one_of(
    hostile_text,
    numbers.map(str),
    st.sampled_from(["nan", "inf", "-1", "0", "1e400", "9" * 5000, "", "-", "*", "a b", "q,r"]),
    st.sampled_from(["{}", "[]", '{"to": "a@b.c"}', "[1, 2.5, null]", '["\\ud800"]', "{nope"]),
    st.sampled_from([150, 100_000]).map(lambda n: deep(n).decode()),
    st.sampled_from(["2026-01-01T09:00:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00"]),
    urls,
)


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    """A command and some of its parameters, each with a hostile value where it takes
    one; now and then a stray token, a repeated or a missing value."""
    path = draw(st.sampled_from(sorted(COMMANDS)))
    params = COMMANDS[path]
    tokens = [
        draw(values) for p in params if isinstance(p, click.Argument) and draw(st.integers(0, 9))
    ]
    options = [p for p in params if isinstance(p, click.Option)]
    for param in draw(st.lists(st.sampled_from(options or [None]), max_size=4)):
        if param is None:
            continue
        tokens.append(draw(st.sampled_from(param.opts + param.secondary_opts)))
        if not param.is_flag and draw(st.integers(0, 9)):
            tokens.append(draw(values))
    if not draw(st.integers(0, 4)):
        tokens.insert(draw(st.integers(0, len(tokens))), draw(values | st.just("--help")))
    return [*path, *tokens]


def test_no_command_line_gives_a_traceback(fake: Any) -> None:
    runner = CliRunner()
    tried: list[list[str]] = []
    codes: Counter[int] = Counter()
    started = time.monotonic()

    @HYPOTHESIS
    @given(args=command_lines(), world=worlds())
    def run(args: list[str], world: World) -> None:
        tried.append(args)
        write(fake, world)
        secrets = tuple(re.findall(rf"{SECRET}[a-z0-9]+", " ".join(args)))
        result = checked(args, runner.invoke(main, args, color=True), secrets)
        codes[result.exit_code] += 1

    run()
    report("CLI (command lines)", len(tried), started, codes)
    assert len(tried) >= MAX_EXAMPLES // 2
