"""One CSV row per request, written as it completes (so a stopped run keeps what it did).

Locust's own CSVs aggregate and its history smooths and lags; every graph is computed from
these rows instead. Times are epoch seconds; latency is from the *intended* start.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import IO

from .schedule import latency_ms


@dataclass
class RequestRow:
    scenario: str
    worker: int  #: Locust process index (0 when not distributed)
    seq: int  #: position in the schedule (closed loop: per-process counter)
    step: int  #: index of the step the request was intended in (-1: after the last)
    offered: float  #: open loop: the step's rate (req/s); closed loop: its user count
    intended: float  #: when it was meant to start (closed loop: when it was sent)
    sent: float  #: when it was sent
    done: float  #: when the answer (or the error) came
    latency_ms: float  #: done - intended: what the shopper waited
    response_ms: float  #: done - sent: what a closed-loop tool would report
    name: str
    status: int  #: HTTP status, 0 when there was no answer (timeout, refused)
    ok: int  #: 1 when the answer was a good 200, else 0
    error: str
    order_id: str
    server_ms: float  #: the store's own timings_ms.total (nan when absent)


COLUMNS = [f.name for f in fields(RequestRow)]

_SHOPPER = re.compile(r"shopper(\d+)@example\.com")


def shopper_email(seq: int) -> str:
    """The address of request ``seq``'s order: the fake mail server and the ERP see it, so
    an order is tied to its request even when the answer (with the order id) never came."""
    return f"shopper{seq}@example.com"


def seq_of_email(address: str | None) -> int | None:
    """The request ``seq`` an address of :func:`shopper_email` names, else None."""
    found = _SHOPPER.fullmatch(address or "")
    return int(found.group(1)) if found else None


def make_row(
    scenario: str,
    worker: int,
    seq: int,
    step: int,
    offered: float,
    intended: float,
    sent: float,
    done: float,
    name: str,
    status: int,
    error: str = "",
    order_id: str = "",
    server_ms: float = float("nan"),
) -> RequestRow:
    return RequestRow(
        scenario=scenario,
        worker=worker,
        seq=seq,
        step=step,
        offered=offered,
        intended=intended,
        sent=sent,
        done=done,
        latency_ms=latency_ms(intended, done),
        response_ms=latency_ms(sent, done),
        name=name,
        status=status,
        ok=int(not error),
        error=error,
        order_id=order_id,
        server_ms=server_ms,
    )


class RequestRecorder:
    """Appends rows to ``path`` (header first), flushing each one."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: IO[str] = path.open("w", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=COLUMNS)
        self._writer.writeheader()
        self._file.flush()
        self.count = 0

    def write(self, row: RequestRow) -> None:
        data = asdict(row)
        for key in ("intended", "sent", "done"):
            data[key] = f"{data[key]:.6f}"
        for key in ("latency_ms", "response_ms", "server_ms"):
            data[key] = f"{data[key]:.3f}"
        self._writer.writerow(data)
        self._file.flush()
        self.count += 1

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def write_worker_info(path: Path, **info: object) -> None:
    """A small JSON beside the rows: which process, its share, its t0."""
    path.write_text(json.dumps(info, indent=2) + "\n")
