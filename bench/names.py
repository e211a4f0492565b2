"""Names the benchmark's own processes agree on: its Redis keys and the URL's variable.

A leaf (it imports nothing), so a peer's worker process loads it without labqueue: the
I/O round's memory figures then weigh each queue's own imports only.
"""

from __future__ import annotations

#: Keys the benchmark itself writes: the raw redis-py lists of the ceiling, the list probe
#: jobs push their start times to, the staging lists of huey and RQ, and the list the I/O
#: round's sleep jobs note their start and end in. They are not labqueue keys (those come
#: from labqueue.keys) and live outside every queue's namespace.
RAW_SRC = "bench:raw:src"
RAW_DST = "bench:raw:dst"
PROBE_KEY = "bench:probe"
HUEY_STAGING = "bench:huey:staging"
RQ_STAGING = "bench:rq:staging"
IO_DONE = "bench:io:done"

#: The queue the I/O round's sleep jobs wait on (in every queue's own keys, on its own db).
IO_QUEUE = "bench-io"

#: Environment variable that gives worker processes (and their jobs) the server URL.
URL_ENV = "BENCH_REDIS_URL"
