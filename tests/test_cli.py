"""The ``labqueue`` command, through click's CliRunner, on a real redis-server."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from jobs_for_tests import DONE, FailingJob

import labqueue
from labqueue.cli import main


def test_enqueue_prints_the_id_and_stats_show_the_queue(run: Any, real: redis.Redis) -> None:
    result = run("enqueue", "Job\\Work\\TestJob", "--queue", "mail", "--args", '{"to": "a@b.c"}')
    assert result.exit_code == 0, result.output
    job_id = result.output.strip()
    [payload] = labqueue.Queue("mail", real).peek()
    assert payload.id == job_id and payload.args == [{"to": "a@b.c"}]
    run("enqueue", "tests.Record", "--args", '["ruby", 2]')
    assert labqueue.Queue("default", real).peek()[0].args == ["ruby", 2]
    stats = json.loads(run("stats", "--json").output)
    assert stats["queues"] == {"default": 1, "mail": 1} and stats["processed"] == 0
    text = run("stats").output
    assert "mail" in text and "workers: 0" in text
    status = run("status", job_id)
    assert status.exit_code == 0 and "waiting" in status.output


def test_worker_burst_runs_imported_jobs(run: Any, real: redis.Redis) -> None:
    labqueue.Queue("default", real).enqueue("tests.Record", tag="cli")
    result = run("worker", "--queues", "default", "--burst", "--import", "jobs_for_tests")
    assert result.exit_code == 0, result.output
    assert real.lrange(DONE, 0, -1) == ["cli"]


def test_failed_list_requeue_remove(run: Any, real: redis.Redis) -> None:
    q = labqueue.Queue("default", real)
    ids = [q.enqueue(FailingJob, customer_id=i) for i in range(3)]
    labqueue.Worker("default", real).work(burst=True)
    listing = run("failed", "list").output
    assert all(i in listing for i in ids) and "ValueError: no such customer: 1" in listing
    assert json.loads(run("failed", "list", "--json").output)[0]["payload"]["id"] == ids[0]
    assert run("failed", "requeue", ids[0]).output.strip() == "requeued 1 job"
    assert run("failed", "remove", "0").output.strip() == "removed 1 job"
    assert q.length == 1 and len(labqueue.FailedStore(real)) == 1
    assert run("failed", "requeue", "--all").output.strip() == "requeued 1 job"
    assert "no failed jobs" in run("failed", "list").output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["enqueue", "X", "--args", "{nope"], "not JSON"),
        (["enqueue", "X", "--args", "3"], "JSON object"),
        (["enqueue", "X", "--queue", ""], "queue name"),
        (["enqueue", "  "], "non-empty"),
        (["status", "0" * 32], "no status for job"),
        (["failed", "requeue"], "--all"),
        (["failed", "requeue", "f" * 32], "no failed job"),
        (["worker", "--import", "no_such_module_here", "--burst"], "cannot import"),
        (["worker", "--queues", "a b", "--burst"], "queue name"),
    ],
)
def test_user_mistakes_print_one_line_without_traceback(
    run: Any, args: list[str], message: str
) -> None:
    result = run(*args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_unreachable_url_names_the_url_and_what_to_do() -> None:
    result = CliRunner().invoke(main, ["stats", "--url", "redis://:secret@127.0.0.1:1/0"])
    assert result.exit_code == 1
    assert "redis://:***@127.0.0.1:1/0" in result.output and "secret" not in result.output
    assert "labqueue redis" in result.output and "Traceback" not in result.output
