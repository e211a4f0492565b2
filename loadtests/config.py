"""Every setting of a run, in one dataclass, with the defaults that tell the story on 2 cores.

The sync checkout takes about 0.8 s (email 0.3 s + two ERP calls of 0.25 s), so 4 web
workers serve about 5 checkouts/s; offered load steps 2, 4, 6, 8, 10 req/s cross that.
The deferred checkout answers in milliseconds and leaves 3 jobs (0.8 s of work together);
4 queue workers do about 4-5 orders' worth per second, so the queues grow in the 6-10 req/s
steps and drain once the load stops. ``backlog`` holds 6 req/s for a minute on those workers;
``sized`` offers the same to workers sized per queue by Little's law (sizing.py).
``capacity`` (three scenarios) gives the ERP a capacity of K = 2 calls at once and offers
1.5 times what it can take, to K and 4K ERP workers, and to 4K limited to K ERP jobs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labqueue.connection import redact

from .shapes import (
    CAPACITY_K,
    DEFAULT_SCENARIOS,
    Scenario,
    capacity_presets,
    customise,
    expand,
    presets,
    rate_steps,
    user_steps,
)

QUICK_SCENARIOS = ("sync", "deferred", "backlog", "sized")


@dataclass
class RunConfig:
    quick: bool = False
    scenarios: tuple[str, ...] = ()  #: empty: the defaults for quick or full
    rates: tuple[float, ...] = ()  #: open-loop req/s per step (empty: the preset's)
    step_seconds: float | None = None
    users: tuple[int, ...] = ()  #: closed-loop users per step (empty: the preset's)
    closed_step_seconds: float | None = None
    think_time: float = 1.0
    arrival: str = "poisson"
    seed: int = 1
    timeout: float | None = None  #: client timeout per request (s); None: 30, quick 10
    web_workers: int = 4
    queue_workers: int = 4  #: each on the queues email,erp (strict priority: email first)
    #: instead, workers on each queue alone ({"email": 1, "erp": 5}), every scenario
    queue_workers_per_queue: dict[str, int] = field(default_factory=dict)
    #: the busy share ``sized`` aims its workers at (Little's law: workers = load ÷ this)
    target_utilisation: float = 0.7
    email_latency: float = 0.3
    erp_latency: float = 0.25
    jitter: float = 0.2  #: spread of the fake services' latency (the store's default)
    error_rate: float = 0.0
    #: calls the fake ERP serves at once (0: unlimited); the capacity runs' K (0: CAPACITY_K)
    erp_capacity: int = 0
    queue_threads: int = 1  #: threads per queue worker (``labqueue worker --threads``)
    #: at most this many ERP jobs at once (max_concurrency; None: none); not the capacity runs
    erp_limit: int | None = None
    processes: int = 1  #: Locust processes (1: no --processes)
    drain_cap: float = 90.0  #: longest wait for the queues to empty after the load (s)
    sample_interval: float = 0.5
    redis_url: str | None = None  #: external Redis (default: an embedded redis-server)
    store_url: str | None = None  #: external store on this machine (default: start one)
    port: int = 0  #: the store's port (0: a free one)
    results_dir: Path = Path("results")
    graphs: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def scenario_names(self) -> tuple[str, ...]:
        if self.scenarios:
            return expand(self.scenarios)
        return QUICK_SCENARIOS if self.quick else DEFAULT_SCENARIOS

    def stack_options(self, sc: Scenario) -> dict[str, Any]:
        """The store's ERP capacity, ERP limit and worker threads for ``sc``: a capacity
        run's own (in its ``extra``), else this config's."""
        extra = sc.extra
        return {
            "erp_capacity": extra.get("erp_capacity", self.erp_capacity),
            "erp_limit": extra.get("erp_limit", self.erp_limit),
            "queue_threads": self.queue_threads,
        }

    def build_scenarios(self) -> list[Scenario]:
        """The scenarios to run, the presets with this config's changes applied."""
        known = presets(self.quick)
        timeout = known["capacity-k"].timeout
        k = self.erp_capacity or CAPACITY_K
        known.update(capacity_presets(self.quick, timeout, k, self.erp_latency, self.email_latency))
        unknown = [n for n in self.scenario_names() if n not in known]
        if unknown:
            raise ValueError(f"unknown scenario(s) {unknown}; known: {sorted(known)}")
        out = []
        for name in self.scenario_names():
            base = known[name]
            steps = base.steps
            if base.loop == "open" and (self.rates or self.step_seconds):
                rates = self.rates or tuple(s.rate for s in base.steps)
                steps = rate_steps(rates, self.step_seconds or base.steps[0].duration)
            if base.loop == "closed" and (self.users or self.closed_step_seconds):
                users = self.users or tuple(s.users for s in base.steps)
                steps = user_steps(users, self.closed_step_seconds or base.steps[0].duration)
            out.append(
                customise(
                    base,
                    steps=steps,
                    arrival=self.arrival,
                    seed=self.seed,
                    timeout=self.timeout,
                    think_time=self.think_time,
                )
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["results_dir"] = str(self.results_dir)
        if self.redis_url:
            data["redis_url"] = redact(self.redis_url)  # never a password in meta.json
        data["scenarios"] = list(self.scenario_names())
        return data

    def estimate_seconds(self) -> float:
        """A rough length of the whole run, for the progress line."""
        total = 0.0
        for sc in self.build_scenarios():
            total += 8.0 + sc.lead + sc.duration  # start and stop the stack, run the steps
            if sc.mode == "sync" and sc.loop == "open":
                total += sc.timeout  # the last requests still in flight (or timing out)
            if sc.mode == "deferred":
                total += min(self.drain_cap, 0.5 * sc.duration)  # the queues draining
        return total
