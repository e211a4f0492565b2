"""The failed store keeps working when an item of ``resque:failed`` is not a record (issue 15
item 5): whatever another program (or a person with redis-cli) left there lists as raw text,
is removable one by one and all at once, and is requeued only when its payload is a job.
Fakeredis and a real redis-server, through a client that decodes strictly."""

from __future__ import annotations

import json
from typing import Any

import pytest

import labqueue
from labqueue import timefmt
from labqueue.errors import JobNotFound, NotRequeuable
from labqueue.failures import FailedStore, Failure, record_digest
from labqueue.keys import Keys

K = Keys()
DEEP = b'{"payload":' + b"[" * 100_000 + b"]" * 100_000 + b"}"

#: Items no reader can take for a failure record, and why.
UNREADABLE = {
    "not JSON": b"not json <b>",
    "an array": b"[1, 2]",
    "a string": b'"a string"',
    "a number": b"42",
    "null": b"null",
    "not UTF-8": b"\xff\xfe\x1b[31m not utf-8",
    "nested too deep": DEEP,
}
#: An object, so it lists as a record, but with fields of the wrong types: no queue to go to.
WRONG_FIELDS = b'{"backtrace": 5, "queue": 7, "exception": ["E"], "payload": "x"}'


def good_record(job_id: str = "a" * 32, queue: str = "q") -> str:
    payload = {"class": "C", "args": [1], "id": job_id, "attempts": 2}
    failure = Failure(timefmt.failed_at(), payload, "ValueError", "boom", ["l1"], "w:1:q", queue)
    return failure.to_json()


@pytest.fixture
def store(conn: Any) -> FailedStore:
    conn.rpush(K.failed, good_record(), *UNREADABLE.values(), WRONG_FIELDS)
    return FailedStore(conn)


def test_every_item_lists_and_the_unreadable_ones_as_their_raw_text(store: FailedStore) -> None:
    items = store.items()
    assert [i.position for i in items] == list(range(len(UNREADABLE) + 2))
    good, *bad, wrong = items
    assert good.record is not None and good.record.job_id == "a" * 32 and good.problem is None
    for item, raw in zip(bad, UNREADABLE.values(), strict=True):
        assert item.record is None and item.problem and item.raw == raw
        assert item.digest == record_digest(raw)
    assert "not JSON" in bad[0].problem and "not an object" in bad[1].problem
    assert bad[5].text.startswith("\udcff\udcfe\x1b[31m")  # the bytes, kept exactly
    assert "deep" in bad[6].problem
    assert wrong.record is not None and wrong.record.queue == "" and wrong.record.backtrace == ["5"]
    records = store.all()  # the library's list: one Failure per item, never an exception
    assert len(records) == len(items) and records[0] == good.record
    assert {r.exception for r in records[1:-1]} == {"UnreadableRecord"}
    assert records[1].payload == "not json <b>"


def test_unreadable_items_are_removed_one_by_one_by_digest_or_position(
    store: FailedStore, conn: Any
) -> None:
    for item in store.items()[1:]:
        assert store.remove(item.digest) == 1
    assert [i.record for i in store.items()] == [store.items()[0].record]
    conn.rpush(K.failed, b"\x80 junk")
    assert store.remove("1") == 1 and len(store) == 1


def test_remove_all_takes_every_item(store: FailedStore) -> None:
    assert store.remove() == len(UNREADABLE) + 2 and len(store) == 0


def test_requeue_all_requeues_the_jobs_and_leaves_the_rest(store: FailedStore, conn: Any) -> None:
    assert store.requeue_all() == (1, len(UNREADABLE) + 1)
    [payload] = conn.lrange(K.queue("q"), 0, -1)
    assert json.loads(payload) == {"class": "C", "args": [1], "id": "a" * 32}  # fresh retries
    assert [i.record is None for i in store.items()] == [True] * len(UNREADABLE) + [False]
    assert store.requeue() == 0 and len(store) == len(UNREADABLE) + 1


@pytest.mark.parametrize("name", [*UNREADABLE, "wrong fields"])
def test_requeueing_an_unusable_item_says_why_and_leaves_it(store: FailedStore, name: str) -> None:
    raw = UNREADABLE.get(name, WRONG_FIELDS)
    with pytest.raises(NotRequeuable) as caught:
        store.requeue(record_digest(raw))
    message = str(caught.value)
    assert "cannot be requeued" in message and "\n" not in message
    assert raw in [i.raw for i in store.items()] and len(store) == len(UNREADABLE) + 2


@pytest.mark.parametrize(
    ("payload", "queue", "why"),
    [
        ({"args": []}, "q", "class"),
        ({"class": "C", "args": 5}, "q", "args"),
        ("not a job", "q", "not JSON"),
        (None, "q", "no payload"),
        ({"class": "C", "args": []}, "", "queue"),
        ({"class": "C", "args": []}, "a b", "queue"),
    ],
)
def test_a_record_whose_payload_is_no_job_is_not_requeued(
    conn: Any, payload: Any, queue: str, why: str
) -> None:
    failure = Failure(timefmt.failed_at(), payload, "E", "e", [], "w", queue)
    conn.rpush(K.failed, failure.to_json())
    store = FailedStore(conn)
    [item] = store.items()
    assert item.record is not None and why in (item.requeue_problem or "")
    with pytest.raises(NotRequeuable, match=why):
        store.requeue(item.digest)
    assert store.requeue_all() == (0, 1) and len(store) == 1


@pytest.mark.parametrize("position", ["9" * 5000, "²", "-1", "1.0", " 0", "100"])
def test_a_position_that_is_no_position_is_not_found(store: FailedStore, position: str) -> None:
    with pytest.raises(JobNotFound):
        store.remove(position)


def test_the_failed_key_of_another_type_is_one_clear_error(conn: Any) -> None:
    conn.set(K.failed, "oops")
    store = FailedStore(conn)
    with pytest.raises(
        labqueue.errors.UnreadableKey, match="resque:failed is a string, not a list"
    ):
        store.items()
    with pytest.raises(labqueue.errors.UnreadableKey):
        store.remove()


def test_a_job_whose_queue_key_is_of_another_type_stays_in_the_failed_store(conn: Any) -> None:
    """A push onto a key of another type fails inside EXEC after the record is gone: the
    store looks first (under WATCH), so the job is never lost between the two."""
    conn.rpush(K.failed, good_record())
    conn.hset(K.queue("q"), "a", "b")
    store = FailedStore(conn)
    assert store.requeue_all() == (0, 1) and len(store) == 1
    with pytest.raises(NotRequeuable, match="resque:queue:q is a hash, not a list"):
        store.requeue("a" * 32)
    conn.delete(K.queue("q"))
    conn.set(K.queues, "oops")
    with pytest.raises(NotRequeuable, match="resque:queues is a string, not a set"):
        store.requeue("0")
    conn.delete(K.queues)
    assert store.requeue("0") == 1 and conn.llen(K.queue("q")) == 1 and len(store) == 0
