"""Resque's and php-resque's own rules, reimplemented from their sources for the tests.

- Ruby, resque 3.0.0 ``lib/resque/worker.rb``: ``linux_worker_pids`` runs
  ``ps -A -o pid,command | grep -E "[r]esque:work|[r]esque:\\sStarting|[r]esque-[0-9]" |
  grep -v "resque-web"`` and keeps each line's first word; ``prune_dead_workers`` drops
  (Path A) every id of ``workers:heartbeat`` whose beat is more than ``prune_interval`` (300)
  whole seconds old on Redis' clock, and (Path B) every registered id of its host, with its
  queue set (or any, for a ``*`` pruner), whose pid is not among those; ``unregister_worker``
  writes ``Resque::DirtyExit`` / ``Resque::PruneDeadWorkerDirtyExit`` for a busy worker's job.
- php-resque 1.3.6 ``lib/Resque/Worker.php``: ``workerPids`` runs
  ``ps -A -o pid,args | grep [r]esque`` and keeps ``explode(' ', trim($line), 2)[0]``;
  ``pruneDeadWorkers`` drops every registered id of its host whose pid is not among those
  (and not its own); ``unregisterWorker`` writes no failure and leaves the heartbeat.
- resque-scheduler 5.0.0 ``delaying_extensions.rb``: ``delayed_push`` and ``remove_delayed``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from datetime import UTC, datetime
from typing import Any

from labqueue.keys import Keys

RUBY_PS_PATTERN = re.compile(r"resque:work|resque:\sStarting|resque-[0-9]")


def ruby_worker_pids() -> set[str]:
    out = subprocess.run(
        ["ps", "-A", "-o", "pid,command"], capture_output=True, text=True, check=True
    ).stdout
    lines = [ln for ln in out.split("\n") if RUBY_PS_PATTERN.search(ln) and "resque-web" not in ln]
    return {ln.split()[0] for ln in lines if ln.split()}


def php_worker_pids() -> set[str]:
    out = subprocess.run(
        ["ps", "-A", "-o", "pid,args"], capture_output=True, text=True, check=True
    ).stdout
    return {ln.strip().split(" ", 1)[0] for ln in out.split("\n") if "resque" in ln}


def server_time(r: Any) -> int:
    """Resque's ``data_store.server_time``: Redis TIME, whole seconds."""
    return int(r.time()[0])


def ruby_beat(ts: float) -> str:
    """``Time#iso8601`` of a Ruby process under TZ=UTC."""
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def unregister(r: Any, k: Keys, wid: str, exception: tuple[str, str] | None, php: bool) -> None:
    """``unregister_worker`` (Ruby) / ``unregisterWorker`` (PHP, on a fresh instance)."""
    busy = r.get(k.worker(wid))
    if busy and exception and not php:
        job = json.loads(busy)
        r.rpush(
            k.failed,
            json.dumps(
                {
                    "failed_at": time.strftime("%Y/%m/%d %H:%M:%S UTC", time.gmtime()),
                    "payload": job["payload"],
                    "exception": exception[0],
                    "error": exception[1],
                    "backtrace": [],
                    "worker": wid,
                    "queue": job["queue"],
                },
                separators=(",", ":"),
            ),
        )
    r.srem(k.workers, wid)
    r.delete(k.worker(wid), k.worker_started(wid), k.stat("processed", wid))
    r.delete(k.stat("failed", wid))
    if not php:
        r.hdel(k.heartbeat, wid)


def ruby_prune(r: Any, k: Keys, queues: list[str], hostname: str) -> list[str]:
    """A Ruby worker on ``queues`` starting on ``hostname``: ``prune_dead_workers``."""
    pruned, now = [], server_time(r)
    for wid, beat in r.hgetall(k.heartbeat).items():  # Path A
        parsed = datetime.fromisoformat(beat).timestamp()
        if int(now - parsed) > 300:
            job = json.loads(r.get(k.worker(wid)) or "{}").get("payload", {}).get("class")
            error = (
                f"Worker {wid} did not gracefully exit while processing {job or '<Unknown Job>'}"
            )
            unregister(r, k, wid, ("Resque::PruneDeadWorkerDirtyExit", error), php=False)
            pruned.append(wid)
    known = ruby_worker_pids()
    for wid in r.smembers(k.workers):  # Path B
        if wid in pruned:
            continue
        # Ruby's `host, pid, worker_queues_raw = worker.id.split(':')` keeps the first three
        # fields and drops the rest (a labqueue thread's `:tK`)
        host, pid, worker_queues, *_ = wid.split(":")
        if "*" not in queues and set(worker_queues.split(",")) != set(queues):
            continue
        if host != hostname or pid in known:
            continue
        unregister(r, k, wid, ("Resque::DirtyExit", "Job still being processed"), php=False)
        pruned.append(wid)
    return pruned


def php_prune(r: Any, k: Keys, hostname: str) -> list[str]:
    """A php-resque worker starting on ``hostname``: ``pruneDeadWorkers``."""
    pruned, pids = [], php_worker_pids()
    for wid in r.smembers(k.workers):
        host, pid, _queues = wid.split(":", 2)
        if host != hostname or pid in pids or pid == str(os.getpid()):
            continue
        unregister(r, k, wid, None, php=True)
        pruned.append(wid)
    return pruned


def ruby_encode(obj: Any) -> str:
    """``Resque.encode`` (MultiJson.dump: compact, keys in insertion order)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def delayed_push(r: Any, k: Keys, ts: int, klass: str, args: list[Any], queue: str) -> str:
    """resque-scheduler's ``delayed_push``."""
    item = ruby_encode({"class": klass, "args": args, "queue": queue})
    r.rpush(k.delayed(ts), item)
    r.sadd(k.timestamps(item), f"delayed:{ts}")
    r.zadd(k.delayed_schedule, {str(ts): ts})
    return item


def remove_delayed_in_queue(r: Any, k: Keys, klass: str, queue: str, *args: Any) -> int:
    """resque-scheduler's ``remove_delayed_in_queue`` -> ``remove_delayed_job``."""
    search = ruby_encode({"class": klass, "args": list(args), "queue": queue})
    removed = 0
    for member in r.smembers(k.timestamps(search)):
        removed += r.lrem(k.delayed_prefix + member.split(":", 1)[1], 0, search)
        r.srem(k.timestamps(search), member)
    return removed
