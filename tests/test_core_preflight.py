"""Every Lua script checks the keys it will write before its first write (issue 15 item 7).

For each script and each key it writes: made to hold the wrong type (or, for a counter, a
string INCR refuses), the call fails with BadKey naming that key, what it holds and what
belongs there, and Redis holds exactly what it held before: nothing half written. The same
call on clean keys succeeds (the control). On fakeredis (whose Lua differs: TYPE's reply,
pcall's error) and on a real redis-server."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from badkey_tools import NOT_COUNTERS, WRONG, contents, type_of, wrong_for

import labqueue
from labqueue.failures import Failure
from labqueue.keys import Keys
from labqueue.lua import Script, bad_key
from labqueue.scripts import (
    BEAT,
    CLAIM,
    DROP_FOREIGN,
    ENQUEUE,
    ENQUEUE_NEW,
    MOVE_DUE,
    QUARANTINE,
    RELEASE,
    RETRY,
    SCHEDULE,
    SET_ASIDE,
    STEP,
    UNSCHEDULE,
)

K = Keys()
W = "host:1:default"
JOB = '{"class":"Hard::Done","args":[],"id":"abc"}'
STATUS = '{"status":4,"updated":1,"started":1}'


@dataclass
class Case:
    """One script call: its keys and args, what to set up first, and the keys it checks."""

    script: Script
    keys: tuple[str, ...]
    args: tuple[Any, ...]
    checks: dict[str, str]  # key -> the type that belongs there
    setup: Callable[[Any], None] = lambda r: None


def holding(r: Any) -> None:
    """The worker holds a job, and another waits in its queue."""
    r.hset(K.inprogress(W), mapping={"queue": "default", "payload": JOB})
    r.rpush(K.queue("default"), JOB)


def step(fetch: str | None, failure: str = "") -> Case:
    keys = (
        K.inprogress(W),
        K.worker(W),
        K.queues,
        K.stat("processed"),
        K.stat("processed", W),
        K.failed,
        K.status("abc"),
        K.stat("failed"),
        K.stat("failed", W),
    )
    tail = (60, K.queue_prefix, K.status_prefix, K.STATUS_SUFFIX)
    args = ("1", STATUS, failure, "2026-01-01T00:00:00Z", STATUS, *tail)
    checks = {K.stat("processed"): "integer", K.stat("processed", W): "integer"}
    if failure:
        checks.update({K.stat("failed"): "integer", K.stat("failed", W): "integer"})
        checks[K.failed] = "list"
    if fetch is not None:
        args = (*args, fetch)
        checks.update({K.inprogress(W): "hash", K.queue("default"): "list"})
    if fetch == "*":
        checks[K.queues] = "set"

    def setup(r: Any) -> None:
        holding(r)
        r.sadd(K.queues, "default")

    return Case(STEP, keys, args, checks, setup)


def retry(due: str) -> Case:
    keys = (
        K.inprogress(W),
        K.worker(W),
        K.stat("failed"),
        K.stat("failed", W),
        K.status("abc"),
        K.delayed_schedule,
        K.delayed(int(due or 0)),
        K.queues,
        K.queue("default"),
    )
    args = (STATUS, JOB, due, K.wakeup_channel, "default")
    checks = {K.stat("failed"): "integer", K.stat("failed", W): "integer"}
    if due:
        checks.update({K.delayed(int(due)): "list", K.delayed_schedule: "zset"})
    else:
        checks.update({K.queue("default"): "list", K.queues: "set"})
    return Case(RETRY, keys, args, checks, holding)


def cases() -> dict[str, Case]:
    failure = Failure("now", JOB, "E", "e", [], W, "default").to_json()
    halves = Failure("now", None, "PayloadError", "no queue", [], "scheduler", "").halves()
    due = str(int(time.time()) - 5)

    def delayed(r: Any) -> None:
        r.zadd(K.delayed_schedule, {due: int(due)})
        r.rpush(K.delayed(int(due)), '{"class":"Hard::Done","args":[]}')  # no queue: failed

    release_keys = (
        K.inprogress(W),
        K.workers,
        K.worker(W),
        K.worker_started(W),
        K.heartbeat,
        K.stat("processed", W),
        K.stat("failed", W),
        K.queues,
        K.labqueue_workers,
    )
    item = '{"class":"Hard::Done","args":[],"queue":"default"}'

    def scheduled(r: Any) -> None:
        r.zadd(K.delayed_schedule, {"100": 100})
        r.rpush(K.delayed(100), item)
        r.sadd(K.timestamps(item), K.delayed_member(100))
        r.hset(K.scheduled(100), item, "1 x")

    def foreign(r: Any) -> None:
        r.sadd(K.workers, "far:1:default")
        r.set(K.worker("far:1:default"), "busy")

    return {
        "ENQUEUE": Case(
            ENQUEUE,
            (K.queues, K.queue("default"), K.status("abc")),
            ("default", K.wakeup_channel, STATUS, JOB),
            {K.queues: "set", K.queue("default"): "list"},
        ),
        "ENQUEUE_NEW": Case(
            ENQUEUE_NEW,
            (K.queues, K.queue("default"), K.status("abc")),
            ("default", K.wakeup_channel, STATUS, JOB),
            {K.queues: "set", K.queue("default"): "list"},
        ),
        "SCHEDULE": Case(
            SCHEDULE,
            (
                K.delayed(100),
                K.delayed_schedule,
                K.status("abc"),
                K.timestamps(JOB),
                K.scheduled(100),
            ),
            (100, JOB, STATUS, K.delayed_member(100), "1 note", int(time.time()) + 60),
            {
                K.delayed(100): "list",
                K.delayed_schedule: "zset",
                K.timestamps(JOB): "set",
                K.scheduled(100): "hash",
            },
        ),
        "UNSCHEDULE-one-second": Case(
            UNSCHEDULE,
            (K.delayed_schedule,),
            (
                K.delayed_prefix,
                K.timestamps_prefix,
                K.scheduled_prefix,
                K.delayed_member(""),
                "100",
                item,
                "",
            ),
            {
                K.delayed_schedule: "zset",
                K.timestamps(item): "set",
                K.delayed(100): "list",
                K.scheduled(100): "hash",
            },
            scheduled,
        ),
        "UNSCHEDULE-everywhere": Case(
            UNSCHEDULE,
            (K.delayed_schedule,),
            (
                K.delayed_prefix,
                K.timestamps_prefix,
                K.scheduled_prefix,
                K.delayed_member(""),
                "",
                item,
                "",
            ),
            {K.delayed_schedule: "zset", K.timestamps(item): "set"},
            scheduled,
        ),
        "MOVE_DUE": Case(
            MOVE_DUE,
            (K.delayed_schedule, K.queues, K.failed),
            (
                repr(time.time()),
                K.delayed_prefix,
                K.queue_prefix,
                K.wakeup_channel,
                1000,
                "scheduled_for",
                *halves,
                K.timestamps_prefix,
                K.scheduled_prefix,
                K.delayed_member(""),
            ),
            {K.delayed_schedule: "zset", K.queues: "set", K.failed: "list"},
            delayed,
        ),
        "STEP-finish": step(None),
        "STEP-fail": step(None, failure),
        "STEP-finish-fetch": step("default"),
        "STEP-fail-fetch-all": step("*", failure),
        "RELEASE": Case(
            RELEASE,
            release_keys,
            (W, K.queue_prefix, K.status_prefix, K.STATUS_SUFFIX, STATUS, "1"),
            {
                K.inprogress(W): "hash",
                K.workers: "set",
                K.heartbeat: "hash",
                K.queues: "set",
                K.labqueue_workers: "hash",
                K.queue("default"): "list",
            },
            holding,
        ),
        "RETRY-now": retry(""),
        "RETRY-later": retry(str(int(time.time()) + 60)),
        "QUARANTINE": Case(
            QUARANTINE,
            (
                K.inprogress(W),
                K.worker(W),
                K.stat("failed"),
                K.stat("failed", W),
                K.failed,
                K.stat("processed"),
                K.stat("processed", W),
            ),
            (JOB, failure),
            {
                K.inprogress(W): "hash",
                K.stat("failed"): "integer",
                K.stat("failed", W): "integer",
                K.failed: "list",
                K.stat("processed"): "integer",
                K.stat("processed", W): "integer",
            },
            holding,
        ),
        "CLAIM": Case(CLAIM, (K.labqueue_workers,), (W, "", "{}"), {K.labqueue_workers: "hash"}),
        "BEAT": Case(
            BEAT,
            (
                K.workers,
                K.worker_started(W),
                K.heartbeat,
                K.labqueue_workers,
                K.worker(W),
                K.inprogress(W),
            ),
            (W, "start", "beat", "{}", "2026-01-01T00:00:00Z"),
            {
                K.workers: "set",
                K.heartbeat: "hash",
                K.labqueue_workers: "hash",
                K.inprogress(W): "hash",
            },
            holding,
        ),
        "DROP_FOREIGN": Case(
            DROP_FOREIGN,
            (
                K.workers,
                K.worker("far:1:default"),
                K.worker_started("far:1:default"),
                K.heartbeat,
                K.stat("processed", "far:1:default"),
                K.stat("failed", "far:1:default"),
                K.failed,
            ),
            ("far:1:default", "busy", failure),
            {
                K.worker("far:1:default"): "string",
                K.workers: "set",
                K.heartbeat: "hash",
                K.failed: "list",
            },
            foreign,
        ),
    }


CASES = cases()
BAD = [
    pytest.param(name, key, wrong, id=f"{name}-{key.removeprefix('resque:')}-{wrong}")
    for name, case in CASES.items()
    for key, expected in case.checks.items()
    for wrong in [*wrong_for(expected), *(NOT_COUNTERS[:3] if expected == "integer" else [])]
]


@pytest.mark.parametrize("name", list(CASES))
def test_each_call_runs_on_clean_keys(conn: Any, name: str) -> None:
    case = CASES[name]
    case.setup(conn)
    case.script.call(conn, case.keys, case.args)  # no BadKey: the control of the test below


@pytest.mark.parametrize(("name", "key", "wrong"), BAD)
def test_a_wrong_typed_key_fails_the_call_before_any_write(
    conn: Any, name: str, key: str, wrong: str
) -> None:
    case = CASES[name]
    case.setup(conn)
    conn.delete(key)
    if wrong in WRONG:
        WRONG[wrong](conn, key)
    else:
        conn.set(key, wrong)
    before = contents(conn)
    with pytest.raises(labqueue.BadKey) as caught:
        case.script.call(conn, case.keys, case.args)
    assert caught.value.key == key.encode() and caught.value.expected == case.checks[key]
    assert caught.value.found == ("string" if wrong not in WRONG else wrong)
    assert contents(conn) == before  # nothing written
    assert key.removeprefix("resque:") in str(caught.value)


@pytest.mark.parametrize("value", ["0", "-1", "41", "9223372036854775806", "-9223372036854775808"])
def test_every_integer_incr_takes_passes_the_counter_check(conn: Any, value: str) -> None:
    case = CASES["STEP-finish"]
    case.setup(conn)
    conn.set(K.stat("processed"), value)
    case.script.call(conn, case.keys, case.args)
    assert int(conn.get(K.stat("processed"))) == int(value) + 1


def test_a_key_whose_name_is_not_utf8_is_named_byte_for_byte(conn: Any) -> None:
    queue = b"a\xff\xfe"  # sorted before "default", which holds a job
    conn.sadd(K.queues, queue)
    conn.hset(K.queue_prefix.encode() + queue, "a", "b")
    case = step("*")
    case.setup(conn)
    with pytest.raises(labqueue.BadKey) as caught:
        case.script.call(conn, case.keys, case.args)
    assert caught.value.key == K.queue_prefix.encode() + queue and caught.value.found == "hash"
    assert "a\\xff\\xfe" in str(caught.value)


def test_set_aside_renames_only_what_is_still_bad(conn: Any) -> None:
    conn.hset(K.stat("processed"), "a", "b")
    target = K.aside(K.stat("processed").encode(), "1.000")
    assert SET_ASIDE.call(conn, (K.stat("processed"), target), ("hash", "integer")) == 1
    assert type_of(conn, target) == "hash" and conn.exists(K.stat("processed")) == 0
    conn.set(K.stat("failed"), "12")  # fixed meanwhile: a counter again, left alone
    assert SET_ASIDE.call(conn, (K.stat("failed"), target), ("string", "integer")) == 0
    conn.set(K.stat("failed"), "x")
    assert SET_ASIDE.call(conn, (K.stat("failed"), target), ("string", "integer")) == 1
    assert conn.get(target) == "x"


def test_other_errors_are_not_mistaken_for_a_bad_key() -> None:
    assert bad_key("WRONGTYPE Operation against a key holding the wrong kind of value") is None
    assert bad_key("LABQUEUE_BADKEY zz list hash") is None  # not hex
    found = bad_key("LABQUEUE_BADKEY 6b hash list")
    assert found is not None and (found.key, found.found, found.expected) == (b"k", "hash", "list")
