"""The rule (issue 15): the worker never dies from a job or from Redis content; it logs once
per distinct problem, never in a hot loop.

Hypothesis fills the layout's keys (the queues set, queue lists, the failed store, the workers
set, the heartbeat hash, the stat counters, per-worker counters and busy keys, status keys,
the delayed schedule and its lists, in-progress hashes, the pruning lock) with values of
random types and random bytes: text that is not UTF-8, JSON nested thousands deep, numbers
past any range, scores of inf, payloads naming registered and unregistered classes. Beside
the garbage wait valid jobs, queued and delayed. A burst worker (its delayed mover included)
runs over it all, and then the mover alone a few more times. Each example asserts: the worker
returns normally, every valid job ran exactly once (none lost, none twice), its status says
complete, and the log stays short (a hot loop would write thousands of lines).

Not generated, on purpose: worker ids and heartbeat values that are not UTF-8 (registration
and liveness read them; that is issue 15's fleet part), and garbage in the valid jobs' own
queue list and delayed lists (a test cannot expect jobs it destroyed to run).
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import fakeredis
import pytest
import redis
from hard_jobs import DONE, Done
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import labqueue
from labqueue import badkeys
from labqueue.delayed import DelayedMover
from labqueue.keys import Keys, WorkerId

#: Generated inputs per run: on fakeredis, and on the real redis-server (slower per input).
MAX_EXAMPLES = 150
MAX_EXAMPLES_REAL = 30

K = Keys()
HOST = socket.gethostname()
VALID_JOBS = 3
VALID_DELAYED = 2
tried: dict[str, int] = {"fakeredis": 0, "redis-server": 0}

# -- what the garbage is made of -----------------------------------------------------------
SPECIAL = [
    b"",
    b"0",
    b"-0",
    b"007",
    b"1.5",
    b"9223372036854775807",
    b"-9223372036854775809",
    b"99999999999999999999999",
    b"1e400",
    b"inf",
    b"-inf",
    b"nan",
    b"\xff\xfe\xfd",
    b"\x00",
    b"[" * 5000 + b"]" * 5000,
    b'{"a":' * 3000 + b"1" + b"}" * 3000,
    b'{"class":"Hard::Noise","args":[],"queue":"default"}',
    b'{"class":"Hard::Noise","args":[1e999],"id":12,"queue":"other"}',
    b'{"class":"os.system","args":["touch /tmp/labqueue-pwned"],"queue":"default"}',
    b'{"class":"Hard::Noise","args":[],"queue":"bad queue,*"}',
    b'{"class":"Hard::Noise","args":[],"scheduled_for":1e999,"queue":"default"}',
    b'{"queue":"other"}',
    b"null",
    b'"just a string"',
    b'{"failed_at":"2099/13/45","payload":{"class":3},"exception":null}',
    b"2026-13-45T99:99:99Z",
]
junk = st.one_of(
    st.sampled_from(SPECIAL),
    st.binary(max_size=24),
    st.text(max_size=16).map(lambda t: t.encode("utf-8", "surrogatepass")),
)
text_junk = st.one_of(  # for what registration and liveness read: UTF-8 only (fleet's part)
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=16),
    st.sampled_from(["2026-13-45T99:99:99Z", "9223372036854775807", "inf", "", "[[[[", "x:y:z"]),
)
queue_names = st.one_of(
    st.sampled_from(["default", "other", "spare", "", " ", "a,b", "*", "q:x"]),
    st.binary(min_size=1, max_size=8),
)
scores = st.one_of(
    st.floats(allow_nan=False),
    st.sampled_from([math.inf, -math.inf, 0.0, 1e300, -1e300]),
    st.integers(-(10**10), 10**10).map(float),
)
KINDS = ["string", "list", "hash", "set", "zset"]


@dataclass
class Value:
    """One key's garbage: its type and content."""

    kind: str
    items: list[bytes] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    def write(self, r: Any, key: bytes | str) -> None:
        r.delete(key)
        items = self.items or [b"x"]
        if self.kind == "string":
            r.set(key, items[0])
        elif self.kind == "list":
            r.rpush(key, *items)
        elif self.kind == "hash":
            r.hset(key, mapping=dict(zip(items, reversed(items), strict=True)))
        elif self.kind == "job":  # an in-progress hash as a worker leaves one, with junk in it
            r.hset(key, mapping={"queue": items[0], "payload": items[-1]})
        elif self.kind == "set":
            r.sadd(key, *items)
        else:
            r.zadd(key, dict(zip(items, self.scores or [0.0] * len(items), strict=False)))


def values(content: st.SearchStrategy[bytes] = junk, kinds: list[str] = KINDS) -> Any:
    return st.builds(
        Value,
        st.sampled_from(kinds),
        st.lists(content, min_size=1, max_size=4),
        st.lists(scores, min_size=4, max_size=4),
    )


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


jobs = st.builds(
    Value,
    st.just("job"),
    st.tuples(queue_names.map(lambda q: q if isinstance(q, bytes) else q.encode()), junk).map(list),
)


@st.composite
def layouts(draw: st.DrawFn) -> dict[str, Any]:
    """Garbage for every key of the layout (None: the key is left as the valid jobs made it)."""
    other_ids = draw(
        st.lists(
            st.sampled_from(
                [
                    f"{HOST}:1:default",
                    f"{HOST}:999999999:*",
                    "elsewhere:12:other",
                    "x",
                    "h:notapid:q",
                ]
            ),
            max_size=3,
            unique=True,
        )
    )
    text_values = values(text_junk.map(str.encode))
    return {
        "queues_mode": draw(st.sampled_from(["set", "wrong"])),
        "queues": draw(st.lists(queue_names, max_size=4)),
        "queues_wrong": draw(values(kinds=["string", "list", "hash", "zset"])),
        "queue_items": draw(st.lists(junk, max_size=4)),  # pushed into 'default' itself
        "queue_lists": draw(st.dictionaries(queue_names, values(), max_size=3)),
        "failed": draw(maybe(values())),
        "workers": draw(maybe(values(text_junk.map(str.encode)))),
        "heartbeat": draw(maybe(text_values)),
        "counters": draw(
            st.dictionaries(
                st.sampled_from(
                    ["processed", "failed", "processed:me", "failed:me", "processed:other"]
                ),
                values(),
                max_size=5,
            )
        ),
        "statuses": draw(st.lists(maybe(values()), min_size=VALID_JOBS, max_size=VALID_JOBS)),
        "schedule_mode": draw(st.sampled_from(["zset", "zset", "wrong"])),
        "schedule": draw(st.lists(st.tuples(junk, scores, maybe(values())), max_size=4)),
        "schedule_wrong": draw(values(kinds=["string", "list", "hash", "set"])),
        "other_ids": other_ids,
        "inprogress": draw(st.lists(maybe(jobs | values()), min_size=4, max_size=4)),
        "busy": draw(maybe(values())),
        "lock": draw(maybe(values())),
    }


# -- one example ----------------------------------------------------------------------------
class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.INFO:
            self.messages.append(record.getMessage())


def fill(r: Any, g: dict[str, Any], me: str) -> tuple[str, bool]:
    """Write the garbage; returns the worker's queues and whether delayed jobs are valid."""
    queues = fill_queues(r, g)
    fill_workers_and_counters(r, g, me)
    return queues, fill_schedule(r, g)


def fill_queues(r: Any, g: dict[str, Any]) -> str:
    for name in g["queues"]:
        r.sadd(K.queues, name)
    for name, value in g["queue_lists"].items():
        raw = name if isinstance(name, bytes) else name.encode()
        if raw != b"default":
            value.write(r, K.queue_prefix.encode() + raw)
            r.sadd(K.queues, raw)  # so that a '*' worker meets it
    if g["queue_items"]:
        r.rpush(K.queue("default"), *g["queue_items"])
    if g["queues_mode"] == "wrong":
        g["queues_wrong"].write(r, K.queues)
        return "default,other,spare"
    return "*"


def fill_workers_and_counters(r: Any, g: dict[str, Any], me: str) -> None:
    simple = {
        K.failed: g["failed"],
        K.workers: g["workers"],
        K.heartbeat: g["heartbeat"],
        K.worker(me): g["busy"],
        K.prune_lock: g["lock"],
    }
    for key, value in simple.items():
        if value is not None:
            value.write(r, key)
    for which, value in g["counters"].items():
        name, _, whose = which.partition(":")
        value.write(r, K.stat(name, {"": None, "me": me, "other": "h:1:q"}[whose]))
    if g["workers"] is None or g["workers"].kind == "set":
        for wid in g["other_ids"]:
            r.sadd(K.workers, wid)
    for wid, value in zip([me, *g["other_ids"]], g["inprogress"], strict=False):
        if value is not None:
            value.write(r, K.inprogress(wid))


def fill_schedule(r: Any, g: dict[str, Any]) -> bool:
    if g["schedule_mode"] != "zset":
        g["schedule_wrong"].write(r, K.delayed_schedule)
        return False
    for member, score, value in g["schedule"]:
        if member.isdigit() and int(member) in valid_seconds():
            continue  # the valid delayed jobs' own lists: not garbage's to destroy
        r.zadd(K.delayed_schedule, {member: score})
        if value is not None:
            value.write(r, K.delayed_prefix.encode() + member)
    return True


def valid_seconds() -> set[int]:
    now = math.floor(time.time())
    return {now - 40 - i for i in range(VALID_DELAYED)} | {now - 41 - i for i in range(3)}


def run_one(r: Any, g: dict[str, Any]) -> None:
    now = math.floor(time.time())
    q = labqueue.Queue("default", r)
    valid = [q.enqueue(Done) for _ in range(VALID_JOBS)]
    queues_guess = "*" if g["queues_mode"] == "set" else "default,other,spare"
    me = str(WorkerId.of(HOST, os.getpid(), queues_guess.split(",")))
    delayed = [q.enqueue_at(now - 40 - i, Done) for i in range(VALID_DELAYED)]
    for job_id, value in zip(valid, g["statuses"], strict=True):
        if value is not None:
            value.write(r, K.status(job_id))
    queues, delayed_ok = fill(r, g, me)
    expected = valid + (delayed if delayed_ok else [])
    lines = Lines()
    logger = logging.getLogger("labqueue")
    logger.addHandler(lines)
    started = time.monotonic()
    try:
        w = labqueue.Worker(queues, r, poll_interval=0.01, scheduler_interval=0.5)
        assert w.id == me
        w.work(burst=True)  # returns normally: nothing raised
        mover = DelayedMover(r, K, threading.Event(), lambda e: None)
        pauses = [mover.tick() for _ in range(3)]
    finally:
        logger.removeHandler(lines)
    took = time.monotonic() - started
    done = [d.decode() if isinstance(d, bytes) else d for d in r.lrange(DONE, 0, -1)]
    assert sorted(done) == sorted(expected), (done, expected)  # each valid job exactly once
    states = labqueue.get_statuses(r, valid)
    assert all(s is not None and s.status == labqueue.JobStatus.COMPLETE for s in states.values())
    garbage = 12 + sum(len(v) for v in (g["queue_items"], g["queue_lists"], g["schedule"]))
    assert len(lines.messages) <= 40 + 6 * garbage, lines.messages[-20:]
    soon = [s for _, s, _ in g["schedule"] if now - 60 < s < time.time() + 1]
    assert pauses[-1] >= 0.4 or soon, (pauses, soon)  # the mover does not hurry for nothing
    assert took < 20, took
    assert not os.path.exists("/tmp/labqueue-pwned")


SETTINGS = dict(
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
        HealthCheck.large_base_example,
    ],
)


@pytest.fixture(autouse=True)
def fresh_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(badkeys, "_said", {})


@pytest.mark.slow
def test_no_redis_content_kills_the_worker_on_fakeredis() -> None:
    started = time.monotonic()

    @settings(max_examples=MAX_EXAMPLES, **SETTINGS)  # type: ignore[arg-type]
    @given(g=layouts())
    def one(g: dict[str, Any]) -> None:
        tried["fakeredis"] += 1
        r = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
        run_one(r, g)

    one()
    print(
        f"\nredis content rule: {tried['fakeredis']} inputs on fakeredis in "
        f"{time.monotonic() - started:.1f} s"
    )


@pytest.mark.slow
def test_no_redis_content_kills_the_worker_on_a_real_server(real: redis.Redis) -> None:
    started = time.monotonic()

    @settings(max_examples=MAX_EXAMPLES_REAL, **SETTINGS)  # type: ignore[arg-type]
    @given(g=layouts())
    def one(g: dict[str, Any]) -> None:
        tried["redis-server"] += 1
        real.flushall()
        run_one(real, g)

    one()
    print(
        f"\nredis content rule: {tried['redis-server']} inputs on a real redis-server in "
        f"{time.monotonic() - started:.1f} s"
    )


def test_the_garbage_is_what_it_says() -> None:
    """The strategy reaches what the docstring promises (so the rule test is not vacuous):
    every type at every kind of key, bytes that are not UTF-8, deep JSON, out-of-range
    numbers and infinite scores."""
    seen: set[str] = set()

    @settings(max_examples=200, **SETTINGS)  # type: ignore[arg-type]
    @given(g=layouts())
    def look(g: dict[str, Any]) -> None:
        flat = repr(g)
        seen.update(k for k in KINDS if f"kind='{k}'" in flat)
        marks = {
            "not UTF-8": "\\xff",
            "deep": "[[[[[[",
            "range": "9223372036854775807",
            "inf": "inf",
        }
        seen.update(name for name, mark in marks.items() if mark in flat)

    look()
    assert seen >= {*KINDS, "not UTF-8", "deep", "range", "inf"}, seen
