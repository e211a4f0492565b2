"""The concurrency limit with real worker processes on a real redis-server: several processes
never run more than K at once, and a holder's SIGKILL returns its slot within lease + one
heartbeat of a live worker (the bound labqueue.worker.limits states)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import redis
from limit_jobs import DONE, GO, PEAK, RUNNING, STARTED, Erp, Held
from waiting import wait_for

import labqueue
from labqueue.keys import Keys
from labqueue.worker.limits import LEASE_BEATS

K = Keys()
QUEUE = "limits"


def test_processes_never_run_more_than_k(real: redis.Redis, worker_env: dict[str, str]) -> None:
    """`labqueue worker -c 3`: three processes, a limit of 2, measured by the jobs."""
    q = labqueue.Queue(QUEUE, real)
    for i in range(24):
        q.enqueue(Erp, tag=i, seconds=0.05)
    cmd = [sys.executable, "-m", "labqueue", "worker", "-c", "3", "--queues", QUEUE]
    proc = subprocess.Popen(
        [*cmd, "--import", "limit_jobs", "--poll-interval", "0.1"],
        env=worker_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: real.llen(DONE) == 24, what="24 limited jobs", timeout=60)
        busy = {w.split(":")[1] for w in real.smembers(K.workers)}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert len(busy) == 3  # three processes took part
    assert int(real.get(PEAK) or 0) == 2
    assert sorted(map(int, real.lrange(DONE, 0, -1))) == list(range(24))
    assert int(real.get(K.stat("processed")) or 0) == 24


#: A worker process with a short heartbeat (the CLI's is 5 s): the holder the test kills.
HOLDER = """
import limit_jobs, labqueue
labqueue.Worker("limits", poll_interval=0.05, heartbeat_interval={beat}).work()
"""


def test_a_sigkilled_holders_slot_comes_back_within_lease_plus_one_beat(
    real: redis.Redis, worker_env: dict[str, str]
) -> None:
    beat = 0.5
    lease = LEASE_BEATS * beat
    q = labqueue.Queue(QUEUE, real)
    q.enqueue(Held, tag="victim", seconds=60)
    code = HOLDER.format(beat=beat)
    holder = subprocess.Popen([sys.executable, "-c", code], env=worker_env)
    live = labqueue.Worker(QUEUE, real, poll_interval=0.05, heartbeat_interval=beat)
    live.hostname = "live-host"  # another host: it judges the dead holder by its heartbeat
    thread = threading.Thread(target=live.work, daemon=True)
    try:
        wait_for(lambda: real.lrange(STARTED, 0, -1) == ["victim"], what="the holder's job")
        held = real.zrange(K.limit_holders("tests-held"), 0, -1)
        assert len(held) == 1 and f":{holder.pid}:" in held[0]
        q.enqueue(Held, tag="waiting", seconds=0)
        thread.start()
        wait_for(lambda: real.llen(K.limit_parked("tests-held")) == 1, what="the job to park")
        time.sleep(beat)  # the holder keeps its slot while it lives (one beat renews it)
        assert real.llen(K.limit_parked("tests-held")) == 1 and real.llen(DONE) == 0
        killed = time.monotonic()
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        real.decr(RUNNING)  # the killed job runs no more (it could not count itself out)
        # the freed slot goes to the oldest job waiting for it: the victim (enqueued first,
        # put back by the dead-worker release, parked in front) or else the waiting one
        wait_for(lambda: real.llen(STARTED) == 2, what="the slot", timeout=20)
        took = time.monotonic() - killed
    finally:
        _stop(holder, live, thread, real)
    print(f"\nslot back {took:.2f} s after the SIGKILL (bound: lease {lease} s + beat {beat} s)")
    assert lease - beat - 0.2 <= took <= lease + beat + 1.0, took  # 1 s: a busy box
    assert int(real.get(PEAK) or 0) == 1


def _stop(holder: subprocess.Popen[Any], live: labqueue.Worker, thread: Any, r: Any) -> None:
    if holder.poll() is None:
        holder.kill()
        holder.wait(10)
    r.set(GO, 1)
    live.stop()
    if thread.is_alive():
        thread.join(30)
