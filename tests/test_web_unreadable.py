"""The monitor on data it cannot read (issue 15 items 5, 6, 7 and 8, monitor side): every page
and API route answers, shows what it cannot read as unreadable with its bytes escaped, marks
a key of the wrong type instead of answering 503, and acts on unreadable failure records.
Fakeredis and a real redis-server, written through a client that sends bytes as they are."""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any

import fakeredis
import pytest
import redis
from flask.testing import FlaskClient
from test_web_actions import token
from test_web_pages import text

from labqueue import timefmt
from labqueue.errors import ConfigurationError
from labqueue.failures import Failure, record_digest
from labqueue.keys import Keys
from labqueue.web import create_app

K = Keys()
JOB = "c" * 32
WID = "host:42:default"
DEEP = "[" * 100_000 + "]" * 100_000


def deep_payload(job_id: str = JOB) -> str:
    return f'{{"class":"Deep","id":"{job_id}","args":{DEEP}}}'


def payload(job_id: str = JOB, **extra: Any) -> str:
    return json.dumps({"class": "C", "args": [1], "id": job_id, **extra})


def good_failure(queue: str = "q") -> str:
    rec = Failure(timefmt.failed_at(), json.loads(payload()), "E", "boom", [], WID, queue)
    return rec.to_json()


@pytest.fixture(params=["fakeredis", "redis-server"])
def raw(request: pytest.FixtureRequest) -> Any:
    """A client that neither decodes nor encodes text: bytes go in exactly as given."""
    if request.param == "fakeredis":
        client: Any = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    else:
        client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
    yield client
    client.close()


@pytest.fixture
def client(raw: Any) -> FlaskClient:
    return create_app(raw, {"TESTING": True}).test_client()


PAGES = ["/", "/workers", "/failed", "/delayed", f"/jobs/{JOB}", "/queues/default"]
API = ["/api/overview", "/api/stats", "/api/workers", "/api/failed", "/api/delayed"]
API += [f"/api/jobs/{JOB}", "/api/queues/default"]


def answers(client: FlaskClient, urls: list[str] = PAGES + API) -> dict[str, Any]:
    """Each URL's response, after checking it is no server error."""
    got = {}
    for url in urls:
        resp = client.get(url)
        assert resp.status_code < 500, (url, resp.status_code, resp.get_data(as_text=True)[:500])
        got[url] = resp
    return got


def act(client: FlaskClient, url: str) -> Any:
    return client.post(url, data={"csrf_token": token(client), "confirm": "yes"})


def flashed(client: FlaskClient) -> str:
    return text(client.get("/failed"))


# -- item 5: unreadable failure records --------------------------------------------------
BAD_RECORDS = [b"\x1b[31mred <b>\xff", b"[1, 2]", b'{"payload": ' + DEEP.encode() + b"}"]


def test_unreadable_failure_records_list_escaped(client: FlaskClient, raw: Any) -> None:
    raw.rpush(K.failed, good_failure(), *BAD_RECORDS)
    resp = answers(client)["/failed"]
    html, page = resp.get_data(as_text=True), text(resp)
    assert page.count("Unreadable failure record") == 3 and "\x1b" not in html
    assert "\\x1b[31mred <b>\\xff" in page and "&lt;b&gt;" in html
    for raw_record in BAD_RECORDS:
        assert f'data-digest="{record_digest(raw_record)}"' in html
    items = client.get("/api/failed").get_json()["items"]
    assert [i["unreadable"] for i in items] == [True, True, True, False]
    assert items[2]["raw"] == "\\x1b[31mred <b>\\xff" and "not JSON" in items[2]["error"]


@pytest.mark.parametrize("bad", BAD_RECORDS)
def test_an_unreadable_record_is_removed(client: FlaskClient, raw: Any, bad: bytes) -> None:
    good = good_failure()
    raw.rpush(K.failed, bad, good)
    resp = act(client, f"/failed/{record_digest(bad)}/remove")
    assert resp.status_code == 303
    assert raw.lrange(K.failed, 0, -1) == [good.encode()]
    assert "Removed 1 failure record" in flashed(client)


def test_requeueing_an_unreadable_record_says_why_and_leaves_it(
    client: FlaskClient, raw: Any
) -> None:
    raw.rpush(K.failed, BAD_RECORDS[0])
    resp = act(client, f"/failed/{record_digest(BAD_RECORDS[0])}/requeue")
    assert resp.status_code == 303
    assert "cannot be requeued" in flashed(client)
    assert raw.lrange(K.failed, 0, -1) == [BAD_RECORDS[0]]


def test_requeue_all_and_clear_all_with_unreadable_records(client: FlaskClient, raw: Any) -> None:
    raw.rpush(K.failed, *BAD_RECORDS, good_failure())
    assert act(client, "/failed/requeue-all").status_code == 303
    assert "Requeued 1 job" in (page := flashed(client)) and "3 failure records" in page
    assert raw.lrange(K.queue("q"), 0, -1) == [payload().replace(" ", "").encode()]
    assert raw.llen(K.failed) == 3
    assert act(client, "/failed/clear").status_code == 303
    assert raw.llen(K.failed) == 0 and "Removed 3 failure records" in flashed(client)


# -- item 6: plausible but malformed data -------------------------------------------------
def test_json_nested_100000_deep_shows_as_unreadable(client: FlaskClient, raw: Any) -> None:
    raw.sadd(K.queues, "default")
    raw.rpush(K.queue("default"), deep_payload())
    raw.rpush(K.failed, f'{{"payload":{deep_payload()},"queue":"q"}}')
    raw.sadd(K.workers, WID)
    raw.set(K.worker(WID), f'{{"queue":"default","payload":{deep_payload()}}}')
    raw.zadd(K.delayed_schedule, {"100": 100})
    raw.rpush(K.delayed(100), deep_payload())
    raw.set(K.status(JOB), f'{{"status":{DEEP}}}')
    got = answers(client)
    for url in ("/queues/default", "/workers", "/delayed", f"/jobs/{JOB}"):
        assert "unreadable" in text(got[url]), url
    assert "nested too deep" in got["/api/queues/default"].get_json()["items"][0]["error"]


def test_counters_that_are_not_whole_numbers_are_marked(client: FlaskClient, raw: Any) -> None:
    raw.set(K.stat("processed"), "12abc")
    raw.set(K.stat("failed"), "9" * 400)
    raw.sadd(K.workers, WID)
    raw.set(K.stat("processed", WID), "1.5")
    raw.set(K.stat("failed", WID), "\xff")
    got = answers(client)
    bad = got["/api/overview"].get_json()["unreadable"]
    assert set(bad) >= {K.stat("processed"), K.stat("failed"), K.stat("processed", WID)}
    assert "12abc" in bad[K.stat("processed")]
    assert K.stat("processed") in text(got["/"])
    assert "unreadable" in text(got["/workers"])


def test_delayed_members_that_are_no_time_and_an_infinite_score(
    client: FlaskClient, raw: Any
) -> None:
    raw.zadd(K.delayed_schedule, {"soon": 5, "1700000000": math.inf, "-inf": -math.inf})
    raw.rpush(K.delayed_prefix + "soon", payload("d" * 32, queue="q"))
    raw.rpush(K.delayed(1700000000), payload(queue="q"))
    got = answers(client, [*PAGES, *API, "/jobs/" + "d" * 32])
    assert got["/api/stats"].get_json()["delayed"] == 2
    assert K.delayed_schedule in text(got["/"])
    assert len(got["/api/delayed"].get_json()["items"]) == 2


@pytest.mark.parametrize("when", [1e300, -1e300, 1e20, "Infinity", "NaN", 10**400])
def test_times_far_outside_a_datetime(client: FlaskClient, raw: Any, when: Any) -> None:
    stamp = str(when) if isinstance(when, str | int) else repr(when)
    raw.sadd(K.queues, "default")
    raw.rpush(K.queue("default"), f'{{"class":"C","args":[],"id":"{JOB}","queue_time":{stamp}}}')
    raw.zadd(K.delayed_schedule, {"100": 100})
    raw.rpush(K.delayed(100), f'{{"class":"C","args":[],"queue":"q","scheduled_for":{stamp}}}')
    raw.set(K.status(JOB), f'{{"status":1,"updated":{stamp},"started":{stamp}}}')
    raw.sadd(K.workers, WID)
    raw.hset(K.heartbeat, WID, "9999-12-31T23:59:59-14:00")
    raw.set(K.worker_started(WID), "0001-01-01 00:00:00 +1400")
    busy = {"queue": "default", "run_at": "0001-01-01T00:00:00+14:00", "payload": {"class": "C"}}
    raw.set(K.worker(WID), json.dumps(busy))
    answers(client)


@pytest.mark.parametrize(
    "record",
    [
        '{"status": 9, "updated": 1}',
        "{}",
        '{"status": "running"}',
        '{"status": 2}',
        "[]",
        "nope \x1b[2J",
        '{"status": 1, "updated": "soon"}',
        '{"status": 1, "updated": 1e400}'.replace("1e400", "1" + "0" * 400),
    ],
)
def test_a_status_record_that_is_not_one_shows_unreadable(
    client: FlaskClient, raw: Any, record: str
) -> None:
    raw.set(K.status(JOB), record)
    got = answers(client)
    page = text(got[f"/jobs/{JOB}"])
    assert "unreadable" in page and "\x1b" not in got[f"/jobs/{JOB}"].get_data(as_text=True)
    api = got[f"/api/jobs/{JOB}"].get_json()
    assert api["status"] == "unreadable" and api["status_problem"]


@pytest.mark.parametrize(
    "record", ['{"status": 1, "updated": 1, "started": {"a": [1]}}', '{"status":1,"updated":1e400}']
)
def test_a_status_record_with_odd_times_still_shows_its_status(
    client: FlaskClient, raw: Any, record: str
) -> None:
    raw.set(K.status(JOB), record)
    got = answers(client)
    assert "waiting" in text(got[f"/jobs/{JOB}"])
    api = got[f"/api/jobs/{JOB}"].get_json()
    assert api["status"] == "waiting" and api["started"] is None


# -- item 7: a key of the wrong type --------------------------------------------------------
def write_layout(raw: Any) -> None:
    """A small, healthy layout touching every key the monitor reads."""
    raw.sadd(K.queues, "default")
    raw.rpush(K.queue("default"), payload())
    raw.rpush(K.failed, good_failure())
    raw.sadd(K.workers, WID)
    raw.set(K.worker(WID), json.dumps({"queue": "default", "run_at": timefmt.run_at()}))
    raw.set(K.worker_started(WID), timefmt.started())
    raw.hset(K.heartbeat, WID, timefmt.heartbeat())
    for name in ("processed", "failed"):
        raw.set(K.stat(name), "3")
        raw.set(K.stat(name, WID), "1")
    raw.set(K.status(JOB), '{"status":1,"updated":1700000000}')
    raw.zadd(K.delayed_schedule, {"100": 100})
    raw.rpush(K.delayed(100), payload("d" * 32, queue="default"))


def retype(raw: Any, key: str) -> str:
    """Replace ``key`` with a value of another type; returns the type it had."""
    kind = raw.type(key).decode()
    raw.delete(key)
    if kind == "string":
        raw.rpush(key, "a list now")
    elif kind == "list":
        raw.hset(key, "a", "hash now")
    elif kind == "hash":
        raw.sadd(key, "a set now")
    else:
        raw.set(key, "a string now")
    return kind


LAYOUT = [
    K.queues,
    K.queue("default"),
    K.failed,
    K.workers,
    K.worker(WID),
    K.worker_started(WID),
    K.heartbeat,
    K.stat("processed"),
    K.stat("failed"),
    K.stat("processed", WID),
    K.stat("failed", WID),
    K.status(JOB),
    K.delayed_schedule,
    K.delayed(100),
]


@pytest.mark.parametrize("key", LAYOUT)
def test_a_key_of_another_type_is_marked_and_every_page_renders(
    client: FlaskClient, raw: Any, key: str
) -> None:
    write_layout(raw)
    kind = retype(raw, key)
    got = answers(client)
    assert all(r.status_code == 200 for r in got.values()), {
        u: r.status_code for u, r in got.items()
    }
    pages = " ".join(text(r) for url, r in got.items() if not url.startswith("/api/"))
    assert re.search(rf"{re.escape(key)}\s+is an? \w+, not an? {kind}", pages), key
    assert "Redis unavailable" not in pages


# -- item 8: no password on any page ------------------------------------------------------
def test_a_redis_error_shows_no_password(monkeypatch: pytest.MonkeyPatch) -> None:
    from labqueue.web import monitor

    secret = "s3cret-pw"
    conn = redis.Redis.from_url(f"redis://127.0.0.1:1/0?password={secret}")

    def failing(*args: Any) -> Any:
        raise redis.ConnectionError(f"cannot reach redis://:{secret}@127.0.0.1:1 ({secret!r})")

    monkeypatch.setattr(monitor, "snapshot", failing)
    app = create_app(conn, {"TESTING": True})
    app.testing = False
    with app.test_client() as c:
        resp = c.get("/")
        assert resp.status_code == 503 and "Redis unavailable" in text(resp)
        assert secret not in resp.get_data(as_text=True) and "***" in text(resp)
        assert secret not in c.get("/api/overview").get_data(as_text=True)


# -- the monitor's settings and arguments --------------------------------------------------
@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("LABQUEUE_PER_PAGE", 0),
        ("LABQUEUE_PER_PAGE", float("nan")),
        ("LABQUEUE_PER_PAGE", 10**9),
        ("LABQUEUE_PER_PAGE", "ten"),
        ("LABQUEUE_PER_PAGE", True),
        ("LABQUEUE_PER_PAGE", 2.5),
        ("LABQUEUE_STALE_AFTER", float("inf")),
        ("LABQUEUE_STALE_AFTER", -1),
        ("LABQUEUE_STALE_AFTER", float("nan")),
        ("LABQUEUE_REFRESH_MS", 0),
        ("LABQUEUE_REFRESH_MS", float("nan")),
        ("LABQUEUE_REFRESH_MS", 10**12),
        ("LABQUEUE_HISTORY_SECONDS", float("inf")),
        ("LABQUEUE_HISTORY_SECONDS", -5),
        ("LABQUEUE_HISTORY_SECONDS", "1e400"),
        ("LABQUEUE_NAMESPACE", ""),
        ("LABQUEUE_NAMESPACE", 5),
    ],
)
def test_settings_it_cannot_honour_are_refused_in_one_line(key: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=key) as caught:
        create_app(fakeredis.FakeRedis(), {key: value})
    assert "\n" not in str(caught.value)


def test_good_settings_are_taken() -> None:
    config = {"LABQUEUE_PER_PAGE": "5", "LABQUEUE_STALE_AFTER": 30, "LABQUEUE_REFRESH_MS": 500}
    app = create_app(fakeredis.FakeRedis(), config)
    assert app.extensions["labqueue"].per_page == 5


@pytest.mark.parametrize("page", ["9" * 5000, "²", "0", "-1", "1.5", "", "%00"])
def test_a_page_number_that_is_none_is_404(client: FlaskClient, page: str) -> None:
    for url in ("/failed", "/api/failed", "/queues/default", "/api/queues/default"):
        assert client.get(f"{url}?page={page}").status_code == 404


def test_unreadable_names_in_the_queues_set_still_render(client: FlaskClient, raw: Any) -> None:
    names = [b"\xff\xfe", b"a/b", b"\x1b[2J", b"x" * 5000, b"sp ace", b"%2F"]
    raw.sadd(K.queues, *names)
    for name in names:
        raw.rpush(K.queue_prefix.encode() + name, payload())
    got = answers(client)
    over = got["/api/overview"].get_json()
    assert sorted(q["depth"] for q in over["queues"]) == [1] * len(names)
    assert "\x1b" not in got["/"].get_data(as_text=True)
    assert "\\x1b[2J" in text(got["/"]) and "\\xff\\xfe" in text(got["/"])
    assert client.get("/queues/a/b").status_code == 200


def test_the_pages_answer_in_bounded_time_on_a_long_queue(client: FlaskClient, raw: Any) -> None:
    raw.sadd(K.queues, "long")
    raw.rpush(K.queue("long"), *[payload(str(i)) for i in range(30_000)])
    started = time.monotonic()
    answers(client, ["/queues/long", "/jobs/" + "e" * 32, "/api/jobs/" + "e" * 32])
    assert time.monotonic() - started < 20
