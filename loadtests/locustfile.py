"""Shoppers checking out at the toy store: open loop (default) or closed loop.

Run by ``python -m loadtests`` (which writes the scenario file and reads the results), or by
hand against a store on this machine::

    locust -f loadtests/locustfile.py --config loadtests/locust.conf --host http://127.0.0.1:8000

The scenario comes from ``$LOADTEST_SCENARIO_FILE`` (else the quick ``sync`` preset, or
``$LOADTEST_SCENARIO``). Per-request rows go to ``$LOADTEST_OUT/requests-<process>.csv``.
"""

from __future__ import annotations

import logging
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, LoadTestShape, constant, events, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

try:
    from loadtests import schedule as sched
    from loadtests.net import is_loopback
    from loadtests.recorder import RequestRecorder, make_row, shopper_email, write_worker_info
    from loadtests.shapes import Scenario, scenario_from_env
except ImportError:  # run from a checkout without installing: the repo root is our parent
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from loadtests import schedule as sched
    from loadtests.net import is_loopback
    from loadtests.recorder import RequestRecorder, make_row, shopper_email, write_worker_info
    from loadtests.shapes import Scenario, scenario_from_env

log = logging.getLogger("loadtests")
SCENARIO: Scenario = scenario_from_env()
OUT = Path(os.environ.get("LOADTEST_OUT", "results/manual"))
SKUS = [f"SKU-{i}" for i in range(1, 21)]


class ProcessState:
    """What the users of one Locust process share: its schedule, its recorder, its position."""

    schedule: sched.Schedule | None = None
    recorder: RequestRecorder | None = None
    index: int = 0
    count: int = 1
    t0: float = 0.0
    closed_seq: int = 0


STATE = ProcessState()


def process_position(environment: Environment) -> tuple[int, int]:
    """(index, count) of this Locust process among those sharing the schedule."""
    runner = environment.runner
    if not isinstance(runner, WorkerRunner):
        return 0, 1
    opts = environment.parsed_options
    count = int(os.environ.get("LOADTEST_WORKERS") or getattr(opts, "processes", 1) or 1)
    if count < 0:
        count = os.cpu_count() or 1
    if runner.worker_index >= count:
        raise RuntimeError(
            f"worker index {runner.worker_index} but LOADTEST_WORKERS={count}: "
            "set LOADTEST_WORKERS to the total number of Locust worker processes"
        )
    return runner.worker_index, count


@events.init.add_listener
def refuse_remote_targets(environment: Environment, **_: Any) -> None:
    if environment.host and not is_loopback(environment.host):
        log.error("refusing to load %s: these load tests only target loopback", environment.host)
        sys.exit(2)


@events.test_start.add_listener
def start_process(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, MasterRunner):
        return
    STATE.index, STATE.count = process_position(environment)
    STATE.t0 = time.time() + (SCENARIO.lead if SCENARIO.loop == "open" else 0.0)
    mine = sched.partition(sched.arrivals(SCENARIO), STATE.index, STATE.count)
    STATE.schedule = sched.Schedule(mine, STATE.t0)
    STATE.recorder = RequestRecorder(OUT / f"requests-{STATE.index}.csv")
    write_worker_info(
        OUT / f"worker-{STATE.index}.json",
        index=STATE.index,
        count=STATE.count,
        t0=STATE.t0,
        scheduled=len(mine),
        pid=os.getpid(),
        scenario=SCENARIO.name,
    )


@events.test_stop.add_listener
def stop_process(environment: Environment, **_: Any) -> None:
    if STATE.recorder is not None:
        STATE.recorder.close()


def order_body(seq: int) -> dict[str, Any]:
    """A plausible order, the same for the same seed and sequence number."""
    rng = random.Random(SCENARIO.seed * 1_000_003 + seq)
    lines = rng.randint(1, SCENARIO.items_max)
    items = [{"sku": sku, "qty": rng.randint(1, 3)} for sku in rng.sample(SKUS, lines)]
    return {"email": shopper_email(seq), "items": items}


def judge(resp: Any) -> tuple[str, str, float]:
    """(error, order_id, server_ms) of an answer: error is "" for a good checkout."""
    if not resp.status_code:  # timed out, refused, reset: no HTTP answer at all
        return f"no answer: {type(resp.error).__name__}", "", float("nan")
    try:
        data = resp.json()
    except ValueError:
        data = None
    if resp.status_code != 200:
        cause = data.get("error", "") if isinstance(data, dict) else ""
        return f"HTTP {resp.status_code} {cause}".strip()[:120], "", float("nan")
    if not isinstance(data, dict) or "order_id" not in data or data.get("mode") != SCENARIO.mode:
        return "bad answer: no order_id or wrong mode", "", float("nan")
    total = (data.get("timings_ms") or {}).get("total")
    return "", str(data["order_id"]), float(total) if total is not None else float("nan")


class Shopper(FastHttpUser):
    """One shopper; the open- and closed-loop kinds differ only in when they send."""

    abstract = True
    network_timeout = SCENARIO.timeout
    connection_timeout = SCENARIO.timeout

    def checkout(self, seq: int, step: int, offered: float, intended: float | None) -> None:
        """POST one order; ``intended`` None (closed loop) means: intended = sent."""
        sent = time.time()
        intended = sent if intended is None else intended
        with self.client.post(
            SCENARIO.endpoint, json=order_body(seq), name=SCENARIO.request_name, catch_response=True
        ) as resp:
            error, order_id, server_ms = judge(resp)
            if error:
                resp.failure(error)
            else:
                resp.success()
        done = time.time()
        if STATE.recorder is not None:
            row = make_row(
                SCENARIO.name,
                STATE.index,
                seq,
                step,
                offered,
                intended,
                sent,
                done,
                SCENARIO.request_name,
                int(resp.status_code or 0),
                error,
                order_id,
                server_ms,
            )
            STATE.recorder.write(row)


class OpenLoopShopper(Shopper):
    """Takes the next intended time from the schedule, sleeps until it, then checks out."""

    wait_time = constant(0)

    @task
    def scheduled_checkout(self) -> None:
        got = STATE.schedule.take() if STATE.schedule else None
        if got is None:  # schedule done: idle until the shape stops the test
            gevent.sleep(0.5)
            return
        arrival, intended = got
        sched.Schedule.wait_until(intended, gevent.sleep)
        self.checkout(arrival.seq, arrival.step, arrival.rate, intended)


class ClosedLoopShopper(Shopper):
    """Sends, waits for the answer, thinks, sends again: the classic (closed-loop) test."""

    wait_time = constant(SCENARIO.think_time)

    @task
    def checkout_and_think(self) -> None:
        STATE.closed_seq += 1
        seq = STATE.closed_seq * STATE.count + STATE.index
        now = time.time()
        step = SCENARIO.step_at(now - STATE.t0)
        users = SCENARIO.steps[step].users if step is not None else 0
        self.checkout(seq, -1 if step is None else step, float(users), None)


class StepShape(LoadTestShape):
    """The scenario's steps as a Locust shape. Open loop: all users at once (each waits for
    its intended time), stopping when every scheduled request has answered or timed out.
    Closed loop: each step's user count."""

    def __init__(self) -> None:
        super().__init__()
        self.scheduled = len(sched.arrivals(SCENARIO)) if SCENARIO.loop == "open" else 0

    def tick(self) -> tuple[int, float, list[type[FastHttpUser]]] | None:
        t = self.get_run_time()
        if SCENARIO.loop == "closed":
            step = SCENARIO.step_at(t)
            if step is None:
                return None
            users = SCENARIO.steps[step].users
            return users, 100.0, [ClosedLoopShopper]
        end = SCENARIO.lead + SCENARIO.duration
        answered = self.runner.stats.total.num_requests if self.runner else 0
        if t > end + SCENARIO.timeout + 3 or (t > end and answered >= self.scheduled):
            return None
        users = SCENARIO.users_needed()
        return users, float(users), [OpenLoopShopper]
