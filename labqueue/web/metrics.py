"""``GET /metrics``: the monitor's numbers for Prometheus, written with ``prometheus_client``.

    labqueue_queue_depth{queue}                     jobs waiting (gauge)
    labqueue_queue_oldest_job_age_seconds{queue}    how long the oldest job waiting for it,
                                                    queued or parked, has waited (gauge)
    labqueue_jobs_processed_total                   Resque's stat:processed (failed included)
    labqueue_jobs_failed_total                      Resque's stat:failed
    labqueue_workers{state="busy"|"idle"}           registered workers (gauge)
    labqueue_delayed_jobs                           jobs scheduled for later (gauge)
    labqueue_failed_store_jobs                      failure records kept for review (gauge)
    labqueue_unreadable_keys                        keys skipped this scrape (gauge)
    labqueue_limiter_slots{limiter}                 a concurrency limit's K (gauge)
    labqueue_limiter_running{limiter}               its slots held under a live lease (gauge)
    labqueue_limiter_parked_jobs{limiter}           its jobs waiting for a slot (gauge)
    labqueue_limiter_parked_oldest_age_seconds{limiter}  its longest-parked job's wait (gauge)

Read at scrape time by a custom collector (one snapshot and one oldest-age round trip),
registered in a registry of the app's own, never the process-wide default one: two apps in
one process each answer for their own Redis. A key that cannot be read (another type, a
counter that is no number) is left out of its family and counted in
``labqueue_unreadable_keys``; a queue whose head job's age is unknown (a Ruby payload has no
``queue_time``) has no age sample. The password rule is every page's (:mod:`.security`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Flask, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..ages import Ages
from ..limiters import LimiterInfo
from ..reading import printable
from ..stats import snapshot, waiting_ages
from .monitor import Monitor

bp = Blueprint("metrics", __name__)

#: Where the app keeps its registry (``app.extensions``).
EXTENSION = "labqueue_metrics"


class QueueCollector(Collector):
    """Every family above, read from the monitor's Redis when Prometheus scrapes."""

    def __init__(self, mon: Monitor) -> None:
        self.mon = mon

    def collect(self) -> Iterator[Metric]:
        mon = self.mon
        snap = snapshot(mon.connection, mon.keys.namespace)
        readable = [n for n in snap.queues if mon.keys.queue(n) not in snap.unreadable]
        found = waiting_ages(mon.connection, readable, mon.keys.namespace)
        ages = found.waiting
        depth = GaugeMetricFamily(
            "labqueue_queue_depth", "Jobs waiting in the queue.", labels=["queue"]
        )
        age = GaugeMetricFamily(
            "labqueue_queue_oldest_job_age_seconds",
            "Seconds the oldest job waiting for the queue has waited, at its head or parked "
            "by a concurrency limit (0 when none waits).",
            labels=["queue"],
        )
        for name in readable:
            depth.add_metric([printable(name)], snap.queues[name])
            if (seconds := ages.get(name)) is not None:
                age.add_metric([printable(name)], seconds)
        yield depth
        yield age
        yield from _totals(snap.processed, snap.failed, snap.unreadable, mon)
        workers = GaugeMetricFamily(
            "labqueue_workers", "Registered workers, busy or idle.", labels=["state"]
        )
        workers.add_metric(["busy"], snap.busy_workers)
        workers.add_metric(["idle"], len(snap.workers) - snap.busy_workers)
        yield workers
        yield GaugeMetricFamily(
            "labqueue_delayed_jobs", "Jobs scheduled for later.", value=snap.delayed
        )
        yield GaugeMetricFamily(
            "labqueue_failed_store_jobs",
            "Failure records kept for review.",
            value=snap.failed_store,
        )
        yield from _limits(snap.limiters)
        yield _parked_ages(found)
        yield GaugeMetricFamily(
            "labqueue_unreadable_keys",
            "Keys this scrape skipped (another type, a counter that is no number).",
            value=len(snap.unreadable),
        )


def _totals(processed: int, failed: int, unreadable: dict[str, str], mon: Monitor) -> Iterator[Any]:
    """Resque's two counters, each left out when its key cannot be read."""
    for name, value, what in (
        ("processed", processed, "Jobs finished, failed ones included (Resque's stat:processed)."),
        ("failed", failed, "Jobs that failed (Resque's stat:failed)."),
    ):
        if mon.keys.stat(name) not in unreadable:
            yield CounterMetricFamily(f"labqueue_jobs_{name}", what, value=value)


def _limits(limiters: list[LimiterInfo]) -> Iterator[Metric]:
    """The concurrency limits: K, slots held, parked jobs, per limiter."""
    families = (
        ("slots", "Jobs of the limiter that may run at once (its max_concurrency)."),
        ("running", "Slots of the limiter held under a live lease."),
        ("parked_jobs", "Jobs waiting for a slot of the limiter (in no queue meanwhile)."),
    )
    for suffix, what in families:
        family = GaugeMetricFamily(f"labqueue_limiter_{suffix}", what, labels=["limiter"])
        for lim in limiters:
            value = {"slots": lim.limit, "running": lim.running, "parked_jobs": lim.parked}[suffix]
            if value is not None:
                family.add_metric([printable(lim.name)], value)
        yield family


def _parked_ages(ages: Ages) -> Metric:
    """Per limiter, how long its longest-parked job has waited (left out when unknown)."""
    family = GaugeMetricFamily(
        "labqueue_limiter_parked_oldest_age_seconds",
        "Seconds the limiter's longest-parked job has waited since it was enqueued "
        "(0 when none is parked).",
        labels=["limiter"],
    )
    for name, parked in ages.parked.items():
        if parked.age is not None:
            family.add_metric([printable(name)], parked.age)
    return family


def install(app: Flask, mon: Monitor) -> None:
    """A registry of this app's own with the collector in it, and the ``/metrics`` route."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(QueueCollector(mon))
    app.extensions[EXTENSION] = registry
    app.register_blueprint(bp)


@bp.get("/metrics")
def metrics() -> Response:
    registry: CollectorRegistry = current_app.extensions[EXTENSION]
    return Response(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
