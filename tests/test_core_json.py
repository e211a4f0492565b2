"""Every JSON labqueue writes by hand (string formatting in Python, concatenation in Lua) is
what json.dumps writes, for whatever strings and numbers hypothesis comes up with; payloads
refuse NaN and Infinity, which Ruby's and PHP's JSON parsers refuse too."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import labqueue
from labqueue import timefmt
from labqueue.embedded import EmbeddedRedis
from labqueue.failures import Failure
from labqueue.keys import Keys
from labqueue.payload import _fresh_text, new_payload_json
from labqueue.status import JobStatus, StatusRecord, running_json, status_json
from labqueue.worker.reliable import ReliableFetch

K = Keys()
COMPACT = {"separators": (",", ":"), "ensure_ascii": False}

finite = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.none() | st.booleans() | st.integers() | finite | st.text()
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
class_names = st.text(min_size=1).filter(lambda s: s.strip() != "")
#: what epoch seconds look like in records: from 1970 to 2200
epochs = st.floats(min_value=0, max_value=7.3e9)


@given(class_names, st.lists(json_values, max_size=4), st.text(), finite)
def test_a_fresh_payload_is_json_dumps_of_its_dict(
    name: str, args: list[Any], job_id: str, queue_time: float
) -> None:
    expected = {"class": name, "args": args, "id": job_id, "queue_time": queue_time}
    assert _fresh_text(name, args, job_id, queue_time) == json.dumps(expected, **COMPACT)


@given(class_names, st.lists(json_values, max_size=4))
def test_new_payload_json_reads_back_as_what_was_given(name: str, args: list[Any]) -> None:
    job_id, text = new_payload_json(name, args)
    payload = labqueue.Payload.from_json(text)
    assert (payload.class_name, payload.args, payload.id) == (name, args, job_id)
    assert text == labqueue.Payload(name, args, job_id, payload.queue_time).to_json()


@given(st.sampled_from(list(JobStatus)), epochs, st.none() | epochs)
def test_status_json_is_json_dumps_in_whole_seconds(
    status: JobStatus, updated: float, started: float | None
) -> None:
    expected: dict[str, int] = {"status": int(status), "updated": int(updated)}
    if started is not None:
        expected["started"] = int(started)
    assert StatusRecord(status, updated, started).to_json() == json.dumps(expected, **COMPACT)


@given(epochs)
def test_running_and_current_statuses_are_json_dumps(now: float) -> None:
    running = {"status": 2, "updated": int(now), "started": int(now)}
    assert running_json(now) == json.dumps(running, **COMPACT)
    assert json.loads(status_json(JobStatus.WAITING, now))["started"] == int(now)


@given(epochs)
def test_timefmt_texts_need_no_json_escaping(ts: float) -> None:
    """run_at goes into the busy record between two quotes, as it is."""
    for text in (timefmt.run_at(ts), timefmt.started(ts), timefmt.heartbeat(ts)):
        assert json.dumps(text) == f'"{text}"'
    assert timefmt.parse(timefmt.run_at(ts)) == math.floor(ts)


@given(st.text(), st.text(), st.text(), st.text(), st.text())
def test_failure_halves_around_any_payload_read_back_as_the_record(
    failed_at: str, error: str, worker: str, queue: str, raw: str
) -> None:
    """MOVE_DUE pastes ``cjson.encode(raw)`` between the halves: any JSON string encoding
    of ``raw`` gives the record Python writes."""
    record = Failure(failed_at, raw, "PayloadError", error, [], worker, queue)
    before, after = record.halves()
    assert json.loads(before + json.dumps(raw) + after) == json.loads(record.to_json())
    assert before.startswith('{"failed_at":') and after.startswith(',"exception":')


queue_names = st.text(min_size=1).filter(lambda s: not any(c in s for c in " ,\t\n*"))


@pytest.fixture(scope="module")
def server_client(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    """A real server: fakeredis's cjson is not Redis's (it fails on some numbers)."""
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    client.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(queue=queue_names, args=st.lists(json_values, max_size=3), unreadable=st.booleans())
def test_the_busy_record_built_in_lua_is_valid_json(
    server_client: redis.Redis, queue: str, args: list[Any], unreadable: bool
) -> None:
    conn = server_client
    conn.flushall()
    if unreadable:
        raw = '{"class": "X", "args": [' + json.dumps(args)  # not JSON: shown as a string
        conn.rpush(K.queue(queue), raw)
        expected: Any = raw
    else:
        labqueue.Queue(queue, conn).enqueue("X", *args)
        raw = conn.lindex(K.queue(queue), 0)
        expected = json.loads(raw)
    now = time.time()
    fetched = ReliableFetch.parse(ReliableFetch(conn, K).fetch("h:1:q", [queue], now, "T"))
    assert fetched is not None and fetched.raw == raw
    busy = json.loads(conn.get(K.worker("h:1:q")))
    assert busy == {"queue": queue, "run_at": "T", "payload": expected}


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_payloads_refuse_nan_and_infinity(conn: Any, bad: float) -> None:
    q = labqueue.Queue("default", conn)
    for enqueue in (
        lambda: q.enqueue("X", v=bad),
        lambda: q.enqueue("X", [1, {"deep": bad}]),
        lambda: q.enqueue_many("X", [{"v": 1}, {"v": bad}]),
        lambda: q.enqueue_in(5, "X", v=bad),
        lambda: q.enqueue_payload(labqueue.Payload("X", [bad], "a" * 32, 1.0)),
    ):
        with pytest.raises(labqueue.PayloadError, match="NaN"):
            enqueue()
    assert conn.keys("*") == []


def test_a_lone_surrogate_is_a_payload_error() -> None:
    q = labqueue.Queue("default", fakeredis.FakeRedis(decode_responses=True))
    with pytest.raises(labqueue.PayloadError, match="UTF-8"):
        q.enqueue("X", v="\ud800")


@labqueue.job("Json::RetriesOnce")
class RetriesOnce(labqueue.Job):
    retry_limit = 3

    def perform(self) -> None:
        raise ConnectionError("down")


def test_a_nan_payload_from_elsewhere_fails_once_instead_of_retrying(conn: Any) -> None:
    """Python reads NaN; a retry would write it back, so the job fails for good instead."""
    conn.rpush(K.queue("default"), '{"class": "Json::RetriesOnce", "args": [NaN], "id": "n1"}')
    assert labqueue.Worker("default", conn).work(burst=True) == 1
    [record] = labqueue.FailedStore(conn).all()
    assert record.exception == "ConnectionError" and conn.zcard(K.delayed_schedule) == 0
