"""``python -m bench.peer_worker huey|rq --url URL``: one peer worker, as its docs run it.

huey: its consumer with one worker thread. RQ: a ``SimpleWorker`` on queue ``bench``.
Both stop on TERM.
"""

from __future__ import annotations

import argparse
import logging


def run_huey(url: str) -> None:
    from huey.consumer import Consumer

    from .peers import huey_app

    huey, _ = huey_app(url)
    Consumer(huey, workers=1, worker_type="thread").run()


def run_rq(url: str) -> None:
    import redis
    import rq

    from .common import BENCH_QUEUE

    conn = redis.Redis.from_url(url)
    rq.SimpleWorker([rq.Queue(BENCH_QUEUE, connection=conn)], connection=conn).work(
        logging_level="WARNING"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("system", choices=["huey", "rq"])
    parser.add_argument("--url", required=True, help="Redis URL of the benchmark's server")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    (run_huey if args.system == "huey" else run_rq)(args.url)


if __name__ == "__main__":
    main()
