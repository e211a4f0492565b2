"""labqueue.scripts: every Lua script loads on a real redis-server, and takes exactly the KEYS
and ARGV it documents, as its comment says them, as it declares them, and as it is called."""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis

import labqueue
from labqueue import scripts
from labqueue.delayed import move_due
from labqueue.delayed_index import remove_delayed
from labqueue.keys import Keys
from labqueue.scripts import ALL, Script
from labqueue.worker.guard import Outage
from labqueue.worker.limits import Limits

K = Keys()
SOURCE = "".join(p.read_text() for p in sorted(Path(scripts.__file__).parent.glob("*.py")))


def documented(script: Script) -> dict[str, int | tuple[int, None]]:
    """The counts the ``#:`` comment above the script's constant gives: its highest
    ``KEYS[n]`` and ``ARGV[n]``, or ``(n, None)`` for a tail written ``[n..]``."""
    block = re.search(rf"((?:^#:.*\n)+){script.name} = Script\(", SOURCE, re.M)
    assert block, f"{script.name} has no #: comment"
    out: dict[str, int | tuple[int, None]] = {}
    for table in ("KEYS", "ARGV"):
        found = [
            (int(n), bool(dots)) for n, dots in re.findall(rf"{table}\[(\d+)(\.\.)?\]", block[1])
        ]
        index, open_ended = max(found)
        out[table] = (index, None) if open_ended else index
    return out


def literal_indices(script: Script, table: str) -> set[int]:
    return {int(n) for n in re.findall(rf"{table}\[(\d+)\]", script.text)}


def test_names_are_unique_and_shas_are_the_texts() -> None:
    assert len({s.name for s in ALL}) == len(ALL) == 16
    for script in ALL:
        assert script.sha == hashlib.sha1(script.text.encode()).hexdigest()
        assert getattr(scripts, script.name) is script


@pytest.mark.parametrize("script", ALL, ids=lambda s: s.name)
def test_each_script_documents_what_it_declares_and_reads(script: Script) -> None:
    docs = documented(script)
    for table, declared in (("KEYS", script.keys), ("ARGV", script.args)):
        doc = docs[table]
        if isinstance(doc, int):
            assert declared == doc, f"{script.name} {table}"
        else:  # a tail from [n..]: one item at least (n), or possibly none (n - 1)
            assert isinstance(declared, tuple) and doc[0] - 1 <= declared[0] <= doc[0]
        used = literal_indices(script, table)
        if isinstance(declared, int):  # every slot read, none beyond
            assert used == set(range(1, declared + 1)), f"{script.name} {table}"
        else:  # the fixed part is read; the open tail (a loop) is at most peeked at
            assert max(used) <= declared[0] + 1, f"{script.name} {table}"


def test_every_script_loads_on_a_real_server(real: redis.Redis) -> None:
    real.script_flush()
    for script in ALL:
        assert script.load(real) == script.sha
    assert all(real.script_exists(*(s.sha for s in ALL)))


def test_a_script_the_server_forgot_is_loaded_again_once(real: redis.Redis) -> None:
    q = labqueue.Queue("default", real)
    q.enqueue("Job\\Work\\TestJob")
    real.script_flush()
    q.enqueue("Job\\Work\\TestJob")  # NOSCRIPT, SCRIPT LOAD, EVALSHA again
    assert q.length == 2 and real.script_exists(scripts.ENQUEUE.sha) == [True]


@labqueue.job("Scripts::Retried")
class Retried(labqueue.Job):
    retry_limit = 1
    retry_backoff = (0,)

    def perform(self) -> None:
        raise ConnectionError("down")


@labqueue.job("Scripts::RetriedLater")
class RetriedLater(Retried):
    retry_backoff = (60,)


@labqueue.job("Scripts::Fine")
class Fine(labqueue.Job):
    def perform(self) -> None:
        pass


@labqueue.job("Scripts::Limited", max_concurrency=1)
class Limited(Fine):
    pass


def test_every_call_passes_the_counts_its_script_declares(
    real: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each workflow (enqueue one, many, later; run, fail, retry now and later, quarantine,
    release, claim, beat, drop a dead Ruby worker, move due jobs, remove a delayed job, set a
    bad key aside, take and give back a limiter's slot, sweep the limits) on a real server:
    every script called, each call as declared."""
    calls: list[tuple[str, int, int]] = []

    def recording(method: Any) -> Any:
        def wrapper(self: Script, client: Any, keys: Any, args: Any) -> Any:
            calls.append((self.name, len(keys), len(args)))
            return method(self, client, keys, args)

        return wrapper

    monkeypatch.setattr(Script, "call", recording(Script.call))
    monkeypatch.setattr(Script, "queue", recording(Script.queue))
    q = labqueue.Queue("default", real)
    q.enqueue(Fine)
    q.enqueue_many(Fine, [{"n": 1}, [2]])
    q.enqueue(Retried)
    q.enqueue(RetriedLater)
    q.enqueue(Limited)
    q.enqueue_in(0.05, Fine)
    labqueue.enqueue_together([(q, labqueue.Payload.new("Scripts::Fine", []))], once=True)
    real.rpush(K.queue("default"), b"\xff not UTF-8")
    real.zadd(K.delayed_schedule, {str(math.floor(time.time()) - 1): 1})
    real.rpush(K.delayed(math.floor(time.time()) - 1), '{"class": "Scripts::Fine", "args": []}')
    real.sadd(K.workers, "far:1:default")  # a dead Ruby worker: Resque's prune rule drops it
    real.hset(K.heartbeat, "far:1:default", "2020-01-01T00:00:00+00:00")
    real.set(K.stat("processed"), "not a number")  # set aside by the first finished job
    labqueue.Worker("default", real, poll_interval=0.05).work(burst=True)
    time.sleep(0.06)
    move_due(real, K)
    q.enqueue_in(60, Fine)
    assert remove_delayed(real, K, "Scripts::Fine", [], "default") == 1
    Limits(real, K, labqueue.registry, 1.0, threading.Event(), Outage("test")).beat()
    assert {name for name, _, _ in calls} == {s.name for s in ALL}
    by_name = {s.name: s for s in ALL}
    wrong = [c for c in calls if not by_name[c[0]].takes(c[1], c[2])]
    assert wrong == []
    assert labqueue.FailedStore(real).all()  # the quarantined payload and the unqueued job
