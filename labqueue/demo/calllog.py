"""Every call a fake service received, served as ``GET /calls``: what the load test's runner
collects to tell when each order's email and ERP calls really happened, and how long each
ERP call waited inside an ERP with a capacity."""

from __future__ import annotations

import threading
import time
from typing import Any

from .capacity import Visit
from .netfake import JsonService, Request, int_or_none, positive_or_none

#: The most calls a fake remembers (the oldest are forgotten first): ~20 MB at most.
MAX_CALLS = 200_000


class CallLog:
    """Every call a fake received, in the order they were answered: what (``call``), for
    which order, from whom (``to``: the shopper's address, when the call carries one), when
    it arrived (``received``), when it was answered (``answered``, epoch s) and how
    (``result``); behind a capacity, also when its service started and how many calls were
    in service then (``started``, ``in_service``). Served as ``GET /calls?since=N&limit=M``:
    the load test's runner collects them to tell when each order's email and ERP calls
    really happened, and how long each ERP call waited inside the ERP."""

    def __init__(self, limit: int = MAX_CALLS) -> None:
        self._lock = threading.Lock()
        self._calls: list[dict[str, Any]] = []
        self._forgotten = 0  #: calls dropped from the front, past ``limit``
        self.limit = limit

    def add(
        self,
        call: str,
        order_id: int | None,
        received: float,
        result: str,
        to: str | None = None,
        visit: Visit | None = None,
    ) -> None:
        """Log a call answered now; ``visit`` (a fake with a capacity): when its service
        started (``started``; the wait is ``started - received``) and how many calls were in
        service then (``in_service``, itself included)."""
        record: dict[str, Any] = {
            "call": call,
            "order_id": order_id,
            "to": to,
            "received": round(received, 6),
            "answered": round(time.time(), 6),
            "result": result,
        }
        if visit is not None:
            record["started"] = round(visit.started, 6)
            record["in_service"] = visit.in_service
        with self._lock:
            self._calls.append(record)
            if len(self._calls) > self.limit:
                drop = len(self._calls) - self.limit
                del self._calls[:drop]
                self._forgotten += drop

    def since(self, index: int, limit: int) -> dict[str, Any]:
        """Calls ``index`` onwards (counted from the first ever), at most ``limit``."""
        with self._lock:
            start = max(0, index - self._forgotten)
            chosen = self._calls[start : start + limit]
            total = self._forgotten + len(self._calls)
        first = self._forgotten + start
        return {"total": total, "first": first, "next": first + len(chosen), "calls": chosen}

    def clear(self) -> None:
        with self._lock:
            self._forgotten += len(self._calls)
            self._calls.clear()

    def route(self, api: JsonService) -> None:
        api.route("GET", "/calls", self._list)

    def _list(self, req: Request) -> tuple[int, Any]:
        since = int_or_none(req.query.get("since"), "since") or 0
        limit = positive_or_none(req.query.get("limit"), "limit") or 10_000
        return 200, self.since(max(0, since), limit)
