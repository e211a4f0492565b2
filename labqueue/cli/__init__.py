"""The ``labqueue`` command: one click group, one verb a subcommand.

Every command takes ``--url`` (default: ``REDIS_URL``, then the embedded server). User
mistakes print one line and exit 2 (bad usage) or 1 (anything else); never a traceback.
The verbs live in two modules: :mod:`.serve` (redis, worker, scheduler, web) and
:mod:`.queries` (enqueue, stats, status, delayed, failed).
"""

from __future__ import annotations

import click

from . import queries, serve
from .base import Group

__all__ = ["main"]


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="labqueue")
def main() -> None:
    """labqueue: a Redis job queue that speaks Resque's layout."""


for command in (
    serve.redis_cmd,
    queries.enqueue,
    serve.worker,
    queries.stats,
    queries.status,
    queries.delayed,
    queries.failed,
    serve.scheduler,
    serve.web,
):
    main.add_command(command)
