"""Locust as a subprocess (its CLI, headless): started in its own process group, so Ctrl-C
reaches the runner only and the runner stops Locust and its forked workers in order."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from labqueue import procs
from labqueue.embedded import free_port

from .shapes import SCENARIO_ENV, Scenario

PACKAGE_DIR = Path(__file__).resolve().parent
LOCUSTFILE = PACKAGE_DIR / "locustfile.py"
LOCUST_CONF = PACKAGE_DIR / "locust.conf"


def locust_command(host: str, out: Path, processes: int = 1, stop_timeout: float = 10) -> list[str]:
    """The Locust CLI for one scenario. ``stop_timeout``: when the shape ends, users finish
    the request they are in (closed loop) instead of dropping it unrecorded."""
    cmd = procs.python_cmd(
        "locust",
        "--config",
        str(LOCUST_CONF),
        "--locustfile",
        str(LOCUSTFILE),
        "--host",
        host,
        "--csv",
        str(out / "locust"),
        "--csv-full-history",
        "--json-file",
        str(out / "locust_stats"),
        "--logfile",
        str(out / "logs" / "locust.log"),
        "--stop-timeout",
        f"{stop_timeout:g}",
    )
    if processes > 1:
        # the master listens for its forked workers on loopback, on a free port (not on every
        # interface at 5557, which two runs on one machine would fight over)
        port = str(free_port())
        cmd += ["--processes", str(processes), "--master-bind-host", "127.0.0.1"]
        cmd += ["--master-bind-port", port, "--master-port", port]
    return cmd


def distributed_commands(
    host: str, out: Path, workers: int, stop_timeout: float = 10
) -> tuple[list[str], list[str]]:
    """Locust's distributed mode by hand: the master's command (as :func:`locust_command`'s,
    waiting for ``workers`` workers on a free loopback port) and the command each worker
    runs, wherever it runs (another host: notebook 7 and tests/test_multihost_locust.py run
    them in simulated hosts). Give every process :meth:`LocustProcess.env`."""
    port = str(free_port())
    master = locust_command(host, out, 1, stop_timeout)
    master += ["--master", "--expect-workers", str(workers), "--master-bind-host", "127.0.0.1"]
    master += ["--master-bind-port", port]
    worker = procs.python_cmd(
        "locust", "--worker", "--master-host", "127.0.0.1", "--master-port", port,
        "--locustfile", str(LOCUSTFILE), "--loglevel", "INFO",
    )  # fmt: skip
    return master, worker


class LocustProcess:
    """One headless Locust run of one scenario; output files go to ``out``."""

    def __init__(self, scenario: Scenario, host: str, out: Path, processes: int = 1) -> None:
        self.scenario = scenario
        self.host = host
        self.out = out
        self.processes = processes
        self.proc: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        (out / "logs").mkdir(parents=True, exist_ok=True)
        self.console = out / "logs" / "locust-console.log"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def deadline(self) -> float:
        """Seconds after which Locust is stopped whatever it is doing (its shape should end
        it well before: after the steps and the slowest request's timeout)."""
        sc = self.scenario
        return sc.lead + sc.duration + sc.timeout + 30.0

    def env(self) -> dict[str, str]:
        """The environment of every Locust process of this run (its scenario file saved)."""
        scenario_file = self.scenario.save(self.out / "scenario.json")
        return {
            **os.environ,
            SCENARIO_ENV: str(scenario_file),
            "LOADTEST_OUT": str(self.out),
            "LOADTEST_WORKERS": str(max(1, self.processes)),
            "PYTHONUNBUFFERED": "1",
        }

    def start(self) -> LocustProcess:
        env = self.env()
        cmd = locust_command(self.host, self.out, self.processes, self.scenario.timeout)
        with self.console.open("wb") as console:
            self.proc = subprocess.Popen(
                cmd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=procs.die_with_parent(),
            )
        self.started = time.monotonic()
        return self

    def poll(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def elapsed(self) -> float:
        return time.monotonic() - self.started if self.started else 0.0

    def overdue(self) -> bool:
        return self.elapsed() > self.deadline()

    def stop(self, grace: float = 15.0) -> int | None:
        """TERM the group (Locust writes its CSVs and quits), KILL it if it lingers."""
        if self.proc is None:
            return None
        # the whole group: forked workers left behind are killed too
        return procs.stop(self.proc, grace, group=True)
