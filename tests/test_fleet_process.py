"""Mixed fleets with real processes: Resque's and php-resque's prune rules (their ``ps``
commands run for real, their regexes applied as upstream does) against a live
``labqueue worker`` process; a wrong prune healed by its next heartbeat."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis
from resque_rules import php_prune, php_worker_pids, ruby_prune, ruby_worker_pids, unregister
from waiting import wait_for

from labqueue.keys import Keys
from labqueue.procs import worker_command

K = Keys()
HOST = socket.gethostname()

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/cmdline"), reason="Linux ps")


@pytest.fixture
def labqueue_worker(real: redis.Redis, worker_env: dict[str, str]) -> Iterator[tuple[int, str]]:
    """A live ``labqueue worker`` on email,erp: (pid, its worker id)."""
    cmd = worker_command(queues="email,erp", imports=["jobs_for_tests"], poll_interval=0.2)
    proc = subprocess.Popen(cmd, env=worker_env, stderr=subprocess.DEVNULL)
    wid = f"{HOST}:{proc.pid}:email,erp"
    try:
        wait_for(lambda: real.sismember(K.workers, wid), 30, "the worker to register")
        yield proc.pid, wid
    finally:
        proc.terminate()
        proc.wait(10)


def title(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode().strip()


def test_the_worker_title_is_one_resques_and_php_resques_rules_keep(
    labqueue_worker: tuple[int, str],
) -> None:
    pid, _wid = labqueue_worker
    assert title(pid).startswith("resque-") and "-labqueue: Waiting for email,erp" in title(pid)
    assert str(pid) in ruby_worker_pids() and str(pid) in php_worker_pids()


def test_resques_and_php_resques_prunes_keep_a_live_labqueue_worker(
    real: redis.Redis, labqueue_worker: tuple[int, str]
) -> None:
    _pid, wid = labqueue_worker
    plain = subprocess.Popen(["sleep", "60"])  # a live process without the title: the control
    ghost = f"{HOST}:{plain.pid}:email,erp"
    real.sadd(K.workers, ghost)
    try:
        assert ruby_prune(real, K, ["email", "erp"], HOST) == [ghost]
        real.sadd(K.workers, ghost)
        assert php_prune(real, K, HOST) == [ghost]
        assert ruby_prune(real, K, ["*"], HOST) == []
    finally:
        plain.kill()
        plain.wait()
    assert real.sismember(K.workers, wid) and real.hget(K.heartbeat, wid)
    assert real.lrange(K.failed, 0, -1) == []


def test_the_title_is_set_before_the_worker_registers(
    real: redis.Redis, worker_env: dict[str, str]
) -> None:
    cmd = worker_command(queues="erp", imports=["jobs_for_tests"])
    proc = subprocess.Popen(cmd, env=worker_env, stderr=subprocess.DEVNULL)
    wid = f"{HOST}:{proc.pid}:erp"
    try:
        wait_for(lambda: real.sismember(K.workers, wid), 30, "the worker to register")
        seen = title(proc.pid)  # read at once: a Resque worker starting now would see this
        assert "-labqueue: " in seen and str(proc.pid) in ruby_worker_pids()
    finally:
        proc.terminate()
        proc.wait(10)


def test_a_wrongly_pruned_worker_process_heals_within_one_heartbeat(
    real: redis.Redis, labqueue_worker: tuple[int, str]
) -> None:
    _pid, wid = labqueue_worker
    unregister(real, K, wid, None, php=False)  # as if a Solaris Ruby pruner had not seen it
    pruned = time.monotonic()
    wait_for(lambda: real.sismember(K.workers, wid), 8, "the worker to register again")
    assert time.monotonic() - pruned <= 5.0 + 1.0  # the worker's heartbeat: 5 s
    assert real.hget(K.heartbeat, wid) and real.get(K.worker_started(wid))


def test_a_php_status_round_trip_through_a_worker_process(
    real: redis.Redis, labqueue_worker: tuple[int, str]
) -> None:
    """php-resque's ``Resque::enqueue($q, $class, $args, true, 'shop')``, run by labqueue."""
    job_id = "0123456789abcdef0123456789abcdef"
    payload = (
        '{"class":"tests.Record","args":[{"tag":"php"}],"id":"'
        + job_id
        + '","prefix":"shop","queue_time":1764413115.5}'
    )
    key = K.status(job_id, "shop")
    real.set(key, '{"status":1,"updated":1764413115,"started":1764413115,"result":null}')
    real.rpush(K.queue("email"), payload)
    wait_for(lambda: '"status":4' in (real.get(key) or ""), 10, "the job to complete")
    assert real.get(key).startswith('{"status":4,"updated":')
    assert real.get(key).endswith(',"started":1764413115,"result":null}')
    assert 86000 < real.ttl(key) <= 86400 and not real.exists(K.status(job_id))
