"""Notebook 8's live part: crowd a fake ERP of capacity K with callers and read its log.

    from labqueue.demo.fakeerp import FakeERP
    with FakeERP(latency=0.25, capacity=2) as erp:
        few = crowd(erp.url, callers=2, seconds=3)      # K callers
        many = crowd(erp.url, callers=8, seconds=3)     # 4K callers
    Markdown(crowd_text(few, many, capacity=2))

Each caller posts sales one after another (a worker with a backlog in front of it) for
``seconds``; the figures come from the ERP's own call log (``GET /calls``), so they say
what happened inside the ERP: how many it served, how long each waited there.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests

#: Seconds at the start of a round left out of its figures: the callers' first calls.
WARMUP = 1.0
#: Order ids for the demo's sales: each call a new order, so none is a duplicate.
_orders = itertools.count(1)
_orders_lock = threading.Lock()


def _next_order() -> int:
    with _orders_lock:
        return next(_orders)


@dataclass(frozen=True)
class Crowd:
    """One round of callers against the ERP, from its log (seconds)."""

    callers: int
    calls: int
    served_per_s: float  #: calls served per second, once every caller has started
    wait_mean: float  #: a call's wait inside the ERP before its service began
    call_mean: float  #: a call as its caller saw it: the wait plus the service
    service_mean: float  #: a call's service alone (from its start to its answer)
    in_service_max: int  #: the most calls in service at once (the ERP's count)
    inside_mean: float  #: calls inside the ERP, sampled from its /stats every 50 ms, mean
    little: float  #: what Little's law predicts for it: served_per_s x the mean call


def _caller(url: str, until: float) -> None:
    with requests.Session() as session:
        while time.time() < until:
            body: dict[str, Any] = {
                "order_id": _next_order(),
                "items": [{"sku": "SKU-1", "qty": 1}],
            }
            session.post(f"{url}/sales", json=body, timeout=60)


def _watch_inside(url: str, until: float, seen: list[int]) -> None:
    """Every 50 ms of the steady part: the calls inside the ERP (in service + waiting),
    from its /stats."""
    time.sleep(min(WARMUP, (until - time.time()) / 2))
    with requests.Session() as session:
        while time.time() < until:
            gate = session.get(f"{url}/stats", timeout=10).json().get("capacity")
            if gate is not None:
                seen.append(gate["in_service"] + gate["waiting"])
            time.sleep(0.05)


def _log_since(url: str, index: int) -> list[dict[str, Any]]:
    data = requests.get(f"{url}/calls", params={"since": index}, timeout=10).json()
    calls: list[dict[str, Any]] = data["calls"]
    return calls


def _served(calls: list[dict[str, Any]], begin: float, end: float) -> float:
    """Calls served per second in [begin, end): each call counts the share of its service
    that fell inside (a whole count would jump by one call at the window's edges)."""
    done = 0.0
    for c in calls:
        start = c.get("started", c["received"])
        length = c["answered"] - start
        if length > 0:
            done += max(0.0, min(c["answered"], end) - max(start, begin)) / length
    return done / (end - begin)


def crowd(url: str, callers: int, seconds: float) -> Crowd:
    """``callers`` threads calling the ERP at ``url`` back to back for ``seconds``."""
    if callers < 1 or seconds <= 0:
        raise ValueError("callers must be >= 1 and seconds > 0")
    first = requests.get(f"{url}/calls", params={"limit": 1}, timeout=10).json()["total"]
    start = time.time()
    threads = [
        threading.Thread(target=_caller, args=(url, start + seconds), daemon=True)
        for _ in range(callers)
    ]
    inside: list[int] = []
    threads.append(threading.Thread(target=_watch_inside, args=(url, start + seconds, inside)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    calls = _log_since(url, first)
    # the steady part: from WARMUP s in (the line has formed) to the end of the round
    begin, end = start + min(WARMUP, seconds / 2), start + seconds
    steady = [c for c in calls if begin <= c["answered"] < end]
    waits = [c.get("started", c["received"]) - c["received"] for c in steady]
    services = [c["answered"] - c.get("started", c["received"]) for c in steady]
    lengths = [c["answered"] - c["received"] for c in steady]
    rate = _served(calls, begin, end)
    call_mean = sum(lengths) / len(steady) if steady else float("nan")
    return Crowd(
        callers=callers,
        calls=len(calls),
        served_per_s=rate,
        wait_mean=sum(waits) / len(steady) if steady else float("nan"),
        call_mean=call_mean,
        service_mean=sum(services) / len(steady) if steady else float("nan"),
        in_service_max=max(c.get("in_service", 0) for c in calls),
        inside_mean=sum(inside) / len(inside) if inside else float("nan"),
        little=rate * call_mean,
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def crowd_text(few: Crowd, many: Crowd, capacity: int) -> str:
    """The two rounds side by side, in their own numbers, each against the ERP's ceiling
    in that round: ``capacity`` calls at once ÷ the mean service it measured (Markdown)."""

    def line(r: Crowd) -> str:
        ceiling = capacity / r.service_mean
        return (
            f"**{r.callers} callers:** the ERP served {r.served_per_s:.1f} calls/s, "
            f"{r.served_per_s / ceiling:.0%} of its ceiling ({capacity} at once ÷ "
            f"{_ms(r.service_mean)} of service = {ceiling:.1f} calls/s); each call took "
            f"{_ms(r.call_mean)}, of which {_ms(r.wait_mean)} waiting inside the ERP.  \n"
        )

    return (
        line(few) + line(many) + f"{many.callers / few.callers:.0f} times the callers, "
        f"{many.served_per_s / few.served_per_s:.2f} times the throughput, never more than "
        f"{many.in_service_max} in service: the extra callers only made the line inside the "
        f"ERP longer (with {few.callers} callers a slot stands idle between a caller's answer "
        f"and its next call; more callers fill that gap, then only wait). Little's law, an "
        f"identity on any window rather than a model, gives the calls inside the ERP: "
        f"{many.served_per_s:.1f} calls/s x {_ms(many.call_mean)} = {many.little:.1f}; "
        f"sampling the ERP's own count every 50 ms gave {many.inside_mean:.1f} on average. "
        + closed_loop_text(many, capacity)
    )


def closed_loop_text(r: Crowd, capacity: int) -> str:
    """The model of a round whose callers outnumber the slots: every caller always inside,
    every slot always busy, so a call takes callers x service ÷ capacity (Markdown)."""
    model = r.callers * r.service_mean / capacity
    return (
        f"A model predicts the call itself: {r.callers} callers always inside an ERP whose "
        f"{capacity} slots never rest wait their turn behind the others, so each call takes "
        f"{r.callers} x {r.service_mean * 1000:.1f} ms ÷ {capacity} = {_ms(model)}; it took "
        f"{_ms(r.call_mean)}. Every caller past {capacity} adds {_ms(r.service_mean / capacity)} "
        f"to every call, and nothing to the calls served."
    )
