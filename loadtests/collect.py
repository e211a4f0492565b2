"""After a scenario: what the workers and the fake services saw, as CSVs beside the requests.

    jobs.csv    one row per job a worker ran (labqueue.events, recorded by the workers
                themselves): id, job_class, queue, order_id, enqueued (the payload's
                queue_time), started, finished, wait_s, run_s, outcome, worker
    calls.csv   one row per call the fake mail server and ERP received (their call logs):
                service, call, order_id, to, received, answered, result; behind an ERP
                capacity also started (its service began: the wait inside the ERP is
                started - received) and in_service (calls in service then, itself included)
    orders.csv  one row per order, sync or deferred, all in seconds after the checkout's
                intended start: answered_s (the shopper's answer), email_s (the mail server
                accepted the receipt), erp_sale_s, erp_stock_s, erp_s (the later of the two)

Times in jobs.csv and calls.csv are epoch seconds, as in requests-N.csv. An order is tied to
its request by the order id in the answer or, when no answer came (a timed-out sync
checkout still sends its email), by the shopper's address the calls carry.
"""

from __future__ import annotations

import csv
import math
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import requests

from labqueue.events import read_job_events

from .recorder import seq_of_email
from .results import load_requests, request_files

JOBS_COLUMNS = [
    "id",
    "job_class",
    "queue",
    "order_id",
    "enqueued",
    "started",
    "finished",
    "wait_s",
    "run_s",
    "outcome",
    "worker",
]
CALLS_COLUMNS = [
    "service",
    "call",
    "order_id",
    "to",
    "received",
    "answered",
    "result",
    "started",
    "in_service",
]
ORDERS_COLUMNS = [
    "seq",
    "step",
    "order_id",
    "intended",
    "status",
    "ok",
    "answered_s",
    "email_s",
    "erp_sale_s",
    "erp_stock_s",
    "erp_s",
]
#: What counts as the step done, per call: the first call with this result.
DONE = {"mail": "accepted", "sales": "recorded", "inventory": "applied"}
#: The directory the workers write their job events to, inside a scenario's directory.
EVENTS_DIR = "job-events"


def _write(path: Path, columns: list[str], rows: Iterable[dict[str, Any]]) -> int:
    count = 0
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v) for k, v in row.items()})
            count += 1
    return count


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6f}"
    return value


def _order_of(args: list[Any]) -> str:
    first = args[0] if args else None
    value = first.get("order_id") if isinstance(first, dict) else None
    return "" if value is None else str(value)


def write_jobs(directory: Path) -> int:
    """Merge the workers' event files into ``jobs.csv`` (oldest start first) and remove
    them; returns the rows written (0, and no file, when the workers recorded nothing)."""
    events_dir = directory / EVENTS_DIR
    if not events_dir.is_dir():
        return 0
    events = read_job_events(events_dir)
    rows = (
        {
            "id": e.id or "",
            "job_class": e.job_class or "",
            "queue": e.queue,
            "order_id": _order_of(e.args),
            "enqueued": e.enqueued,
            "started": e.started,
            "finished": e.finished,
            "wait_s": None if e.enqueued is None else e.started - e.enqueued,
            "run_s": e.finished - e.started,
            "outcome": e.outcome,
            "worker": e.worker,
        }
        for e in events
    )
    count = _write(directory / "jobs.csv", JOBS_COLUMNS, rows)
    shutil.rmtree(events_dir, ignore_errors=True)
    return count


def fetch_calls(base_url: str, page: int = 10_000, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Every call a fake service logged (``GET /calls``, page by page)."""
    calls: list[dict[str, Any]] = []
    since = 0
    while True:
        resp = requests.get(
            f"{base_url}/calls", params={"since": since, "limit": page}, timeout=timeout
        )
        resp.raise_for_status()
        data = resp.json()
        calls += data["calls"]
        if not data["calls"] or data["next"] >= data["total"]:
            return calls
        since = data["next"]


def write_calls(directory: Path, mail_url: str, erp_url: str) -> int:
    """``calls.csv``: the fake mail server's and the ERP's call logs, in answer order."""
    rows = [{**c, "service": "mail"} for c in fetch_calls(mail_url)]
    rows += [{**c, "service": "erp"} for c in fetch_calls(erp_url)]
    rows.sort(key=lambda c: c["answered"])
    return _write(directory / "calls.csv", CALLS_COLUMNS, rows)


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _first_done(calls: list[dict[str, str]]) -> tuple[dict[tuple[str, str], float], dict[int, str]]:
    """(when each (call, order id) was first done, which order id each request seq got)."""
    done: dict[tuple[str, str], float] = {}
    seq_order: dict[int, str] = {}
    for c in calls:
        seq = seq_of_email(c.get("to"))
        if seq is not None and c["order_id"]:
            seq_order.setdefault(seq, c["order_id"])
        if DONE.get(c["call"]) == c["result"] and c["order_id"]:
            key = (c["call"], c["order_id"])
            answered = float(c["answered"])
            done[key] = min(done.get(key, answered), answered)
    return done, seq_order


def write_orders(directory: Path) -> int:
    """``orders.csv`` from the requests and ``calls.csv``: when each order's answer, email
    and ERP calls happened, in seconds after its intended start (empty: never)."""
    calls_path = directory / "calls.csv"
    if not calls_path.exists():
        return 0
    req = load_requests(request_files(directory))
    done, seq_order = _first_done(_read(calls_path))
    rows = []
    for i in range(len(req)):
        seq, intended = int(req.seq[i]), float(req.intended[i])
        order = str(req.order_id[i]) or seq_order.get(seq, "")

        def after(call: str, order: str = order, intended: float = intended) -> float | None:
            at = done.get((call, order))
            return None if at is None else at - intended

        sale, stock = after("sales"), after("inventory")
        rows.append(
            {
                "seq": seq,
                "step": int(req.step[i]),
                "order_id": order,
                "intended": intended,
                "status": int(req.status[i]),
                "ok": int(req.ok[i]),
                "answered_s": float(req.done[i]) - intended,
                "email_s": after("mail"),
                "erp_sale_s": sale,
                "erp_stock_s": stock,
                "erp_s": None if sale is None or stock is None else max(sale, stock),
            }
        )
    return _write(directory / "orders.csv", ORDERS_COLUMNS, rows)


def collect_calls(target: Any, directory: Path) -> dict[str, Any]:
    """While the stack is up: the fakes' call logs into ``calls.csv`` (what info.json keeps)."""
    if not (target.mail_url and target.erp_url):
        return {"calls": None}  # someone else's store: its fakes are not ours to ask
    try:
        return {"calls": write_calls(directory, target.mail_url, target.erp_url)}
    except (requests.RequestException, OSError, ValueError, KeyError) as exc:
        return {"calls": None, "calls_error": f"{type(exc).__name__}: {exc}"}


def collect_after(directory: Path) -> dict[str, Any]:
    """Once the workers have stopped: ``jobs.csv`` and ``orders.csv``."""
    out: dict[str, Any] = {}
    try:
        out["jobs"] = write_jobs(directory)
        out["orders"] = write_orders(directory)
    except (OSError, ValueError, KeyError) as exc:  # a partial run: say so, keep the rest
        out["collect_error"] = f"{type(exc).__name__}: {exc}"
    return out
