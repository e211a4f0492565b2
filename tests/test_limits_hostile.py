"""What ``labqueue stats`` (text and --json), the monitor and ``/metrics`` make of limiter
keys nobody sane wrote (issue 14's keys, attacked from outside): a limits hash whose K is no
number a reader can show is shown as unknown ("?"), never an unexpected error or a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

import labqueue.cli.base
from labqueue.cli import main
from labqueue.keys import Keys
from labqueue.stats import snapshot
from labqueue.web import create_app

K = Keys()

#: Sizes str.isdigit() accepts but int() refuses (a superscript, a Devanagari digit), one
#: past int()'s 4,300-digit limit, and plain garbage.
BAD_SIZES = ["²", "१", "9" * 5000, "abc", "-1", "1e999", ""]


@pytest.mark.parametrize("size", BAD_SIZES)
def test_a_limit_no_reader_can_parse_is_shown_as_unknown(conn: Any, size: str) -> None:
    conn.hset(K.limits, "erp", size)
    conn.rpush(K.limit_parked("erp"), json.dumps({"queue": "q", "payload": '{"class":"C"}'}))
    (lim,) = snapshot(conn).limiters
    assert (lim.name, lim.limit, lim.parked) == ("erp", None, 1)


@pytest.mark.parametrize("size", BAD_SIZES)
def test_stats_shows_an_unparsable_limit_without_an_error(
    conn: Any, monkeypatch: pytest.MonkeyPatch, size: str
) -> None:
    monkeypatch.setattr(labqueue.cli.base, "connect", lambda url=None: conn)
    conn.hset(K.limits, "erp", size)
    runner = CliRunner()
    text = runner.invoke(main, ["stats"])
    assert text.exit_code == 0, text.output
    assert "limit erp: 0 of ? running, 0 parked" in text.output
    as_json = runner.invoke(main, ["stats", "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert "unexpected error" not in as_json.output


@pytest.mark.parametrize("size", BAD_SIZES)
def test_the_monitor_and_metrics_answer_with_an_unparsable_limit(conn: Any, size: str) -> None:
    conn.hset(K.limits, "erp", size)
    client = create_app(conn, {"LABQUEUE_PER_PAGE": 3}).test_client()
    for url in ("/", "/workers", "/api/overview", "/api/stats", "/metrics"):
        resp = client.get(url)
        assert resp.status_code == 200, (url, resp.status_code)
    assert 'labqueue_limiter_parked_jobs{limiter="erp"} 0.0' in client.get("/metrics").text
