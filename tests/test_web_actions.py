"""The monitor's actions: POST only, CSRF token, a confirmation, the right record, a password."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import fakeredis
import pytest
from flask.testing import FlaskClient
from test_web_pages import VECTORS, write_ruby_layout

import labqueue
from labqueue import timefmt
from labqueue.failures import record_digest
from labqueue.keys import Keys
from labqueue.web import create_app
from labqueue.web.security import check_bind, is_loopback

K = Keys()
RUBY_FAILURE = VECTORS["failed_list"][0]
RUBY_PAYLOAD = json.loads(RUBY_FAILURE)["payload"]
DIGEST = record_digest(RUBY_FAILURE)


@pytest.fixture
def r() -> Any:
    client = fakeredis.FakeRedis(server=fakeredis.FakeServer(), decode_responses=True)
    write_ruby_layout(client)
    client.delete(K.queue("default"))  # only the failure is left of Ruby's jobs on default
    return client


@pytest.fixture
def client(r: Any) -> FlaskClient:
    return create_app(r, {"TESTING": True}).test_client()


def token(client: FlaskClient) -> str:
    html = client.get("/failed").get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the Failed page carries a CSRF token"
    return found.group(1)


def add_failure(r: Any, error: str, job_id: str | None = None, queue: str = "q") -> str:
    payload: dict[str, Any] = {"class": "C", "args": [{"e": error}]}
    if job_id:
        payload["id"] = job_id
    rec = labqueue.Failure(timefmt.failed_at(), payload, "ValueError", error, [], "w:1:q", queue)
    raw = rec.to_json()
    r.rpush(K.failed, raw)
    return record_digest(raw)


ACTIONS = [
    f"/failed/{DIGEST}/requeue",
    f"/failed/{DIGEST}/remove",
    "/failed/requeue-all",
    "/failed/clear",
]


@pytest.mark.parametrize("url", ACTIONS)
def test_get_is_refused_and_changes_nothing(client: FlaskClient, r: Any, url: str) -> None:
    assert client.get(url).status_code == 405
    assert r.lrange(K.failed, 0, -1) == [RUBY_FAILURE] and r.llen(K.queue("default")) == 0


@pytest.mark.parametrize("url", ACTIONS)
@pytest.mark.parametrize("given", [None, "", "forged-token"])
def test_missing_or_wrong_csrf_token_is_refused(
    client: FlaskClient, r: Any, url: str, given: str | None
) -> None:
    token(client)  # the session has a token; the form does not carry it
    form = {"confirm": "yes"} | ({} if given is None else {"csrf_token": given})
    resp = client.post(url, data=form)
    assert resp.status_code == 400 and b"CSRF" in resp.data
    assert r.lrange(K.failed, 0, -1) == [RUBY_FAILURE] and r.llen(K.queue("default")) == 0


def test_a_token_from_another_session_is_refused(r: Any) -> None:
    app = create_app(r, {"TESTING": True})
    theirs = token(app.test_client())
    mine = app.test_client()
    token(mine)
    resp = mine.post(f"/failed/{DIGEST}/requeue", data={"csrf_token": theirs, "confirm": "yes"})
    assert resp.status_code == 400 and r.llen(K.failed) == 1


def test_the_token_may_come_as_a_header(client: FlaskClient, r: Any) -> None:
    t = token(client)
    resp = client.post("/failed/clear", data={"confirm": "yes"}, headers={"X-CSRF-Token": t})
    assert resp.status_code == 303 and r.llen(K.failed) == 0


@pytest.mark.parametrize("url", ACTIONS)
def test_without_confirmation_it_asks_and_changes_nothing(
    client: FlaskClient, r: Any, url: str
) -> None:
    resp = client.post(url, data={"csrf_token": token(client)})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Are you sure?" in page
    assert 'name="confirm" value="yes"' in page and f'action="{url}"' in page
    assert r.lrange(K.failed, 0, -1) == [RUBY_FAILURE]


def test_requeue_one_ruby_failure(client: FlaskClient, r: Any) -> None:
    other = add_failure(r, "keep me")
    t = token(client)
    resp = client.post(f"/failed/{DIGEST}/requeue", data={"csrf_token": t, "confirm": "yes"})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/failed")
    assert [json.loads(p) for p in r.lrange(K.queue("default"), 0, -1)] == [RUBY_PAYLOAD]
    assert [record_digest(x) for x in r.lrange(K.failed, 0, -1)] == [other]
    assert "Requeued 1 job." in client.get("/failed").get_data(as_text=True)


def test_requeue_sets_a_labqueue_job_waiting(client: FlaskClient, r: Any) -> None:
    job_id = "c" * 32
    digest = add_failure(r, "boom", job_id, queue="email")
    r.set(K.status(job_id), '{"status":3,"updated":1}')
    client.post(f"/failed/{digest}/requeue", data={"csrf_token": token(client), "confirm": "yes"})
    assert labqueue.get_status(r, job_id).status is labqueue.JobStatus.WAITING
    assert json.loads(r.lindex(K.queue("email"), 0))["id"] == job_id


def test_remove_one_acts_on_the_record_seen_even_after_the_list_shifted(
    client: FlaskClient, r: Any
) -> None:
    first = add_failure(r, "first")
    target = add_failure(r, "target")
    t = token(client)
    r.lrem(K.failed, 1, RUBY_FAILURE)  # someone else removed the oldest meanwhile
    client.post(f"/failed/{target}/remove", data={"csrf_token": t, "confirm": "yes"})
    assert [record_digest(x) for x in r.lrange(K.failed, 0, -1)] == [first]
    assert r.llen(K.queue("q")) == 0


def test_requeue_all_and_clear_all(client: FlaskClient, r: Any) -> None:
    add_failure(r, "a")
    add_failure(r, "b")
    t = token(client)
    resp = client.post("/failed/requeue-all", data={"csrf_token": t, "confirm": "yes"})
    assert resp.status_code == 303 and r.llen(K.failed) == 0
    assert r.llen(K.queue("default")) == 1 and r.llen(K.queue("q")) == 2
    assert "Requeued 3 jobs." in client.get("/failed").get_data(as_text=True)
    add_failure(r, "c")
    client.post("/failed/clear", data={"csrf_token": t, "confirm": "yes"})
    assert r.llen(K.failed) == 0 and r.llen(K.queue("q")) == 2
    assert "Removed 1 failure record." in client.get("/failed").get_data(as_text=True)


@pytest.mark.parametrize("digest", ["0" * 16, "nothex!", "abc", DIGEST.upper()])
@pytest.mark.parametrize("action", ["requeue", "remove"])
@pytest.mark.parametrize("confirm", ["yes", ""])
def test_bad_or_unknown_digest_is_404(
    client: FlaskClient, r: Any, digest: str, action: str, confirm: str
) -> None:
    resp = client.post(
        f"/failed/{digest}/{action}", data={"csrf_token": token(client), "confirm": confirm}
    )
    assert resp.status_code == 404
    assert r.lrange(K.failed, 0, -1) == [RUBY_FAILURE]


def test_acting_twice_is_404_the_second_time(client: FlaskClient, r: Any) -> None:
    form = {"csrf_token": token(client), "confirm": "yes"}
    assert client.post(f"/failed/{DIGEST}/requeue", data=form).status_code == 303
    assert client.post(f"/failed/{DIGEST}/requeue", data=form).status_code == 404
    assert r.llen(K.queue("default")) == 1


# -- the password -------------------------------------------------------------------------
def basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"me:{password}".encode()).decode()}


def test_password_guards_every_page_and_the_api(r: Any) -> None:
    c = create_app(r, {"TESTING": True, "LABQUEUE_PASSWORD": "s3cret"}).test_client()
    for url in ("/", "/failed", "/api/overview", "/static/monitor.css"):
        resp = c.get(url)
        assert resp.status_code == 401 and "Basic" in resp.headers["WWW-Authenticate"]
        assert c.get(url, headers=basic("wrong")).status_code == 401
        assert c.get(url, headers=basic("s3cret")).status_code == 200
    resp = c.post("/failed/clear", data={"confirm": "yes"})
    assert resp.status_code == 401 and r.llen(K.failed) == 1


# -- where it may listen ------------------------------------------------------------------
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)
    check_bind(host, allow_remote=False, password=None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.org"])
def test_remote_bind_needs_allow_remote_and_a_password(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(labqueue.ConfigurationError, match="--allow-remote"):
        check_bind(host, allow_remote=False, password="pw")
    with pytest.raises(labqueue.ConfigurationError, match="needs a password"):
        check_bind(host, allow_remote=True, password=None)
    check_bind(host, allow_remote=True, password="pw")
