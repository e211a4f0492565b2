"""What a latency figure can and cannot claim: coordinated omission, shown and measured,
and timeouts that were not rollbacks.

    from loadtests import omission, results
    run = results.load_run()
    omission.send_lag_p99_ms(run["sync"])     # how late the generator sent (ms, p99)
    omission.pause_figures(run)               # the pause demo: from intended vs from send
    omission.timed_out_but_placed(run["sync"])  # answered 200 by gunicorn, failed for Locust

A closed loop has no schedule, so "latency from the intended start" needs one: each user
meant to send every ``interval`` seconds (its think time plus its usual response before the
pause), and a request that took longer hid the ones the user would have sent meanwhile.
:func:`corrected` adds them back, as HdrHistogram's ``recordValueWithExpectedInterval``
does: a request that took L seconds also stands for L − I, L − 2I, ... while positive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from .results import Run, ScenarioResult, percentile

#: gunicorn's access log line for a checkout answered 200 (the store's format).
#: "Slow" in the pause demo: more than twice the sync checkout's usual time.
SLOW_S = 2.0
ACCESS_200 = re.compile(r'"POST /checkout/(?P<mode>sync|deferred) HTTP/[0-9.]+" 200 ')


def send_lag_p99_ms(res: ScenarioResult) -> float:
    """p99 of (sent − intended) over the scenario's requests: how late Locust sent (ms)."""
    req = res.requests
    return percentile((req.sent - req.intended) * 1000.0, 99)


def pause_window(res: ScenarioResult) -> tuple[float, float] | None:
    """(start, end) of the store's pause in seconds after t0, from info.json; None if none."""
    pause = res.info.get("pause") or {}
    start, end = pause.get("paused_epoch"), pause.get("resumed_epoch")
    if start is None or end is None:
        return None
    return float(start) - res.t0, float(end) - res.t0


def expected_interval(res: ScenarioResult, before: float) -> float:
    """A closed-loop user's cycle before the pause: think time + its median response (s)."""
    req = res.requests
    t = res.rel(req.sent)
    usual = req.response_ms[(t < before) & (req.ok == 1)] / 1000.0
    median = float(np.nanmedian(usual)) if len(usual) else 0.0
    return res.scenario.think_time + median


def corrected(
    sent: np.ndarray, latency_s: np.ndarray, interval: float, floor: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """(intended start, latency from it) of every request a closed loop meant to send: each
    recorded one, plus, for one that took longer than ``interval``, those its user would have
    sent every ``interval`` s while it waited (answered when it was: same completion time),
    as long as that one would have waited longer than ``floor`` (its usual response)."""
    when, lat = [np.asarray(sent, float)], [np.asarray(latency_s, float)]
    k = 1
    while interval > 0:
        extra = latency_s - k * interval
        keep = extra > floor
        if not keep.any():
            break
        when.append(sent[keep] + k * interval)
        lat.append(extra[keep])
        k += 1
    return np.concatenate(when), np.concatenate(lat)


@dataclass(frozen=True)
class PauseFigures:
    """One pause scenario: latency from the send and from the intended start, in seconds."""

    name: str
    loop: str
    pause_s: float  #: how long the store was stopped
    requests: int  #: requests recorded (sent)
    intended: int  #: requests meant (closed loop: with the ones the users never sent)
    send_tail: tuple[str, float]  #: the tail the sample supports (plot_latency.tail_of)
    send_max: float
    intended_tail: tuple[str, float]
    send_mean: float
    intended_mean: float
    slow_sent: int  #: requests slower than SLOW_S, from the send
    slow_intended: int  #: the same, counted from the intended start

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def pause_series(res: ScenarioResult) -> dict[str, np.ndarray]:
    """Per request, seconds after t0: ``sent``/``from_send`` (what was recorded) and
    ``intended``/``from_intended`` (open loop: the schedule; closed: :func:`corrected`)."""
    req = res.requests
    sent = res.rel(req.sent)
    from_send = req.response_ms / 1000.0
    if res.scenario.loop == "open":
        return {
            "sent": sent,
            "from_send": from_send,
            "intended": res.rel(req.intended),
            "from_intended": req.latency_ms / 1000.0,
        }
    window = pause_window(res)
    interval = expected_interval(res, window[0] if window else res.load_end)
    when, lat = corrected(sent, from_send, interval, interval - res.scenario.think_time)
    return {"sent": sent, "from_send": from_send, "intended": when, "from_intended": lat}


def pause_figures_of(res: ScenarioResult) -> PauseFigures:
    from .plot_latency import tail_of  # (plotting imports this module)

    s = pause_series(res)
    window = pause_window(res)
    a, b = s["from_send"], s["from_intended"]
    return PauseFigures(
        name=res.name,
        loop=res.scenario.loop,
        pause_s=(window[1] - window[0]) if window else float("nan"),
        requests=len(a),
        intended=len(b),
        send_tail=tail_of(a),
        send_max=float(np.nanmax(a)) if len(a) else float("nan"),
        intended_tail=tail_of(b),
        send_mean=float(np.nanmean(a)) if len(a) else float("nan"),
        intended_mean=float(np.nanmean(b)) if len(b) else float("nan"),
        slow_sent=int(np.sum(a > SLOW_S)),
        slow_intended=int(np.sum(b > SLOW_S)),
    )


def pause_figures(
    run: Run, names: tuple[str, ...] = ("pause", "pause-closed")
) -> list[PauseFigures]:
    """The pause demo's figures, for the scenarios of it this run has (none: empty)."""
    return [pause_figures_of(run.scenarios[n]) for n in names if n in run.scenarios]


@dataclass(frozen=True)
class Placed:
    """Checkouts the store completed (gunicorn logged 200) against those Locust saw succeed."""

    answered_200: int  #: POST /checkout/<mode> answered 200, per gunicorn's access log
    ok_in_time: int  #: good answers Locust received before its timeout
    timed_out: int  #: requests Locust gave up on (no answer)

    @property
    def placed_anyway(self) -> int:
        """Orders counted as failures by the client that the store fully placed."""
        return max(0, self.answered_200 - self.ok_in_time)


def timed_out_but_placed(res: ScenarioResult) -> Placed | None:
    """From the scenario's gunicorn access log and Locust's rows; None without the log."""
    log = res.directory / "logs" / "web-access.log"
    if not log.exists():
        return None
    mode = res.scenario.mode
    answered = sum(
        1
        for line in log.open(errors="replace")
        if (m := ACCESS_200.search(line)) and m["mode"] == mode
    )
    req = res.requests
    return Placed(answered, int(req.ok.sum()), int((req.status == 0).sum()))
