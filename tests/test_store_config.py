"""Every setting the store and its fakes take (Python, environment, HTTP ``/config``, the
``python -m labqueue.demo`` options) refuses what it cannot honour: NaN, infinities,
negative or absurd numbers, wrong types. A running service answers 400 naming the field
and keeps its old settings; a command says so in one line (issue 15, "The rules")."""

from __future__ import annotations

import json
import math
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from labqueue.demo.__main__ import main
from labqueue.demo.app import create_app
from labqueue.demo.config import StoreConfig
from labqueue.demo.errors import BadSetting
from labqueue.demo.fakeerp import FakeERP
from labqueue.demo.fakemail import FakeMail
from labqueue.demo.netfake import MAX_JITTER, MAX_LATENCY, Faults
from labqueue.errors import ConfigurationError

NAN, INF = float("nan"), float("inf")

#: (setting, value) pairs no fake service can honour.
BAD_FAULTS = [
    ("latency", NAN),
    ("latency", INF),
    ("latency", -INF),
    ("latency", -1),
    ("latency", -1e-9),
    ("latency", 1e9),
    ("latency", MAX_LATENCY * 1.01),
    ("latency", 10**400),
    ("jitter", NAN),
    ("jitter", INF),
    ("jitter", -0.1),
    ("jitter", MAX_JITTER * 10),
    ("jitter", 1e200),
    ("error_rate", NAN),
    ("error_rate", 2),
    ("error_rate", -0.01),
    ("error_rate", INF),
    ("latency", True),
    ("error_rate", False),
    ("latency", "0.5"),
    ("latency", "nan"),
    ("jitter", None),
    ("latency", [0.1]),
    ("error_rate", {"p": 1}),
]


@pytest.mark.parametrize(("name", "value"), BAD_FAULTS)
def test_faults_refuse_what_they_cannot_honour_and_keep_the_old_settings(
    name: str, value: Any
) -> None:
    faults = Faults(0.1, 0.2, 0.3, seed=1)
    before = faults.to_json()
    with pytest.raises(BadSetting) as info:
        faults.update({name: value})
    assert info.value.field == name and name in str(info.value)
    assert len(str(info.value)) < 200
    assert faults.to_json() == before
    with pytest.raises(ConfigurationError):  # BadSetting is a ConfigurationError
        Faults(**{"latency": 0.1, "jitter": 0.2, "error_rate": 0.0, name: value})


@pytest.mark.parametrize("jitter", [1e-300, 5e-324, 1e-4, MAX_JITTER])
def test_tiny_and_largest_jitter_still_draw_a_finite_delay(jitter: float) -> None:
    faults = Faults(0.01, jitter, 0.0, seed=3)
    delays = [faults.draw()[0] for _ in range(200)]
    assert all(math.isfinite(d) and d >= 0 for d in delays)


@pytest.fixture(params=["mail", "erp"])
def service(request: pytest.FixtureRequest) -> Iterator[Any]:
    cls = FakeMail if request.param == "mail" else FakeERP
    with cls(latency=0.001, seed=1) as running:
        yield running


@pytest.mark.parametrize(("name", "value"), BAD_FAULTS)
def test_post_config_refuses_with_a_400_naming_the_field_and_keeps_running(
    service: Any, name: str, value: Any
) -> None:
    before = requests.get(f"{service.url}/config", timeout=5).json()
    body = json.dumps({name: value})  # NaN and Infinity as Python's json writes them
    resp = requests.post(f"{service.url}/config", data=body, timeout=5)
    assert resp.status_code == 400, resp.text
    assert resp.json()["field"] == name and name in resp.json()["error"]
    assert requests.get(f"{service.url}/config", timeout=5).json() == before
    assert requests.get(f"{service.url}/healthz", timeout=5).json()["ok"] is True


@pytest.mark.parametrize(
    "body",
    [b"[1]", b'"x"', b"null", b"{", b"[" * 50_000 + b"]" * 50_000, b'{"speed": 1}', b"\xff"],
)
def test_post_config_refuses_bodies_that_are_not_settings(service: Any, body: bytes) -> None:
    before = requests.get(f"{service.url}/config", timeout=5).json()
    resp = requests.post(f"{service.url}/config", data=body, timeout=5)
    assert resp.status_code == 400 and resp.json()["field"]
    assert requests.get(f"{service.url}/config", timeout=5).json() == before


def raw_request(port: int, head: str, body: bytes = b"") -> bytes:
    """Send one hand-written HTTP request; the status line of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head.encode() + b"\r\n\r\n" + body)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data.split(b"\r\n", 1)[0]


@pytest.mark.parametrize(
    ("length", "status"),
    [("-5", b"400"), ("abc", b"400"), ("1e3", b"400"), ("99999999999", b"413"), ("", b"400")],
)
def test_a_fake_answers_a_bad_content_length_and_keeps_running(
    service: Any, length: str, status: bytes
) -> None:
    head = f"POST /config HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\nConnection: close"
    assert status in raw_request(service.api.port, head, b'{"latency": 0}')
    assert requests.get(f"{service.url}/healthz", timeout=5).json()["ok"] is True


# -- the store's own settings ----------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"timeout": NAN}, "timeout"),
        ({"timeout": INF}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": 1e9}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"timeout": "10"}, "timeout"),
        ({"smtp_port": 70000}, "smtp_port"),
        ({"smtp_port": -1}, "smtp_port"),
        ({"smtp_port": 25.0}, "smtp_port"),
        ({"smtp_host": ""}, "smtp_host"),
        ({"erp_url": "ftp://127.0.0.1:8027"}, "erp_url"),
        ({"erp_url": "not a url"}, "erp_url"),
        ({"erp_url": "http://"}, "erp_url"),
        ({"erp_url": "http://127.0.0.1:99999"}, "erp_url"),
        ({"email_queue": ""}, "email_queue"),
        ({"namespace": 7}, "namespace"),
        ({"sender": "a@b.c\nBcc: x@y.z"}, "sender"),
        ({"sender": "not-an-address"}, "sender"),
    ],
)
def test_store_config_refuses_what_it_cannot_honour(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(BadSetting) as info:
        StoreConfig(**changes)
    assert info.value.field == field
    with pytest.raises(ConfigurationError):
        create_app(changes)


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"STORE_TIMEOUT": "nan"}, "STORE_TIMEOUT"),
        ({"STORE_TIMEOUT": "inf"}, "STORE_TIMEOUT"),
        ({"STORE_TIMEOUT": "-3"}, "STORE_TIMEOUT"),
        ({"STORE_TIMEOUT": "ten"}, "STORE_TIMEOUT"),
        ({"STORE_SMTP": "127.0.0.1:99999"}, "STORE_SMTP"),
        ({"STORE_SMTP": "127.0.0.1:²"}, "STORE_SMTP"),
        ({"STORE_SMTP": "127.0.0.1:-1"}, "STORE_SMTP"),
        ({"STORE_ERP_URL": "nope"}, "STORE_ERP_URL"),
    ],
)
def test_store_environment_refuses_what_it_cannot_honour(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigurationError, match=name) as info:
        StoreConfig.from_env(env)
    assert "\n" not in str(info.value)


# -- python -m labqueue.demo ...: one line, exit 2, nothing started ----------------------
BAD_OPTIONS = [
    ["mail", "--latency", "nan"],
    ["mail", "--latency", "inf"],
    ["mail", "--latency", "-1"],
    ["mail", "--latency", "1e9"],
    ["mail", "--jitter", "nan"],
    ["mail", "--jitter", "-0.5"],
    ["mail", "--error-rate", "nan"],
    ["mail", "--error-rate", "2"],
    ["mail", "--smtp-port", "70000"],
    ["mail", "--http-port", "-1"],
    ["erp", "--latency", "-inf"],
    ["erp", "--error-rate", "-0.5"],
    ["erp", "--jitter", "1e300"],
    ["erp", "--port", "65536"],
    ["web", "--port", "99999"],
    ["up", "--email-latency", "nan"],
    ["up", "--erp-latency", "inf"],
    ["up", "--jitter", "-1"],
    ["up", "--error-rate", "nan"],
    ["up", "--port", "70000"],
    ["up", "--smtp-port", "-1"],
    ["up", "--mail-port", "1e3"],
    ["up", "--erp-port", "x"],
    ["up", "--web-workers", "0"],
    ["up", "--queue-workers", "1000"],
]


@pytest.mark.parametrize("argv", BAD_OPTIONS, ids=" ".join)
def test_demo_options_refuse_what_they_cannot_honour_in_one_line(argv: list[str]) -> None:
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and argv[1] in errors[0], result.output
    assert "Traceback" not in result.output and result.exception is not None
    assert isinstance(result.exception, SystemExit)


def test_initdb_on_a_path_it_cannot_write_is_one_line(tmp_path: Any) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(main, ["initdb", "--db", str(blocker / "store.db")])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert result.output.startswith("Error: ") and len(result.output.splitlines()) == 1


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:1/0?password=Sekr3t-XYZ",
        "redis://127.0.0.1:1/0?no_such_option=1&password=Sekr3t-XYZ",
        "redis://127.0.0.1:1/0?db=x&password=Sekr3t-XYZ",
        "redis://:Sekr3t-XYZ@[bad",
        "http://:Sekr3t-XYZ@x",
    ],
)
def test_up_with_a_redis_url_it_cannot_use_is_one_line_without_the_password(
    tmp_path: Any, url: str
) -> None:
    argv = ["up", "--redis-url", url, "--log-dir", str(tmp_path / "logs")]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and "Redis" in errors[0], result.output
    assert "Sekr3t" not in result.output


# -- the fakes' other endpoints: what a caller sends cannot break what they serve later ----
@pytest.mark.parametrize("total", ["abc", [1], {"x": 1}, -5, True, 1.5, "NaN"])
def test_the_erp_refuses_a_sale_whose_total_it_could_not_add_up(total: Any) -> None:
    with FakeERP(latency=0.0, seed=1) as erp:
        sale = {"order_id": 7, "total_cents": total, "items": [{"sku": "SKU-1", "qty": 1}]}
        resp = requests.post(f"{erp.url}/sales", json=sale, timeout=5)
        assert resp.status_code == 400 and resp.json()["field"] == "total_cents"
        listing = requests.get(f"{erp.url}/sales", timeout=5)
        assert listing.status_code == 200 and listing.json()["count"] == 0


@pytest.mark.parametrize("limit", ["-1", "0", "abc", "9" * 5000])
def test_a_listing_limit_that_is_not_a_positive_count_is_a_400(service: Any, limit: str) -> None:
    path = "/messages" if isinstance(service, FakeMail) else "/sales"
    resp = requests.get(f"{service.url}{path}?limit={limit}", timeout=5)
    assert resp.status_code == 400 and resp.json()["field"] == "limit"


def test_up_with_a_log_dir_it_cannot_make_is_one_line(tmp_path: Any) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    argv = ["up", "--log-dir", str(blocker / "logs"), "--redis-url", "redis://127.0.0.1:1/0"]
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and str(blocker) in errors[0], result.output
