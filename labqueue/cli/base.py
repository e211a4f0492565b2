"""What every ``labqueue`` command shares: one-line errors, --url/--namespace, connecting."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click
import redis

from .. import connection
from ..errors import LabqueueError
from ..keys import DEFAULT_NAMESPACE


class BadUsage(click.ClickException):
    """A usage mistake, told in one line (exit 2) instead of click's usage block."""

    exit_code = 2


class Group(click.Group):
    """Turns usage, labqueue and Redis errors into one line and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx else ctx.command_path
            raise BadUsage(f"{exc.format_message()} (see `{where} --help`)") from None
        except LabqueueError as exc:
            raise click.ClickException(str(exc)) from None
        except redis.RedisError as exc:
            raise click.ClickException(f"Redis error: {exc}") from None


def common(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The options every command shares."""
    fn = click.option(
        "--namespace",
        envvar="LABQUEUE_NAMESPACE",
        default=DEFAULT_NAMESPACE,
        show_default=True,
        help="Key prefix (Resque's default: resque).",
    )(fn)
    return click.option(
        "--url",
        envvar="REDIS_URL",
        default=None,
        metavar="URL",
        help="Redis URL (default: $REDIS_URL, else an embedded redis-server).",
    )(fn)


def open_connection(url: str | None, announce: bool = True) -> Any:
    conn = connection.connect(url)
    if url is None and announce:
        where = connection.connection_url(conn)
        if where:
            click.echo(
                f"labqueue: no --url or REDIS_URL, so a private redis-server at {where} that "
                "stops with this command; to share one, run `labqueue redis` and export the "
                "REDIS_URL it prints",
                err=True,
            )
    return conn


def parse_args_json(text: str | None) -> tuple[list[Any], dict[str, Any]]:
    if not text:
        return [], {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(
            f'not JSON ({exc}); e.g. --args \'{{"to": "a@b.c"}}\'', param_hint="--args"
        ) from None
    if isinstance(value, dict):
        return [], value
    if isinstance(value, list):
        return value, {}
    raise click.BadParameter(
        "must be a JSON object (keyword data) or array (positional args)", param_hint="--args"
    )
