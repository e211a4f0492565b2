"""Reading a run back: per-request rows, sampler rows, percentiles and per-step summaries.

The layout of ``results/<timestamp>/`` (what the runner writes)::

    meta.json                 settings, versions, CPU count, start/end, partial or not
    summary.json              per scenario and step: offered, achieved, p50/p95/p99, errors
    <scenario>/scenario.json  the load shape, as data
    <scenario>/requests-N.csv one row per request from Locust process N (.csv.gz in reference)
    <scenario>/worker-N.json  that process's t0 (the schedule's zero) and share
    <scenario>/sampler.csv    every 0.5 s: queue depths and oldest job's age, processed,
                              failed, busy workers, CPU
    <scenario>/jobs.csv       one row per job a worker ran: queued, started, finished, outcome
    <scenario>/calls.csv      one row per call the fake mail server and ERP received
    <scenario>/orders.csv     one row per order: when the answer, the email and the ERP came
    <scenario>/locust_*.csv   Locust's own CSVs (--csv-full-history), locust_stats.json
    <scenario>/logs/          every component's log
    *.png                     the graphs

Everything is numpy arrays, no pandas needed (a notebook can wrap them in a DataFrame)::

    from loadtests import results
    run = results.load_run(results.REFERENCE)      # or results.LATEST, or a path
    run["sync"].requests.latency_ms, run["deferred"].samples["queued"]
    run["deferred"].orders.erp_s, run["deferred"].jobs.wait_s   # None for runs before them
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from .shapes import Scenario

#: The repository's results: the committed reference run, and the latest local run.
RESULTS_DIR = Path(__file__).resolve().parent.parent / "results"
REFERENCE = RESULTS_DIR / "reference"
LATEST = RESULTS_DIR / "latest"

FLOAT_COLUMNS = ("offered", "intended", "sent", "done", "latency_ms", "response_ms", "server_ms")
INT_COLUMNS = ("worker", "seq", "step", "status", "ok")
TEXT_COLUMNS = ("error", "order_id")
#: jobs.csv, calls.csv and orders.csv: (float columns, int columns, text columns).
JOB_COLUMNS = (
    ("enqueued", "started", "finished", "wait_s", "run_s"),
    (),
    ("id", "job_class", "queue", "order_id", "outcome", "worker"),
)
CALL_COLUMNS = (
    ("received", "answered", "started", "in_service"),  # the last two: behind an ERP capacity
    (),
    ("service", "call", "order_id", "to", "result"),
)
ORDER_COLUMNS = (
    ("intended", "answered_s", "email_s", "erp_sale_s", "erp_stock_s", "erp_s"),
    ("seq", "step", "status", "ok"),
    ("order_id",),
)


def _open_text(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", newline="")
    return path.open(newline="")


def read_csv_rows(paths: list[Path]) -> Iterator[dict[str, str]]:
    for path in paths:
        with _open_text(path) as f:
            yield from csv.DictReader(f)


def _floats(rows: list[dict[str, str]], key: str) -> np.ndarray:
    return np.array([float(r[key]) if r.get(key) not in (None, "") else np.nan for r in rows])


@dataclass
class Requests:
    """Per-request columns (numpy arrays, sorted by intended start); also any other table's
    columns (jobs, calls, orders)."""

    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()), ()))

    def __getattr__(self, name: str) -> np.ndarray:
        try:
            return self.__dict__["columns"][name]
        except KeyError:
            raise AttributeError(name) from None

    def where(self, mask: np.ndarray) -> Requests:
        return Requests({k: v[mask] for k, v in self.columns.items()})


def load_requests(paths: list[Path]) -> Requests:
    rows = list(read_csv_rows(paths))
    cols: dict[str, np.ndarray] = {}
    for key in FLOAT_COLUMNS:
        cols[key] = _floats(rows, key)
    for key in INT_COLUMNS:
        cols[key] = np.array([int(r[key]) for r in rows], dtype=int)
    for key in TEXT_COLUMNS:
        cols[key] = np.array([r[key] for r in rows], dtype=object)
    order = np.argsort(cols["intended"], kind="stable")
    return Requests({k: v[order] for k, v in cols.items()})


def load_table(
    path: Path, columns: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]
) -> Requests | None:
    """A CSV of the runner's (jobs.csv, calls.csv, orders.csv) as columns, in file order;
    None when the run has no such file (runs recorded before it existed)."""
    if not path.exists():
        return None
    rows = list(read_csv_rows([path]))
    floats, ints, texts = columns
    cols: dict[str, np.ndarray] = {key: _floats(rows, key) for key in floats}
    for key in ints:
        cols[key] = np.array([int(r[key]) for r in rows], dtype=int)
    for key in texts:
        cols[key] = np.array([r[key] for r in rows], dtype=object)
    return Requests(cols)


def load_samples(path: Path) -> dict[str, np.ndarray]:
    """Sampler rows as columns; every column numeric except ``phase``."""
    if not path.exists():
        return {}
    rows = list(read_csv_rows([path]))
    if not rows:
        return {}
    out: dict[str, np.ndarray] = {}
    for key in rows[0]:
        if key == "phase":
            out[key] = np.array([r[key] for r in rows], dtype=object)
        else:
            out[key] = _floats(rows, key)
    return out


def percentile(values: np.ndarray, q: float) -> float:
    """The q-th percentile (numpy's linear interpolation); nan for no values."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    return float(np.percentile(values, q)) if len(values) else float("nan")


#: The fewest requests a percentile needs before we report it (p99: 100, so 1 beyond it).
TAIL_MIN = {99.0: 100, 90.0: 10}


def tail_of(values: np.ndarray) -> tuple[str, float]:
    """("p99", v) with at least 100 values, ("p90", v) with 10 to 99, else ("max", v)."""
    values = np.asarray(values, float)
    values = values[~np.isnan(values)]
    for q, needed in TAIL_MIN.items():
        if len(values) >= needed:
            return f"p{q:g}", percentile(values, q)
    return "max", float(np.max(values)) if len(values) else float("nan")


def per_bin(
    times: np.ndarray, values: np.ndarray, width: float = 1.0, qs: tuple[float, ...] = (50, 95, 99)
) -> dict[str, np.ndarray]:
    """Percentiles of ``values`` grouped by ``times`` into bins ``width`` seconds wide.

    Returns ``t`` (bin starts), ``n`` (count) and one ``pQ`` array per percentile; only
    bins with at least one value appear.
    """
    times = np.asarray(times, dtype=float)
    out: dict[str, list[float]] = {"t": [], "n": [], **{f"p{q:g}": [] for q in qs}}
    if len(times):
        bins = np.floor(times / width).astype(int)
        for b in np.unique(bins):
            chosen = values[bins == b]
            out["t"].append(b * width)
            out["n"].append(len(chosen))
            for q in qs:
                out[f"p{q:g}"].append(percentile(chosen, q))
    return {k: np.array(v, dtype=float) for k, v in out.items()}


def rate_per_bin(times: np.ndarray, start: float, end: float, width: float = 1.0) -> np.ndarray:
    """Events per second in each bin of [start, end)."""
    edges = np.arange(start, end + width / 2, width)
    counts, _ = np.histogram(np.asarray(times, dtype=float), bins=edges)
    return counts / width


@dataclass
class ScenarioResult:
    """One scenario of a run: its shape, its requests and samples, on a common time axis.

    ``t0`` is the schedule's zero (epoch seconds): ``rel(x)`` turns epoch times into
    seconds since the first intended start, the axis every graph uses.
    """

    name: str
    scenario: Scenario
    requests: Requests
    samples: dict[str, np.ndarray]
    t0: float
    directory: Path
    info: dict[str, Any] = field(default_factory=dict)
    jobs: Requests | None = None  #: jobs.csv (None: a run recorded before it existed)
    calls: Requests | None = None  #: calls.csv
    orders: Requests | None = None  #: orders.csv

    def rel(self, times: np.ndarray) -> np.ndarray:
        return np.asarray(times, dtype=float) - self.t0

    @property
    def load_end(self) -> float:
        """Seconds after t0 when the last step ends."""
        return self.scenario.duration


def scenario_t0(directory: Path, requests: Requests) -> float:
    """The schedule's zero: the earliest t0 any Locust process reported."""
    t0s = [json.loads(p.read_text())["t0"] for p in sorted(directory.glob("worker-*.json"))]
    if t0s:
        return float(min(t0s))
    return float(np.nanmin(requests.intended)) if len(requests) else 0.0


def request_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("requests-*.csv")) + sorted(directory.glob("requests-*.csv.gz"))


def load_scenario(directory: Path) -> ScenarioResult:
    directory = Path(directory)
    scenario = Scenario.load(directory / "scenario.json")
    requests = load_requests(request_files(directory))
    samples = load_samples(directory / "sampler.csv")
    if not samples and (directory / "sampler.csv.gz").exists():
        samples = load_samples(directory / "sampler.csv.gz")
    t0 = scenario_t0(directory, requests)
    info_path = directory / "info.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    return ScenarioResult(
        scenario.name,
        scenario,
        requests,
        samples,
        t0,
        directory,
        info,
        jobs=load_table(directory / "jobs.csv", JOB_COLUMNS),
        calls=load_table(directory / "calls.csv", CALL_COLUMNS),
        orders=load_table(directory / "orders.csv", ORDER_COLUMNS),
    )


@dataclass
class Run:
    """A whole run: its meta.json and its scenarios, in the order they ran."""

    directory: Path
    meta: dict[str, Any]
    scenarios: dict[str, ScenarioResult]

    @property
    def partial(self) -> bool:
        return bool(self.meta.get("partial"))

    def __getitem__(self, name: str) -> ScenarioResult:
        return self.scenarios[name]


def load_run(directory: Path | str = LATEST) -> Run:
    """Load ``results/<timestamp>`` (default: the latest run; ``REFERENCE``: the committed
    one), from any working directory."""
    directory = Path(directory).resolve()
    meta_path = directory / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    names = meta.get("scenarios_run") or sorted(
        p.parent.name for p in directory.glob("*/scenario.json")
    )
    scenarios = {}
    for name in names:
        if (directory / name / "scenario.json").exists():
            scenarios[name] = load_scenario(directory / name)
    return Run(directory, meta, scenarios)
