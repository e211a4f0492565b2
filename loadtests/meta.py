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
        "versions": versions(),
        "machine": machine(),
        "git": git_commit(Path(__file__).resolve().parent.parent),
    }


def write_meta(path: Path, meta: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta, indent=2, default=str) + "\n")
    tmp.replace(path)
