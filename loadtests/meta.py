"""meta.json: every setting, the versions, the machine, the start and end of a run."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

PACKAGES = (
    "labqueue",
    "locust",
    "gevent",
    "geventhttpclient",
    "flask",
    "gunicorn",
    "redis",
    "matplotlib",
    "numpy",
    "psutil",
)


#: What each file of a run holds (meta.json carries this, so a run describes itself).
FILES = {
    "summary.json": "per scenario and step: offered, achieved, p50/p95/p99, errors; queue "
    "depth, oldest waiting job, drain time, jobs; per step, when the email and the ERP came",
    "<scenario>/scenario.json": "the load shape, as data",
    "<scenario>/info.json": "pids, URLs, the queue workers per queue (workers), the ERP's "
    "capacity, the ERP jobs' limit and the worker threads (stack_options) and, for a "
    "scenario that sizes its own, Little's law's inputs and result (sizing)",
    "<scenario>/requests-N.csv": "one row per request from Locust process N: intended, sent, "
    "done (epoch s), latency_ms from the intended start, status, order_id",
    "<scenario>/sampler.csv": "every 0.5 s: queued, parked (held back by a concurrency "
    "limit, in no queue: waiting in Redis is queued + parked), busy workers, processed, "
    "failed, queue_<q> (jobs in the queue), age_<q> (the oldest job waiting for the queue, "
    "in it or parked, s, Redis's clock; blank when unknown), parked_<limiter> and "
    "parked_age_<limiter> (its parked jobs and the longest-parked one's age, s), Locust CPU",
    "<scenario>/jobs.csv": "one row per job a queue worker ran, recorded by the worker "
    "(labqueue.events): id, job_class, queue, order_id, enqueued (the payload's queue_time), "
    "started, finished (epoch s), wait_s, run_s, outcome (done, failed, retry), worker",
    "<scenario>/calls.csv": "one row per call the fake mail server and ERP received: "
    "service, call (mail, sales, inventory), order_id, to, received, answered (epoch s), "
    "result (accepted, refused, recorded, applied, duplicate, failed); behind an ERP "
    "capacity also started (epoch s; the wait inside the ERP is started - received) and "
    "in_service (ERP calls in service then, itself included)",
    "<scenario>/orders.csv": "one row per order, sync or deferred, in seconds after its "
    "checkout's intended start: answered_s (the shopper's answer), email_s (receipt "
    "accepted), erp_sale_s, erp_stock_s, erp_s (the later of the two); blank: never",
    "<scenario>/logs/": "every component's log",
}


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(ts))


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(repo: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def redis_version(connection: Any) -> str | None:
    try:
        return str(connection.info("server").get("redis_version"))
    except Exception:
        return None


def start_meta(settings: dict[str, Any], scenarios: list[dict[str, Any]]) -> dict[str, Any]:
    now = time.time()
    return {
        "started": iso(now),
        "started_epoch": now,
        "ended": None,
        "duration_s": None,
        "partial": True,
        "status": "running",
        "reason": None,
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "settings": settings,
        "scenarios": scenarios,
        "scenarios_run": [],
        "files": FILES,
        "versions": versions(),
        "machine": machine(),
        "git": git_commit(Path(__file__).resolve().parent.parent),
        #: the machine's 1, 5 and 15 min load averages when the run began (shared machines)
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def write_meta(path: Path, meta: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta, indent=2, default=str) + "\n")
    tmp.replace(path)
