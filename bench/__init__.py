"""``make bench``: labqueue's speed against the Redis ceiling, huey and RQ, in one run.

``python -m bench.run --help`` for the options; results go to ``results/bench/``.
Modules: :mod:`bench.run` (the command), :mod:`bench.ceiling` (raw redis-py),
:mod:`bench.labq` (labqueue), :mod:`bench.peers` (huey and RQ), :mod:`bench.report`
(figures, targets, table, JSON), :mod:`bench.plot` (the PNG), :mod:`bench.jobs` (the jobs
every queue runs), :mod:`bench.common` (shared pieces).
"""
