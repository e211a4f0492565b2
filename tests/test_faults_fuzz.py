"""Fuzz: anything a producer can push into a queue, against a real worker process.

Hypothesis generates payloads (bytes that are not UTF-8, text that is not JSON, JSON that is
not an object, a missing or non-string ``class``, ``args`` that are not a list, deep nesting,
lone surrogates, payloads over the size limit, class names such as ``os.system``, and a few
valid ones) and pushes each one with a raw RPUSH, as a foreign producer would. Each must end
counted, either done (only a registered class with a list of args) or in the failed store
with a clear error and the raw payload kept; the worker never dies and never imports a
module a payload names (``faults_canary`` would leave a file if it were imported).
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from fault_tools import K, workers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from waiting import wait_for

import labqueue

REGISTERED = ["tests.Record", "Job\\Work\\TestJob", "Job::Work::TestJob"]
DANGEROUS = ["os.system", "subprocess.Popen", "builtins.eval", "faults_canary.Boom", "", " "]
HUGE = json.dumps({"class": "tests.Record", "args": ["x" * (1024 * 1024 + 10)]})

json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
class_name = st.sampled_from(REGISTERED + DANGEROUS) | st.text(max_size=30) | json_value


@st.composite
def job_objects(draw: st.DrawFn) -> str:
    """Objects shaped like payloads, each field possibly missing or of the wrong type."""
    obj: dict[str, Any] = draw(st.dictionaries(st.text(max_size=8), json_value, max_size=3))
    if draw(st.booleans()):
        obj["class"] = draw(class_name)
    if draw(st.booleans()):
        obj["args"] = draw(st.lists(json_value, max_size=3) | json_value)
    if draw(st.booleans()):
        obj["id"] = draw(st.text(alphabet="0123456789abcdef", min_size=1, max_size=32) | json_value)
    return json.dumps(obj)


payloads = st.one_of(
    st.binary(max_size=80),  # mostly not UTF-8
    st.text(max_size=80).map(str.encode),  # text, mostly not JSON
    json_value.map(lambda v: json.dumps(v).encode()),  # JSON, mostly not an object
    job_objects().map(str.encode),
    st.integers(1, 120_000).map(lambda n: ("[" * n + "]" * n).encode()),  # deep nesting
    st.sampled_from(REGISTERED + DANGEROUS).map(
        lambda c: json.dumps({"class": c, "args": ["\ud800 lone surrogate"]}).encode()
    ),
    st.just(HUGE.encode()),
)


def counted(r: redis.Redis) -> int:
    """Jobs finished: ``stat:processed`` counts failed ones too, as Resque counts."""
    return int(r.get(K.stat("processed")) or 0)


def check_kept(record: labqueue.Failure, raw: bytes) -> None:
    """The failure record keeps the payload: its bytes, its text, or its JSON object."""
    assert record.exception and record.error and "\n" not in record.error
    if "payload_base64" in record.extra:
        assert base64.b64decode(record.extra["payload_base64"]) == raw
        return
    text = raw.decode()
    if isinstance(record.payload, dict):
        assert record.payload == json.loads(text)
    else:
        assert record.payload == text


@pytest.mark.slow
def test_no_payload_kills_the_worker_or_escapes_the_failed_store(
    real: redis.Redis, worker_env: dict[str, str], tmp_path: Path
) -> None:
    canary = tmp_path / "canary-imported"
    env = {**worker_env, "LABQUEUE_CANARY": str(canary)}
    tried: list[int] = []
    with workers(env, tmp_path / "logs", "--queues", "fuzz", "--import", "jobs_for_tests") as group:
        proc = group.start()
        wait_for(lambda: real.scard(K.workers), what="the worker to start")

        @settings(
            max_examples=300,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(raw=payloads)
        def push_one(raw: bytes) -> None:
            before, failed_before = counted(real), real.llen(K.failed)
            real.rpush(K.queue("fuzz"), raw)
            wait_for(lambda: counted(real) > before or proc.poll() is not None, timeout=20)
            assert proc.poll() is None, group.log_text()[-3000:]
            assert counted(real) == before + 1
            tried.append(len(raw))
            if real.llen(K.failed) == failed_before:  # it ran: only a registered class does
                data = json.loads(raw)
                assert data["class"] in REGISTERED and isinstance(data.get("args", []), list)
                return
            record = labqueue.FailedStore(real).all(-1)[0]
            check_kept(record, raw)

        started = time.monotonic()
        push_one()
        assert proc.poll() is None
    failed = len(labqueue.FailedStore(real))
    print(
        f"\nfuzz: payloads tried {len(tried)}, failed cleanly {failed}, ran {len(tried) - failed}, "
        f"largest {max(tried)} bytes, {time.monotonic() - started:.1f} s"
    )
    assert not canary.exists(), "a payload made the worker import a module"
    assert real.llen(K.queue("fuzz")) == 0 and real.keys(K.inprogress("*")) == []
    assert len(tried) >= 100
