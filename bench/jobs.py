"""The jobs every queue runs in the benchmark: a no-op, and a probe that notes when it started.

The same two functions serve huey and RQ (plain functions) and labqueue (job classes), so
every queue does the same work per job. labqueue workers load this module with
``--import bench.jobs``; RQ imports ``bench.jobs.noop`` by name; huey registers both.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis

import labqueue

from .names import PROBE_KEY, URL_ENV

NOOP_NAME = "Bench\\Noop"
PROBE_NAME = "Bench\\Probe"

_clients: dict[str, redis.Redis] = {}


def noop(**data: Any) -> None:
    """Does nothing: what is measured is the queue around it."""


def probe(**data: Any) -> None:
    """Push the wall-clock time this job started to PROBE_KEY (enqueue-to-start latency)."""
    started = time.time()
    url = os.environ[URL_ENV]
    client = _clients.get(url)
    if client is None:
        client = _clients[url] = redis.Redis.from_url(url)
    client.rpush(PROBE_KEY, repr(started))


@labqueue.job(NOOP_NAME)
class Noop(labqueue.Job):
    def perform(self) -> None:
        noop(**self.args)


@labqueue.job(PROBE_NAME)
class Probe(labqueue.Job):
    def perform(self) -> None:
        probe(**self.args)
