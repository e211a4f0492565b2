"""``python -m labqueue.testing.hostworker``: a worker with short heartbeats, for simulated hosts.

    python -m labqueue.testing.hostworker --queues multi --heartbeat 0.3 --dead-after 1.5

The same :class:`~labqueue.Worker` as ``labqueue worker``, with the two liveness settings
the multi-host tests shorten (the CLI keeps its production defaults); REDIS_URL or --url
says where Redis is, and the job classes of :mod:`labqueue.testing.jobs` are registered.
"""

from __future__ import annotations

import argparse
import logging
import sys

from ..connection import connect
from ..worker import Worker
from . import jobs  # noqa: F401 - registers the job classes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m labqueue.testing.hostworker")
    parser.add_argument("--queues", default="*")
    parser.add_argument("--url", default=None)
    parser.add_argument("--heartbeat", type=float, default=0.5)
    parser.add_argument("--dead-after", type=float, default=2.0)
    parser.add_argument("--poll-interval", type=float, default=0.1)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    worker = Worker(
        args.queues,
        connect(args.url),
        poll_interval=args.poll_interval,
        heartbeat_interval=args.heartbeat,
        dead_after=args.dead_after,
    )
    worker.work()


if __name__ == "__main__":
    main()
