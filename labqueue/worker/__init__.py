"""The worker side: everything that takes jobs from Redis and runs them.

    loop.py         Worker: fetch, perform, record, repeat; registration, shutdown
    threads.py      ``--threads N``: N workers in one process, one heartbeat and subscription
    signals.py      TERM/INT/QUIT: finish, or (a second one) give the job back
    sides.py        the heartbeat thread, and side threads' problems said once
    options.py      queues, intervals and threads, checked before a worker starts
    outcome.py      what FINISH records for a job
    wakeups.py      sleeping on pub/sub until a push to one of the worker's queues
    reliable.py     reliable fetch: the in-progress hash, finish-and-fetch, release
    execution.py    running ``perform``: a time limit, or a child process (``--fork``)
    retry.py        resque-retry's retries: a limit and a backoff per job class
    guard.py        Redis outages waited out; payloads that are not UTF-8 quarantined
    liveness.py     telling dead workers from live ones, and releasing the dead ones' jobs
    supervisor.py   ``labqueue worker -c N``: N worker processes under one parent

The producer side (queue, jobs, payload, delayed, status, stats, failures, ...) never
imports this package (tests/test_project.py says so); this package imports the producer
side freely.
"""

from .loop import Worker
from .options import parse_queues

__all__ = ["Worker", "parse_queues"]
