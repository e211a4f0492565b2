"""Locust's distributed mode across simulated hosts: one master here, a worker in each of two
hosts (their own hostnames and pids, this machine's loopback), the same results files as a
one-machine ``--processes 2`` run."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from test_loadtest_locust import open_scenario, store  # noqa: F401 - the fixture

from labqueue import procs
from labqueue.testing import SimHost, hosts_unavailable
from loadtests import results
from loadtests.locust_proc import LocustProcess, distributed_commands
from loadtests.schedule import arrivals

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(hosts_unavailable() is not None, reason=str(hosts_unavailable())),
]


def test_one_master_and_workers_in_two_hosts_write_one_run(
    store: str,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    sc = open_scenario("sync")
    run = LocustProcess(sc, store, tmp_path, processes=2)  # two workers share the schedule
    env = run.env()
    master_cmd, worker_cmd = distributed_commands(store, tmp_path, 2, sc.timeout)
    hosts = [SimHost(name, tmp_path / "hosts").start() for name in ("load-a", "load-b")]
    with (tmp_path / "master.log").open("wb") as log:
        master = subprocess.Popen(master_cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for host in hosts:
            host.run(worker_cmd, env=env, name="locust-worker")
        assert master.wait(run.deadline() + 30) == 0
    finally:
        if master.poll() is None:
            procs.stop(master, grace=5)
        for host in hosts:
            host.kill()
    res = results.load_scenario(tmp_path)
    assert sorted(res.requests.seq) == [a.seq for a in arrivals(sc)]  # none lost, none twice
    assert set(res.requests.worker) == {0, 1}
    workers = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("worker-*.json"))]
    assert [w["count"] for w in workers] == [2, 2]
    assert abs(workers[0]["t0"] - workers[1]["t0"]) < 1.0
    for name in ("locust_stats.csv", "locust_stats_history.csv", "locust_stats.json"):
        assert (tmp_path / name).stat().st_size > 0
    names = (tmp_path / "master.log").read_text() + (tmp_path / "logs" / "locust.log").read_text()
    assert "load-a" in names and "load-b" in names  # the master saw a worker of each host
