"""What ``labqueue stats`` (text and --json), the monitor and ``/metrics`` make of limiter
keys and worker thread ids nobody sane wrote (issue 14's keys, attacked from outside): a
limits hash whose K is no number a reader can show is shown as unknown ("?"), never an
unexpected error or a 500; and the rules of ``test_cli_hostile`` / ``test_web_hostile`` hold
on generated Redis contents that include the limiter keys and thread ids
(``hostile_redis.LIMIT_LAYOUT``)."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

import pytest
from click.testing import CliRunner
from hostile_redis import LIMIT_LAYOUT, World, worlds, write
from hypothesis import HealthCheck, given
from prometheus_client.parser import text_string_to_metric_families
from rule_settings import rule_settings
from test_cli_hostile import fake, read_on_any_content, report, strict_json
from test_web_hostile import CONTROLS, get, shown_safely

import labqueue.cli.base
from labqueue.cli import main
from labqueue.keys import Keys
from labqueue.stats import snapshot
from labqueue.web import create_app

K = Keys()

#: Sizes str.isdigit() accepts but int() refuses (a superscript, a Devanagari digit), one
#: past int()'s 4,300-digit limit, and plain garbage.
BAD_SIZES = ["²", "१", "9" * 5000, "9" * 400, "abc", "-1", "1e999", ""]


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


def test_a_huge_but_whole_limit_is_shown_as_it_is(conn: Any) -> None:
    """max_concurrency=10**30 is a whole number >= 1 (jobs.py accepts it): shown, scraped."""
    conn.hset(K.limits, "erp", str(10**30))
    assert snapshot(conn).limiters[0].limit == 10**30
    scraped = create_app(conn, {}).test_client().get("/metrics")
    assert scraped.status_code == 200
    assert 'labqueue_limiter_slots{limiter="erp"} 1e+30' in scraped.text


# -- generated Redis contents with the limiter keys and thread ids ----------------------------
#: Generated Redis contents per surface and run.
MAX_EXAMPLES = 200
HYPOTHESIS = rule_settings(MAX_EXAMPLES, HealthCheck.large_base_example)
READING = [["stats"], ["stats", "--json"]]
URLS = ["/", "/workers", "/api/overview", "/api/stats", "/api/workers"]

__all__ = ["fake"]  # the CLI-on-fakeredis fixture, shared with test_cli_hostile


@pytest.mark.slow
def test_stats_keeps_the_rules_on_any_limiter_content(fake: Any) -> None:
    tried, started, codes = read_on_any_content(fake, worlds(LIMIT_LAYOUT), READING)
    report("limits CLI (stats, stats --json)", tried, started, codes)
    assert tried >= MAX_EXAMPLES // 2


@pytest.mark.slow
def test_the_monitor_keeps_the_rules_on_any_limiter_content() -> None:
    import fakeredis

    raw = fakeredis.FakeRedis(server=fakeredis.FakeServer())
    client = create_app(raw, {"TESTING": True, "LABQUEUE_PER_PAGE": 3}).test_client()
    tried, statuses = list[World](), Counter[int]()
    started = time.monotonic()

    @HYPOTHESIS
    @given(world=worlds(LIMIT_LAYOUT))
    def run(world: World) -> None:
        tried.append(world)
        write(raw, world)
        for url in URLS:
            body = get(client, url, statuses)[1]
            shown_safely(url, body)
            if url.startswith("/api/"):
                strict_json(body)  # what a browser's JSON.parse takes (no Infinity)
        _, scraped = get(client, "/metrics", statuses)
        assert not CONTROLS & set(scraped) and list(text_string_to_metric_families(scraped))

    run()
    print(f"\nhostile limits monitor: {len(tried)} inputs in {time.monotonic() - started:.1f} s")
    assert len(tried) >= MAX_EXAMPLES // 2 and not statuses.keys() & set(range(500, 600))


def test_a_lease_no_clock_reaches_keeps_the_api_json_and_the_line_short(
    conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Holders scored +inf, -inf and 1e300 (no labqueue worker writes them): the monitor's
    API stays JSON a browser parses (no Infinity), stats says it in one short line each."""
    conn.hset(K.limits, "erp", "2")
    conn.zadd(K.limit_holders("erp"), {"up": float("inf"), "down": float("-inf"), "far": 1e300})
    client = create_app(conn, {}).test_client()
    for url in ("/api/overview", "/api/stats"):
        resp = client.get(url)
        assert resp.status_code == 200
        strict_json(resp.text)
    monkeypatch.setattr(labqueue.cli.base, "connect", lambda url=None: conn)
    said = CliRunner().invoke(main, ["stats"]).stdout
    assert "held by down (lease expired)" in said
    assert "held by up (lease 1e+300s left)" in said and "held by far (lease 1e+300s left)" in said
    assert max(map(len, said.splitlines())) < 100, said
