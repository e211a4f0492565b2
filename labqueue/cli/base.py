"""What every ``labqueue`` command shares: one-line errors, --url/--namespace, connecting."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

import click
import redis

from ..connection import connect, connection_url, redact_text
from ..errors import LabqueueError, UnreadableData
from ..keys import DEFAULT_NAMESPACE
from ..reading import loads, printable, tolerant

R = TypeVar("R")


class BadUsage(click.ClickException):
    """A usage mistake, told in one line (exit 2) instead of click's usage block."""

    exit_code = 2


class Group(click.Group):
    """Turns usage, labqueue and Redis errors into one line and a non-zero exit. A command
    built on labqueue adds its own errors: ``@click.group(cls=Group, errors=(StoreError,))``.

    Every message is told in one line, with control characters escaped and no password
    of a URL the command was given (as ``--url``, ``REDIS_URL`` or any argument), in any
    form; anything else that escapes a command is told as one line too, as the bug it is.
    """

    def __init__(self, *args: Any, errors: tuple[type[Exception], ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.errors: tuple[type[Exception], ...] = (LabqueueError, *errors)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta.setdefault(_ARGV, [a for a in args if isinstance(a, str)])  # the outermost
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _HELP:  # a group given no command: its help, as click shows it
            raise
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx else ctx.command_path
            raise BadUsage(_told(ctx, f"{exc.format_message()} (see `{where} --help`)")) from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:  # the reader went away (`stats | head`): click ends quietly
            raise
        except self.errors as exc:
            raise click.ClickException(_told(ctx, str(exc))) from None
        except redis.RedisError as exc:
            raise click.ClickException(_told(ctx, f"Redis error: {exc}")) from None
        except Exception as exc:  # a bug: still one line, never a traceback
            told = _told(ctx, f"{type(exc).__name__}: {exc}")
            raise click.ClickException(f"unexpected error (a bug in labqueue): {told}") from None


#: What click raises to show a group's help when no command is given (click 8.2 on).
_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())
#: Where :class:`Group` keeps the command line it was given, to redact it from messages.
_ARGV = "labqueue.argv"


def _told(ctx: click.Context, message: str) -> str:
    """``message`` as the terminal gets it: one line, escaped, no password of any URL the
    command was given in any form."""
    urls = [a for a in ctx.meta.get(_ARGV, []) if "://" in a]
    shown = redact_text(message, *urls, os.environ.get("REDIS_URL"))
    return printable(shown)


class Target:
    """Where a command works: the Redis at ``--url`` and the key ``--namespace``.

    :attr:`connection` connects on first use, after the command has checked its arguments,
    so a usage mistake is told before a server is dialled or started.
    """

    def __init__(self, url: str | None, namespace: str, announce: bool = True) -> None:
        self.url = url
        self.namespace = namespace
        self.announce = announce

    @functools.cached_property
    def connection(self) -> redis.Redis:
        """The client (``--url``, else ``REDIS_URL``, else a private embedded server)."""
        conn = connect(self.url)
        where = connection_url(conn) if self.url is None and self.announce else None
        if where:
            click.echo(
                f"labqueue: no --url or REDIS_URL, so a private redis-server at {where} that "
                "stops with this command; to share one, run `labqueue redis` and export the "
                "REDIS_URL it prints",
                err=True,
            )
        return conn

    @functools.cached_property
    def reader(self) -> redis.Redis:
        """A client of the same server for the commands that look: it reads any bytes
        (:func:`labqueue.reading.tolerant`), where the worker keeps its strict one (a
        payload that is not UTF-8 is its to quarantine)."""
        return tolerant(self.connection)


def pass_connection(announce: bool = True) -> Callable[[Callable[..., R]], Callable[..., R]]:
    """Adds ``--url`` and ``--namespace`` to a command and hands it a :class:`Target` as
    ``target``. A private embedded server is announced on stderr, unless ``announce`` is
    False or the command was given ``--json`` (its output stays machine-readable)."""

    def decorate(fn: Callable[..., R]) -> Callable[..., R]:
        @functools.wraps(fn)
        def command(*args: Any, url: str | None, namespace: str, **kwargs: Any) -> R:
            check_text(click.get_current_context())
            loud = announce and not kwargs.get("as_json", False)
            return fn(*args, target=Target(url, namespace, loud), **kwargs)

        command = click.option(
            "--namespace",
            envvar="LABQUEUE_NAMESPACE",
            default=DEFAULT_NAMESPACE,
            show_default=True,
            help="Key prefix (Resque's default: resque).",
        )(command)
        return click.option(
            "--url",
            envvar="REDIS_URL",
            default=None,
            metavar="URL",
            help="Redis URL (default: $REDIS_URL, else an embedded redis-server).",
        )(command)

    return decorate


def check_text(ctx: click.Context) -> None:
    """Every text argument of the command is UTF-8 text (bytes that are not arrive from the
    command line as lone surrogates): else a usage error naming it, never a silent change."""
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        for text in value if isinstance(value, tuple | list) else (value,):
            if not isinstance(text, str):
                continue
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                shown = printable(text[:80])
                raise click.BadParameter(f"{shown} is not UTF-8 text", ctx, param) from None


def parse_args_json(text: str | None) -> tuple[list[Any], dict[str, Any]]:
    if not text:
        return [], {}
    try:
        value = loads(text)
    except UnreadableData as exc:
        raise click.BadParameter(
            f'{exc}; e.g. --args \'{{"to": "a@b.c"}}\'', param_hint="--args"
        ) from None
    if isinstance(value, dict):
        return [], value
    if isinstance(value, list):
        return value, {}
    raise click.BadParameter(
        "must be a JSON object (keyword data) or array (positional args)", param_hint="--args"
    )
