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
# # 3. The load test
#
# One checkout at a time, the deferred store answers faster (notebook 1). Under load the
# difference is of another kind. `make loadtest` starts the whole store (Redis, the fake
# mail server and ERP, the store under gunicorn with **4 web workers**, 4 labqueue
# workers) and lets [Locust](https://locust.io) offer it checkouts at a rising rate, in
# steps, first to the synchronous endpoint, then to the deferred one.
#
# Requests start on a schedule whatever the store does (an *open loop*, like real
# shoppers), and latency counts from the moment a request *should* have started, so a
# slow store cannot hide its queue (notebook 4 explains why that matters).
#
# This notebook draws the graphs of your last run (`results/latest`), or of the reference
# run committed with the project (`results/reference`), with the same plotting code as
# `make loadtest`.

# %%
# %matplotlib inline
from labqueue.notebook import find_run
from loadtests import plots, results, summary

run = results.load_run(find_run())
settings = run.meta["settings"]
print(f"run of {run.meta['started']}: {run.directory.name}, {run.meta['status']}")
print(f"{settings['web_workers']} web workers, {settings['queue_workers']} queue workers,", end=" ")
print(f"mail {settings['email_latency']} s, ERP {settings['erp_latency']} s per call")
print(summary.format_summary(summary.run_summary(run)))

# %% [markdown]
# ## 1. Latency over time

# %%
fig = plots.latency_over_time(run)

# %% [markdown]
# **What to see:** on the left, the synchronous checkout's latency (p50, p95 and p99 of
# each second) is flat while the offered load (dashed, right axis) is below what four web
# workers can serve, then climbs with every step and never comes down while the load
# lasts: requests pile up in front of the workers, until they hit the client's timeout
# (crosses). On the right, on the same scale, the deferred checkout stays on the floor.

# %% [markdown]
# ## 2. Throughput: what the store served vs what was asked

# %%
fig = plots.throughput(run)

# %% [markdown]
# **What to see:** the deferred checkout serves what arrives (black bars: Poisson arrivals
# vary around the offered rate), along the diagonal; the synchronous one flattens at its
# capacity (dotted), web workers ÷ checkout time, however many more shoppers arrive.

# %% [markdown]
# ## 3. The queues absorb the burst

# %%
fig = plots.queue_depth(run)

# %% [markdown]
# **What to see:** during the deferred run the jobs arrive faster than the 4 queue workers
# finish them, so the queues grow (top); when the load stops they drain. Below, *processed*
# catches up with *enqueued*: every job was done, just a little later. The shoppers never
# saw this queue: their answers had gone out in milliseconds.

# %% [markdown]
# ## 4. The headline: latency vs load

# %%
fig = plots.latency_vs_load(run)

# %% [markdown]
# **What to see:** the synchronous checkout's latency (red) shoots up once the offered load
# passes its capacity (the dotted line): the hockey stick. The deferred checkout's (blue)
# stays flat at every load.
#
# ## Run it yourself
#
# ```sh
# make loadtest            # the full run, about 6 minutes: results/<timestamp>/
# make loadtest QUICK=1    # the same shapes in about 90 seconds
# .venv/bin/python -m loadtests --help   # rates, step length, workers, latencies, ...
# ```
#
# Then run this notebook again: it picks up `results/latest`.
