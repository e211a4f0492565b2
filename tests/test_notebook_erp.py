"""Notebook 8's helpers: crowding a fake ERP of capacity K, live, and the sentences it says
about the two rounds (the capacity runs' own sentences: test_loadtest_erpcap.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from labqueue.demo.fakeerp import FakeERP
from labqueue.notebook.erpdemo import Crowd, crowd, crowd_text


def test_callers_past_the_capacity_only_lengthen_the_line_inside_the_erp() -> None:
    with FakeERP(latency=0.1, jitter=0.0, capacity=1) as erp:
        few = crowd(erp.url, callers=1, seconds=1.6)
        many = crowd(erp.url, callers=4, seconds=1.6)
    assert few.callers == 1 and many.callers == 4
    assert few.in_service_max == many.in_service_max == 1
    assert few.wait_mean < 0.02 and many.wait_mean > 0.2  # three ahead of each, 0.1 s each
    assert many.served_per_s < 1.3 * few.served_per_s  # 4x the callers, not 4x the calls
    assert 8 <= many.served_per_s <= 11  # the ceiling: 1 ÷ 0.1 s
    assert many.service_mean == pytest.approx(0.1, abs=0.02)
    assert many.inside_mean == pytest.approx(4.0, abs=0.6)  # every caller is inside
    assert many.little == pytest.approx(many.served_per_s * many.call_mean)
    # the closed loop's model: 4 callers, 1 slot always busy, each call 4 x 0.1 s ÷ 1
    assert many.call_mean == pytest.approx(4 * many.service_mean, rel=0.15)
    with pytest.raises(ValueError):
        crowd("http://127.0.0.1:9", callers=0, seconds=1)


def test_the_sentence_carries_the_rounds_numbers() -> None:
    few = Crowd(2, 30, 7.0, 0.0, 0.28, 0.25, 2, 1.96, 1.96)
    many = Crowd(8, 30, 8.0, 0.7, 0.95, 0.25, 2, 8.0, 7.6)
    text = crowd_text(few, many, capacity=2)
    assert "**2 callers:** the ERP served 7.0 calls/s, 88% of its ceiling (2 at once" in text
    assert "**8 callers:** the ERP served 8.0 calls/s, 100% of its ceiling" in text
    assert "÷ 250 ms of service = 8.0 calls/s); each call took 950 ms, of which 700 ms" in text
    assert "4 times the callers, 1.14 times the throughput, never more than 2 in service" in text
    assert "8.0 calls/s x 950 ms = 7.6; sampling the ERP's own count every 50 ms gave 8.0" in text
    assert "Little's law, an identity on any window rather than a model," in text
    assert "each call takes 8 x 250.0 ms ÷ 2 = 1000 ms; it took 950 ms" in text
    shown = crowd_text(few, replace(many, service_mean=0.2502), capacity=2)  # the product of
    assert "8 x 250.2 ms ÷ 2 = 1001 ms" in shown  # what it shows, not of a rounded factor
    assert "Every caller past 2 adds 125 ms to every call, and nothing to the calls" in text
