"""The ``labqueue`` command, through click's CliRunner, on a real redis-server."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from click.testing import CliRunner
from jobs_for_tests import DONE, FailingJob

import labqueue
import labqueue.connection
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


def test_a_usage_mistake_is_told_before_redis_is_dialled() -> None:
    args = ["enqueue", "X", "--args", "{nope", "--url", "redis://127.0.0.1:1/0"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and "not JSON" in result.output


def test_a_private_server_is_announced_on_stderr_but_never_into_json(
    real: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr(labqueue.connection, "connect", lambda url=None: real)  # as if embedded
    runner = CliRunner()
    told = runner.invoke(main, ["stats"])
    assert told.exit_code == 0 and "private redis-server at redis://127.0.0.1:" in told.stderr
    assert "private" not in told.stdout
    quiet = runner.invoke(main, ["stats", "--json"])
    assert "private" not in quiet.output and json.loads(quiet.output)["processed"] == 0
    assert "private" not in runner.invoke(main, ["failed", "list"]).output


@pytest.fixture
def keep_log_level() -> Iterator[None]:
    """``--verbose`` sets the labqueue logger's level, as a command may: put it back."""
    logger = logging.getLogger("labqueue")
    level = logger.level
    yield
    logger.setLevel(level)


@pytest.mark.usefixtures("keep_log_level")
def test_verbose_worker_logs_each_job_at_debug(
    run: Any, real: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    q = labqueue.Queue("default", real)
    worker = ["worker", "--queues", "default", "--burst", "--import", "jobs_for_tests"]
    q.enqueue("tests.Record", tag="quiet")
    assert run(*worker).exit_code == 0
    assert [r for r in caplog.records if r.levelno == logging.DEBUG] == []
    job_id = q.enqueue("tests.Record", tag="verbose")
    assert run(*worker, "--verbose").exit_code == 0
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    started, done = [m for m in debug if job_id in m]
    assert started == f"tests.Record {job_id} from default: started"
    assert re.fullmatch(rf"tests\.Record {job_id}: done in \d+\.\d{{3}} s", done)


def test_worker_concurrency_forwards_every_option_to_its_children(
    run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`worker -c N` starts N `labqueue worker` processes with every option it was given
    (--verbose too), whatever options the command has: the child's command line, parsed
    by the same command, gives the parent's options back."""
    from labqueue.cli import serve
    from labqueue.worker import supervisor

    started: list[list[str]] = []

    class Recorder:
        def __init__(self, child_args: list[str], concurrency: int, *rest: Any) -> None:
            assert concurrency == 3
            started.append(child_args)

        def run(self) -> int:
            return 0

    monkeypatch.setattr(supervisor, "Supervisor", Recorder)
    given = ["-c", "3", "-Q", "high,low", "--burst", "--import", "jobs_for_tests"]
    given += ["--import", "fault_jobs", "--poll-interval", "0.3", "--timeout", "4.5"]
    given += ["--fork", "--verbose", "--namespace", "shop"]
    result = run("worker", *given)
    assert result.exit_code == 0, result.output
    [args] = started
    assert "--concurrency" not in args and "-c" not in args
    parent = serve.worker.make_context("worker", given).params
    child = serve.worker.make_context("worker", args).params
    options = {p.name for p in serve.worker.params} - {"concurrency", "url"}
    assert {k: child[k] for k in options} == {k: parent[k] for k in options}
    assert (
        parent["verbose"]
        and parent["fork"]
        and parent["imports"] == ("jobs_for_tests", "fault_jobs")
    )


def test_a_reader_that_goes_away_is_no_bug(redis_url: str) -> None:
    """`labqueue stats | head -3`: the closed pipe ends the command quietly, as click's own
    EPIPE rule does, instead of "unexpected error (a bug in labqueue): BrokenPipeError"."""
    code = "from labqueue.cli import main; main()"
    args = [sys.executable, "-c", code, "stats", "--url", redis_url]
    child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # the reader is gone before the command writes its first line
    told = child.stderr.read().decode()
    child.wait(timeout=30)
    assert "bug in labqueue" not in told and "BrokenPipe" not in told, told
    assert "Traceback" not in told and "Exception ignored" not in told, told
