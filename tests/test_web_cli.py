"""``labqueue web``: loopback by default, remote only when asked and with a password."""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import fakeredis
import pytest
from click.testing import CliRunner

import labqueue
from labqueue.cli import main
from labqueue.cli.base import Target


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "pass --allow-remote and --password"),
        (["--host", "192.0.2.1", "--password", "pw"], "pass --allow-remote"),
        (["--host", "0.0.0.0", "--allow-remote"], "needs a password"),
    ],
)
def test_remote_bind_is_refused(args: list[str], message: str, monkeypatch: Any) -> None:
    monkeypatch.delenv("LABQUEUE_WEB_PASSWORD", raising=False)
    result = CliRunner().invoke(main, ["web", *args, "--url", "redis://127.0.0.1:1/0"])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


def test_remote_bind_with_a_password_is_served(monkeypatch: Any) -> None:
    served: dict[str, Any] = {}

    def fake_serve(app: Any, host: str, port: int) -> None:
        served.update(app=app, host=host, port=port)

    import labqueue.web.app as web_app

    monkeypatch.setattr(web_app, "serve", fake_serve)
    fake = fakeredis.FakeRedis(decode_responses=True)
    monkeypatch.setattr(Target, "connection", property(lambda target: fake))
    monkeypatch.setenv("LABQUEUE_WEB_PASSWORD", "from-env")
    args = ["web", "--host", "0.0.0.0", "--port", "0", "--allow-remote"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert served["host"] == "0.0.0.0" and served["port"] == 0
    assert served["app"].config["LABQUEUE_PASSWORD"] == "from-env"


def _start(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "labqueue", "web", "--port", "0", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        found = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        if found:
            return proc, found.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    pytest.fail(f"labqueue web did not start: {proc.stderr.read()}")


def _get(url: str, password: str | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url)
    if password:
        token = base64.b64encode(f"me:{password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, ""


def test_serves_the_monitor_and_stops_on_sigterm(real: Any, redis_url: str) -> None:
    labqueue.Queue("from-cli", real).enqueue("X", a=1)
    env = {**os.environ, "REDIS_URL": redis_url, "LABQUEUE_WEB_PASSWORD": "pw"}
    proc, url = _start(env)
    try:
        assert _get(url)[0] == 401
        status, body = _get(url + "api/overview", "pw")
        assert status == 200 and '"name":"from-cli"' in body.replace(" ", "")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        for pipe in (proc.stdout, proc.stderr):
            assert pipe is not None
            pipe.close()
    assert code == 0
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=5)
