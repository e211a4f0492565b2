"""``make bench``: labqueue's speed against the Redis ceiling, huey, RQ and Dramatiq, in one run.

``python -m bench.run --help`` for the options; results go to ``results/bench/``.
Modules: :mod:`bench.run` (the command), :mod:`bench.ceiling` (raw redis-py),
:mod:`bench.labq` (labqueue), :mod:`bench.peers` (huey and RQ), :mod:`bench.report`
(figures, targets, table, JSON), :mod:`bench.plot` (the PNGs), :mod:`bench.jobs` (the jobs
every queue runs), :mod:`bench.common` (shared pieces), :mod:`bench.names` (keys and the
URL's variable). The I/O round: :mod:`bench.iobound` (its contenders and drains),
:mod:`bench.ioreport` (its figures, targets, table), :mod:`bench.rss` (peak RSS of process
trees), :mod:`bench.sleepjob` (its job) as :mod:`bench.labqueue_io`, :mod:`bench.huey_io`
and :mod:`bench.dramatiq_io` run it.
"""
