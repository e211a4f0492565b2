"""The coordinated-omission demo's pause: workers stopped on time, always resumed."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from loadtests.pause import Pauser, pauser_for, web_worker_pids
from loadtests.shapes import presets


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def _status(pid: int) -> str:
    """The process's state once a signal sent just now has landed (give it a moment)."""
    before = psutil.Process(pid).status()
    for _ in range(50):
        time.sleep(0.02)
        now = psutil.Process(pid).status()
        if now != before:
            return str(now)
    return str(before)


def test_stops_at_the_time_and_resumes_after_the_pause(sleeper: subprocess.Popen) -> None:
    pauser = Pauser(lambda: [sleeper.pid], at=8.0, seconds=5.0)
    t0 = time.time() - 7.0  # the schedule started 7 s ago: not yet
    pauser.tick(t0)
    assert pauser.started_epoch is None and _status(sleeper.pid) != psutil.STATUS_STOPPED
    pauser.tick(t0, now=t0 + 8.0)
    assert _status(sleeper.pid) == psutil.STATUS_STOPPED
    pauser.tick(t0, now=t0 + 12.0)  # 4 s into a 5 s pause: still stopped
    assert _status(sleeper.pid) == psutil.STATUS_STOPPED
    pauser.tick(t0, now=t0 + 13.5)
    assert _status(sleeper.pid) != psutil.STATUS_STOPPED
    assert pauser.ended_epoch is not None and pauser.to_dict()["pause_seconds"] == 5.0
    pauser.tick(t0, now=t0 + 30.0)  # once only
    assert _status(sleeper.pid) != psutil.STATUS_STOPPED


def test_resumed_in_a_finally_even_when_interrupted(sleeper: subprocess.Popen) -> None:
    pauser = Pauser(lambda: [sleeper.pid], at=0.0, seconds=60.0)
    with pytest.raises(KeyboardInterrupt):
        try:
            pauser.tick(time.time())
            assert _status(sleeper.pid) == psutil.STATUS_STOPPED
            raise KeyboardInterrupt
        finally:
            pauser.resume()
    assert _status(sleeper.pid) != psutil.STATUS_STOPPED
    pauser.resume()  # twice is harmless


def test_only_the_runners_own_stack_is_paused() -> None:
    sc = presets()["pause"]

    class External:  # --store-url: no stack, never paused
        pass

    assert pauser_for(sc, External()) is None
    assert pauser_for(presets()["sync"], External()) is None
    assert web_worker_pids(None) == []


def test_aimed_at_the_web_servers_workers_not_its_master() -> None:
    """Only the workers stop; gunicorn's master stays awake and keeps managing them."""
    sleep = "import time; time.sleep(60)"
    code = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {sleep!r}]); "
    code += "time.sleep(60)"
    master = subprocess.Popen([sys.executable, "-c", code])
    try:
        for _ in range(100):
            if psutil.Process(master.pid).children():
                break
            time.sleep(0.05)
        (child,) = psutil.Process(master.pid).children()

        class Web:
            pid = master.pid

        class Stack:
            web = Web()

        class Target:
            stack = Stack()

        pauser = pauser_for(presets()["pause-closed"], Target())
        assert pauser is not None and pauser.pids() == [child.pid]
        assert (pauser.at, pauser.seconds) == (8.0, 5.0)
    finally:
        for proc in psutil.Process(master.pid).children():
            proc.kill()
        master.kill()
        master.wait()
