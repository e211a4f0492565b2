"""A Redis failover under load, measured: what workers and producers saw, and what was lost.

    run = failover_under_load(SentinelStack(replica_delay=0.05), workdir, durable=False)
    run.lost            # acknowledged enqueues of which the new primary has no trace
    run.worker_outages  # seconds each worker was without Redis ("Redis is back after ...")

Producer threads enqueue as fast as they can (``rate`` at most, together) to the primary the
sentinels name, through a ``redis+sentinel://`` URL; worker processes run the jobs. After
``before`` seconds the primary is SIGKILLed and its replication link cut (the replica's
last ``replica_delay`` seconds of the stream die with it, as with a host that loses power);
the sentinels promote the replica; the producer keeps enqueueing (an enqueue that raises is
not acknowledged: the producer tries the next one) and the workers carry on, ``after``
seconds more. Then the queue drains, and each acknowledged job id is looked up on the new
primary: no status key at all means its enqueue was lost.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from .. import procs
from ..connection import connect
from ..errors import LabqueueError, NotReplicated
from ..keys import Keys
from ..queue import Queue
from ..status import JobStatus, get_statuses
from .jobs import Tick
from .sentinel import SentinelStack

QUEUE = "failover"
_LOCK = threading.Lock()  # the producers' counts
_BACK = re.compile(r"Redis is back after ([0-9.]+) s")


@dataclass
class FailoverRun:
    """What one failover under load did."""

    durable: bool
    acked: list[str] = field(default_factory=list)  #: ids of enqueues that returned
    acked_at: dict[str, float] = field(default_factory=dict)  #: id -> seconds from the start
    killed_at: float = 0.0  #: when the primary was killed, seconds from the start
    refused: int = 0  #: enqueues that raised (not acknowledged)
    #: durable enqueues the (new) primary took but no replica confirmed: after a failover
    #: the promoted replica has no replica of its own until one joins
    not_replicated: int = 0
    enqueue_s: float = 0.0  #: time spent in acknowledged enqueues
    longest_gap_s: float = 0.0  #: the producer's longest time between two acknowledged ones
    failover_s: float = 0.0  #: kill -> the sentinels name the promoted replica
    worker_outages: list[float] = field(default_factory=list)
    workers_survived: bool = False  #: the same worker processes ran before and after
    lost: list[str] = field(default_factory=list)  #: acknowledged, then no trace at all
    unfinished: list[str] = field(default_factory=list)  #: on the new primary, not complete

    @property
    def per_enqueue_ms(self) -> float:
        return 1000 * self.enqueue_s / max(1, len(self.acked))


class _Producer(threading.Thread):
    def __init__(self, url: str, run: FailoverRun, rate: float, t0: float) -> None:
        super().__init__(name="failover-producer", daemon=True)
        self.queue = Queue(QUEUE, connect(url), durable=run.durable)
        self.run_ = run
        self.pause = 1.0 / rate
        self.t0 = t0
        self.stop = threading.Event()

    def run(self) -> None:
        last = time.monotonic()
        while not self.stop.is_set():
            start = time.monotonic()
            try:
                job_id = self.queue.enqueue(Tick)
            except (redis.RedisError, LabqueueError) as exc:
                with _LOCK:
                    self.run_.refused += 1
                    self.run_.not_replicated += isinstance(exc, NotReplicated)
                self.stop.wait(0.05)
                continue
            now = time.monotonic()
            with _LOCK:
                self.run_.acked.append(job_id)
                self.run_.acked_at[job_id] = now - self.t0
                self.run_.enqueue_s += now - start
                self.run_.longest_gap_s = max(self.run_.longest_gap_s, now - last)
            last = now
            self.stop.wait(max(0.0, self.pause - (now - start)))


def failover_under_load(
    stack: SentinelStack,
    workdir: Path,
    *,
    durable: bool,
    workers: int = 2,
    producers: int = 4,
    rate: float = 500.0,
    before: float = 1.0,
    after: float = 1.0,
) -> FailoverRun:
    """Start ``stack``, load it, fail it over, drain, count; the stack is stopped after."""
    run = FailoverRun(durable)
    workdir.mkdir(parents=True, exist_ok=True)
    with stack:
        children = [_worker(stack.url, workdir, i) for i in range(workers)]
        client = connect(stack.url)
        procs.wait_until(  # a worker that starts during the failover exits: start them first
            lambda: len(client.smembers(Keys().workers)) >= workers, 30, what="workers up"
        )
        t0 = time.monotonic()
        threads = [_Producer(stack.url, run, rate / producers, t0) for _ in range(producers)]
        try:
            for thread in threads:
                thread.start()
            time.sleep(before)
            run.killed_at = time.monotonic() - t0
            old = stack.kill_primary()
            run.failover_s = stack.wait_failover(old)
            time.sleep(after)
            for thread in threads:
                thread.stop.set()
            for thread in threads:
                thread.join(10)
            _drain(client, timeout=30)
            run.workers_survived = all(c.alive for c in children)
            _count(client, run)
        finally:
            procs.stop_all(children, timeout=5)
        for child in children:
            run.worker_outages += [float(s) for s in _BACK.findall(child.log_path.read_text())]
    return run


def _worker(url: str, workdir: Path, index: int) -> procs.Child:
    argv = procs.worker_command(
        queues=QUEUE, poll_interval=0.1, imports=["labqueue.testing.jobs"], url=url
    )
    env = procs.child_env({"REDIS_URL": url})
    return procs.Child(f"worker-{index}", argv, env, workdir / f"worker-{index}.log").start()


def _drain(client: redis.Redis, timeout: float) -> None:
    keys = Keys()

    def empty() -> bool:
        busy = list(client.scan_iter(match=keys.inprogress_prefix + "*", count=100))
        return client.llen(keys.queue(QUEUE)) == 0 and not busy

    procs.wait_until(empty, timeout, interval=0.1, what="drained", errors=(redis.RedisError,))


def _count(client: redis.Redis, run: FailoverRun) -> None:
    for ids in (run.acked[i : i + 1000] for i in range(0, len(run.acked), 1000)):
        for job_id, record in get_statuses(client, ids).items():
            if record is None:
                run.lost.append(job_id)
            elif record.status != JobStatus.COMPLETE:
                run.unfinished.append(job_id)
