"""Load shapes as data: the scenarios, their steps, and the presets (full and quick).

A scenario is plain data (it round-trips through JSON): the runner writes it into the run's
directory and hands the file to Locust, so a run can always be read back or re-run exactly.

Open loop (the default): each step offers ``rate`` requests per second, started on a schedule
of intended times whatever the server does. Closed loop: each step runs ``users`` users, each
sending a request, waiting for its answer, then thinking for ``think_time`` seconds.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

Loop = Literal["open", "closed"]
Arrival = Literal["poisson", "constant"]

#: The store's two checkout endpoints, by mode.
ENDPOINTS = {"sync": "/checkout/sync", "deferred": "/checkout/deferred"}

#: Environment variable naming the scenario file the locustfile reads.
SCENARIO_ENV = "LOADTEST_SCENARIO_FILE"

#: Offered load steps (requests per second) and their length (seconds), full and quick.
FULL_RATES = (2.0, 4.0, 6.0, 8.0, 10.0)
FULL_STEP_SECONDS = 15.0
QUICK_RATES = (2.0, 6.0, 10.0)
QUICK_STEP_SECONDS = 5.0
#: Client timeout per request (s): long enough to see the queueing, short enough to end.
FULL_TIMEOUT = 30.0
QUICK_TIMEOUT = 10.0
#: Closed loop: users per step (each sends, waits for the answer, thinks, sends again).
FULL_USERS = (2, 4, 6, 8, 10)
CLOSED_STEP_SECONDS = 10.0
#: Where the wall went: deferred checkouts held above what today's queue workers finish
#: (about 4 orders/s for 4 workers), then the same load on workers sized by Little's law.
BACKLOG_RATE = 6.0
BACKLOG_SECONDS = 60.0
QUICK_BACKLOG_SECONDS = 20.0
#: Coordinated omission, shown: the store's web workers stopped (SIGSTOP) for PAUSE_SECONDS,
#: PAUSE_AT seconds into one step, under an open loop at PAUSE_RATE and a closed loop of
#: PAUSE_USERS users (about the same throughput: each user's cycle is ~2 s).
PAUSE_RATE = 3.0
PAUSE_USERS = 6
PAUSE_STEP_SECONDS = 20.0
PAUSE_AT = 8.0
PAUSE_SECONDS = 5.0
#: The ERP's capacity, shown: the fake ERP serves CAPACITY_K calls at once (K; 250 ms each:
#: 8 calls/s, 4 orders/s), and a burst of deferred checkouts CAPACITY_OVERLOAD times that
#: arrives for CAPACITY_SECONDS. Three runs, each its own stack: K ERP workers, 4K ERP
#: workers, and 4K ERP workers whose ERP jobs are limited to K at once (max_concurrency).
CAPACITY_K = 2
CAPACITY_OVERLOAD = 1.5
CAPACITY_SECONDS = 20.0
QUICK_CAPACITY_SECONDS = 10.0
#: (scenario, ERP workers per ERP slot, whether the ERP jobs are limited to K)
CAPACITY_RUNS = (("capacity-k", 1, False), ("capacity-4k", 4, False), ("capacity-limit", 4, True))
#: Names that stand for several scenarios in ``--scenarios``.
GROUPS = {"capacity": tuple(name for name, _, _ in CAPACITY_RUNS)}


@dataclass(frozen=True)
class Step:
    """One step of a shape: ``rate`` req/s (open loop) or ``users`` (closed loop)."""

    duration: float
    rate: float = 0.0
    users: int = 0


@dataclass(frozen=True)
class Scenario:
    """Everything the locustfile needs to drive one scenario."""

    name: str
    mode: str  #: "sync" or "deferred": which checkout endpoint
    steps: tuple[Step, ...]
    loop: Loop = "open"
    arrival: Arrival = "poisson"
    seed: int = 1
    timeout: float = 30.0  #: client timeout per request, seconds
    think_time: float = 1.0  #: closed loop: seconds between an answer and the next request
    lead: float = 1.0  #: seconds between the test start and the first intended time
    items_max: int = 3  #: each order has 1..items_max lines
    #: the runner picks this scenario's queue workers per queue by Little's law (sizing.py)
    size_workers: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return ENDPOINTS[self.mode]

    @property
    def request_name(self) -> str:
        """The ``name=`` Locust groups the requests under (the endpoint, without the slash)."""
        return self.endpoint.lstrip("/")

    @property
    def duration(self) -> float:
        """Seconds of offered load (the sum of the steps)."""
        return sum(s.duration for s in self.steps)

    @property
    def max_rate(self) -> float:
        return max((s.rate for s in self.steps), default=0.0)

    def users_needed(self) -> int:
        """Open loop: enough users that every arrival finds one free, even when all wait
        ``timeout`` seconds (rate x timeout in flight, plus margin). Closed: the largest step."""
        if self.loop == "closed":
            return max(s.users for s in self.steps)
        return max(10, math.ceil(self.max_rate * (self.timeout + 2) * 1.2))

    def step_at(self, offset: float) -> int | None:
        """Index of the step running ``offset`` seconds after the first intended time."""
        if offset < 0:
            return None
        end = 0.0
        for i, s in enumerate(self.steps):
            end += s.duration
            if offset < end:
                return i
        return None

    def step_bounds(self) -> list[tuple[float, float]]:
        """(start, end) offsets of each step."""
        bounds, start = [], 0.0
        for s in self.steps:
            bounds.append((start, start + s.duration))
            start += s.duration
        return bounds

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps"] = [asdict(s) for s in self.steps]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scenario:
        data = dict(data)
        steps = tuple(Step(**s) for s in data.pop("steps"))
        return cls(steps=steps, **data)

    def save(self, path: Path) -> Path:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: Path | str) -> Scenario:
        return cls.from_dict(json.loads(Path(path).read_text()))


def rate_steps(rates: tuple[float, ...], seconds: float) -> tuple[Step, ...]:
    return tuple(Step(duration=seconds, rate=float(r)) for r in rates)


def user_steps(users: tuple[int, ...], seconds: float) -> tuple[Step, ...]:
    return tuple(Step(duration=seconds, users=int(u)) for u in users)


def presets(quick: bool = False) -> dict[str, Scenario]:
    """The named scenarios. ``sync`` and ``deferred`` offer the same open-loop steps;
    ``sync-closed`` is the classic closed-loop test of the sync checkout, for comparison.
    ``backlog`` holds deferred checkouts at 6/s, above what the run's queue workers finish,
    so the backlog grows in a straight line; ``sized`` offers the same load to workers sized
    per queue by Little's law, and its oldest waiting job stays young."""
    rates, seconds = (QUICK_RATES, QUICK_STEP_SECONDS) if quick else (FULL_RATES, FULL_STEP_SECONDS)
    steps = rate_steps(rates, seconds)
    users = (2, 6, 10) if quick else FULL_USERS
    closed_seconds = QUICK_STEP_SECONDS if quick else CLOSED_STEP_SECONDS
    timeout = QUICK_TIMEOUT if quick else FULL_TIMEOUT
    held = rate_steps((BACKLOG_RATE,), QUICK_BACKLOG_SECONDS if quick else BACKLOG_SECONDS)
    return {
        "sync": Scenario("sync", "sync", steps, timeout=timeout),
        "deferred": Scenario("deferred", "deferred", steps, timeout=timeout),
        "sync-closed": Scenario(
            "sync-closed", "sync", user_steps(users, closed_seconds), loop="closed", timeout=timeout
        ),
        "backlog": Scenario("backlog", "deferred", held, timeout=timeout),
        "sized": Scenario("sized", "deferred", held, timeout=timeout, size_workers=True),
        **pause_presets(timeout),
        **capacity_presets(quick, timeout),
    }


def pause_presets(timeout: float) -> dict[str, Scenario]:
    """``pause`` (open loop) and ``pause-closed`` (closed loop): one step of the sync
    checkout during which the runner stops the store's web workers for a few seconds."""
    pause = {"pause_at": PAUSE_AT, "pause_seconds": PAUSE_SECONDS}
    rate = rate_steps((PAUSE_RATE,), PAUSE_STEP_SECONDS)
    users = user_steps((PAUSE_USERS,), PAUSE_STEP_SECONDS)
    return {
        "pause": Scenario("pause", "sync", rate, timeout=timeout, extra=pause),
        "pause-closed": Scenario(
            "pause-closed", "sync", users, loop="closed", timeout=timeout, extra=pause
        ),
    }


def capacity_presets(
    quick: bool,
    timeout: float,
    capacity: int = CAPACITY_K,
    erp_latency: float = 0.25,
    email_latency: float = 0.3,
) -> dict[str, Scenario]:
    """The three runs of the ERP's capacity (``--scenarios capacity``): the same burst of
    deferred checkouts, at CAPACITY_OVERLOAD x what an ERP serving ``capacity`` calls of
    ``erp_latency`` s at once can take (two calls per order), on K or 4K ERP workers,
    without and with the limit. Each scenario carries its stack's settings in ``extra``:
    ``erp_capacity``, ``erp_limit`` (None: no limit) and ``workers`` per queue (email
    workers sized for the burst at 70% busy, so only the ERP is short)."""
    rate = round(CAPACITY_OVERLOAD * capacity / (2 * erp_latency), 2) if erp_latency else 1.0
    email = max(1, math.ceil(rate * (email_latency + 0.05) / 0.7))
    steps = rate_steps((rate,), QUICK_CAPACITY_SECONDS if quick else CAPACITY_SECONDS)
    out = {}
    for name, per_slot, limited in CAPACITY_RUNS:
        extra = {
            "erp_capacity": capacity,
            "erp_limit": capacity if limited else None,
            "workers": {"email": email, "erp": per_slot * capacity},
        }
        out[name] = Scenario(name, "deferred", steps, timeout=timeout, extra=extra)
    return out


def expand(names: tuple[str, ...]) -> tuple[str, ...]:
    """Scenario names with each group (``capacity``) replaced by its scenarios."""
    return tuple(n for name in names for n in GROUPS.get(name, (name,)))


#: Scenarios a plain run uses, in order (the capacity runs are asked for by name: the full
#: run stays under 10 minutes).
DEFAULT_SCENARIOS = ("sync", "deferred", "sync-closed", "backlog", "sized", "pause", "pause-closed")


def customise(scenario: Scenario, **changes: Any) -> Scenario:
    """A copy with the given fields changed (None values are ignored)."""
    return replace(scenario, **{k: v for k, v in changes.items() if v is not None})


def scenario_from_env() -> Scenario:
    """The scenario the runner wrote (``$LOADTEST_SCENARIO_FILE``), else the quick ``sync``
    preset, so ``locust -f loadtests/locustfile.py`` alone runs something sensible."""
    path = os.environ.get(SCENARIO_ENV)
    if path:
        return Scenario.load(path)
    name = os.environ.get("LOADTEST_SCENARIO", "sync")
    return presets(quick=True)[name]
