"""After a scenario: the workers' job events into jobs.csv, the fakes' call logs into
calls.csv, both joined to the requests in orders.csv; and sizing the workers from them."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from labqueue.demo.fakeerp import FakeERP
from labqueue.demo.fakemail import FakeMail
from labqueue.events import JobEvent
from loadtests import collect, results, sizing
from loadtests.recorder import RequestRecorder, make_row, seq_of_email, shopper_email

T0 = 1_700_000_000.0


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def event(job_id: str, queue: str, order: int, enqueued: float | None, start: float) -> JobEvent:
    args = [{"order_id": order}]
    return JobEvent(job_id, "Job", queue, args, enqueued, start, start + 0.25, "done", "h:1:q")


def test_job_events_of_every_worker_become_one_jobs_csv(tmp_path: Path) -> None:
    events = tmp_path / collect.EVENTS_DIR
    events.mkdir()
    (events / "jobs-h-1.jsonl").write_text(
        event("b", "erp", 7, T0, T0 + 2).to_json()
        + "\n"
        + event("c", "erp", 7, None, T0 + 3).to_json()
        + "\n"
    )
    (events / "jobs-h-2.jsonl").write_text(event("a", "email", 7, T0, T0 + 1).to_json() + "\n")
    assert collect.write_jobs(tmp_path) == 3
    assert not events.exists()  # merged, then removed
    got = rows(tmp_path / "jobs.csv")
    assert [r["id"] for r in got] == ["a", "b", "c"]  # the order they started
    assert got[1]["order_id"] == "7" and float(got[1]["wait_s"]) == pytest.approx(2.0)
    assert got[2]["enqueued"] == "" and got[2]["wait_s"] == ""  # a Ruby job: no queue_time
    table = results.load_table(tmp_path / "jobs.csv", results.JOB_COLUMNS)
    assert table is not None and list(table.run_s) == pytest.approx([0.25] * 3)
    assert collect.write_jobs(tmp_path / "nothing") == 0


def write_requests(directory: Path) -> None:
    """Four requests: two answered with their order ids, one timed out, one never
    reached the store."""
    rec = RequestRecorder(directory / "requests-0.csv")
    rec.write(make_row("s", 0, 0, 0, 2.0, T0, T0, T0 + 0.9, "checkout/sync", 200, "", "11"))
    rec.write(make_row("s", 0, 1, 0, 2.0, T0 + 1, T0 + 1, T0 + 2, "checkout/sync", 200, "", "12"))
    rec.write(make_row("s", 0, 2, 1, 4.0, T0 + 2, T0 + 2, T0 + 32, "checkout/sync", 0, "no answer"))
    rec.write(make_row("s", 0, 3, 1, 4.0, T0 + 3, T0 + 3, T0 + 33, "checkout/sync", 0, "no answer"))
    rec.close()


def call(call: str, order: int, at: float, result: str, to: str | None = None) -> dict:
    return {"service": "x", "call": call, "order_id": order, "to": to, "received": at - 0.2,
            "answered": at, "result": result}  # fmt: skip


def test_orders_join_the_answers_and_the_calls(tmp_path: Path) -> None:
    write_requests(tmp_path)
    calls = [
        call("mail", 11, T0 + 0.3, "accepted", shopper_email(0)),
        call("sales", 11, T0 + 0.6, "recorded", shopper_email(0)),
        call("inventory", 11, T0 + 0.85, "applied"),
        call("mail", 12, T0 + 1.2, "refused", shopper_email(1)),  # refused, then accepted
        call("mail", 12, T0 + 1.5, "accepted", shopper_email(1)),
        call("sales", 12, T0 + 1.7, "failed", shopper_email(1)),  # no sale recorded
        call("mail", 13, T0 + 40, "accepted", shopper_email(2)),  # the shopper gave up at 32 s
        call("sales", 13, T0 + 41, "recorded", shopper_email(2)),
        call("inventory", 13, T0 + 42, "applied"),
        call("inventory", 13, T0 + 43, "duplicate"),
    ]
    with (tmp_path / "calls.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=collect.CALLS_COLUMNS)
        writer.writeheader()
        writer.writerows(calls)
    assert collect.write_orders(tmp_path) == 4
    orders = results.load_table(tmp_path / "orders.csv", results.ORDER_COLUMNS)
    assert orders is not None
    assert list(orders.order_id) == ["11", "12", "13", ""]  # 13: found by the address
    assert list(orders.answered_s) == pytest.approx([0.9, 1.0, 30.0, 30.0])
    assert orders.email_s[:3] == pytest.approx([0.3, 0.5, 38.0])
    assert orders.erp_sale_s[0] == pytest.approx(0.6) and orders.erp_s[0] == pytest.approx(0.85)
    assert orders.erp_s[2] == pytest.approx(40.0)  # the first applied call, not the duplicate
    nan = [i for i in range(4) if orders.erp_s[i] != orders.erp_s[i]]
    assert nan == [1, 3]  # no sale for 12, nothing at all for the fourth
    assert list(orders.ok) == [1, 1, 0, 0] and list(orders.step) == [0, 0, 1, 1]
    assert collect.write_orders(tmp_path / "elsewhere") == 0  # no calls.csv: no orders.csv


def test_the_fakes_call_logs_are_fetched_page_by_page(tmp_path: Path) -> None:
    with FakeERP(latency=0.0) as erp, FakeMail(latency=0.0) as mail:
        for i in range(1, 6):
            erp.call_log.add("sales", i, T0 + i, "recorded", shopper_email(i))
        mail.mailbox.calls.add("mail", 1, T0, "accepted", shopper_email(1))
        assert [c["order_id"] for c in collect.fetch_calls(erp.url, page=2)] == [1, 2, 3, 4, 5]
        assert collect.write_calls(tmp_path, mail.url, erp.url) == 6
    got = rows(tmp_path / "calls.csv")
    assert [(r["service"], r["call"]) for r in got] == [("erp", "sales")] * 5 + [("mail", "mail")]
    assert [float(r["answered"]) for r in got] == sorted(float(r["answered"]) for r in got)
    assert got[0]["to"] == shopper_email(1) and got[0]["result"] == "recorded"


def test_shopper_addresses_name_their_request() -> None:
    assert seq_of_email(shopper_email(42)) == 42
    assert seq_of_email("someone@example.com") is None and seq_of_email(None) is None


# -- sizing by Little's law ------------------------------------------------------------------
def test_littles_law_sizes_each_queue() -> None:
    s = sizing.size(6.0, {"email": 0.35, "erp": 0.5}, 0.7, "test")
    assert s.busy() == pytest.approx({"email": 2.1, "erp": 3.0})
    assert s.workers() == {"email": 3, "erp": 5}  # 3.0 and 4.29, rounded up
    assert s.total() == 8
    assert s.explain()[1] == "erp: 6 orders/s × 0.500 s per order ÷ 0.7 = 4.29 → 5 workers"
    assert sizing.size(0.1, {"email": 0.3}).workers() == {"email": 1}  # one at least
    with pytest.raises(ValueError, match="utilisation"):
        sizing.size(6.0, {"email": 0.3}, 1.5)


def test_work_per_order_is_measured_on_the_jobs(tmp_path: Path) -> None:
    events = tmp_path / collect.EVENTS_DIR
    events.mkdir()
    lines = []
    for order in range(30):
        lines.append(event(f"m{order}", "email", order, T0, T0 + order).to_json())
        lines.append(event(f"s{order}", "erp", order, T0, T0 + order).to_json())
        lines.append(event(f"i{order}", "erp", order, T0, T0 + order).to_json())
    (events / "jobs-h-1.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "backlog").mkdir()
    events.rename(tmp_path / "backlog" / collect.EVENTS_DIR)
    collect.write_jobs(tmp_path / "backlog")
    jobs = results.load_table(tmp_path / "backlog" / "jobs.csv", results.JOB_COLUMNS)
    work, orders = sizing.work_per_order(jobs)
    assert orders == 30 and work == pytest.approx({"email": 0.25, "erp": 0.5})
    measured = sizing.for_scenario(tmp_path, ["backlog", "sized"], 6.0, 0.7, (0.3, 0.25))
    assert measured.source == "measured in backlog (30 orders)"
    assert measured.workers() == {"email": 3, "erp": 5}
    nominal = sizing.for_scenario(tmp_path, ["sized"], 6.0, 0.7, (0.3, 0.25))
    assert nominal.source.startswith("nominal") and nominal.work == pytest.approx(
        {"email": 0.35, "erp": 0.6}
    )
    assert sizing.work_per_order(None) == ({}, 0)


def test_the_sampler_reads_each_queues_oldest_waiting_job(tmp_path: Path) -> None:
    import json
    import time

    import fakeredis

    from labqueue.keys import Keys
    from loadtests.sampler import Sampler

    r = fakeredis.FakeRedis(decode_responses=True)
    payload = {"class": "X", "args": [], "id": "a", "queue_time": time.time() - 12}
    r.rpush(Keys().queue("erp"), json.dumps(payload), json.dumps(payload))
    r.sadd(Keys().queues, "erp")
    sampler = Sampler(tmp_path / "sampler.csv", r, ["email", "erp"])
    assert sampler.oldest() is None  # nothing sampled yet
    sample = sampler.take()
    assert sample["queue_erp"] == 2 and sample["queue_email"] == 0
    assert 12 <= sample["age_erp"] < 13 and sample["age_email"] == 0.0
    assert sampler.columns[-2:] == ["age_email", "age_erp"]
    sampler.latest = sample
    assert 12 <= sampler.oldest() < 13  # type: ignore[operator]


def test_the_sampler_counts_parked_jobs_as_waiting_in_redis(tmp_path: Path) -> None:
    import json
    import time

    import fakeredis

    from labqueue.keys import Keys
    from loadtests.sampler import Sampler

    k = Keys()
    r = fakeredis.FakeRedis(decode_responses=True)
    job = {"class": "X", "args": [], "id": "a", "queue_time": time.time() - 12}
    r.rpush(k.queue("erp"), json.dumps({**job, "queue_time": time.time() - 1}))
    r.sadd(k.queues, "erp", "email")
    r.hset(k.limits, "erp", 2)
    for _ in range(3):  # as the limiter parks them: {queue, payload}, out of the queue
        r.rpush(k.limit_parked("erp"), json.dumps({"queue": "erp", "payload": json.dumps(job)}))
    sampler = Sampler(tmp_path / "sampler.csv", r, ["email", "erp"], limiters=["erp", "none"])
    assert sampler.columns[-4:] == ["parked_erp", "parked_none", "parked_age_erp",
                                    "parked_age_none"]  # fmt: skip
    sample = sampler.take()
    assert sample["queued"] == 1 and sample["parked"] == 3 and sample["queue_erp"] == 1
    assert sample["enqueued"] == 4  # processed 0 + failed 0 + queued 1 + parked 3 + running 0
    assert sample["parked_erp"] == 3 and 12 <= sample["parked_age_erp"] < 13
    assert sample["parked_none"] == 0 and sample["parked_age_none"] == 0.0
    assert 12 <= sample["age_erp"] < 13  # the oldest job waiting for erp is a parked one
    sampler.latest = sample
    assert 12 <= sampler.oldest() < 13  # type: ignore[operator]
    r.delete(k.queue("erp"))
    sampler.latest = sampler.take()
    assert not sampler.idle()  # the queues are empty, but 3 jobs are parked
    r.delete(k.limit_parked("erp"))
    sampler.latest = sampler.take()
    assert sampler.idle()
    sampler.start()
    wait = time.monotonic() + 5
    while sampler.count < 1 and time.monotonic() < wait:
        time.sleep(0.05)
    sampler.stop()
    with (tmp_path / "sampler.csv").open() as f:
        header = next(csv.reader(f))
    assert header[:4] == ["t", "phase", "queued", "parked"] and "parked_age_erp" in header
