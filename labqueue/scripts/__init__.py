"""Every Lua script labqueue runs (each a :class:`~labqueue.lua.Script`: see :mod:`labqueue.lua`
for the one way to run one, and the preflight every writing script starts with).

Each state change that touches more than one key is one script, so it happens all or
nothing, in one round trip. A script is a named constant with a comment saying what it
guarantees and what its KEYS and ARGV are, in the module of the side that runs it:
:mod:`~labqueue.scripts.enqueue` (producers), :mod:`~labqueue.scripts.delayed` (the
schedule), :mod:`~labqueue.scripts.worker` (a worker's step, release, retry, quarantine,
setting a bad key aside), :mod:`~labqueue.scripts.fleet` (registration among Resque and
php-resque workers), :mod:`~labqueue.scripts.limits` (the concurrency limit per job
class). Import them from here: ``from labqueue.scripts import STEP``.

JSON records (statuses, failure records) are built in Python and passed in as arguments;
a script only ever pastes a payload, which it alone has, into them.

Each script that writes checks first: its text starts with the preflight helpers
(:data:`~labqueue.lua.PREFLIGHT`) and its commented preflight block, which fails the call
with nothing written when a key it would write (or read) holds the wrong type. Scripts that
meet keys as they go (a queue named in the queues set, a ``delayed:<second>`` list and its
notes, an item's ``timestamps:`` set) check each before touching it.

A wake-up (PUBLISH) is a hint, sent last and with ``redis.pcall``: a server, proxy or ACL
that refuses the channel leaves the script's writes standing and its reply as it was
(idle workers then find the job by polling, see :mod:`labqueue.worker.wakeups`).
"""

from __future__ import annotations

from ..lua import Script as Script
from ..lua import encoded as encoded  # callers encode their fixed arguments once
from .delayed import MOVE_DUE, SCHEDULE, UNSCHEDULE
from .enqueue import ENQUEUE, ENQUEUE_NEW
from .fleet import BEAT, CLAIM, DROP_FOREIGN
from .limits import ACQUIRE, PARKED_HEADS, SWEEP, VACATE
from .worker import QUARANTINE, RELEASE, RETRY, SET_ASIDE, STEP

#: Every script, for tests and for loading them all ahead of time.
ALL = (
    ENQUEUE,
    ENQUEUE_NEW,
    SCHEDULE,
    MOVE_DUE,
    STEP,
    RELEASE,
    RETRY,
    QUARANTINE,
    CLAIM,
    BEAT,
    DROP_FOREIGN,
    UNSCHEDULE,
    SET_ASIDE,
    ACQUIRE,
    VACATE,
    SWEEP,
)

#: Read-only scripts readers queue in a pipeline beside other reads (as EVAL, see
#: :meth:`~labqueue.lua.Script.queue`): no worker runs them, nothing loads them ahead.
READERS = (PARKED_HEADS,)

__all__ = [
    "ACQUIRE",
    "ALL",
    "BEAT",
    "CLAIM",
    "DROP_FOREIGN",
    "ENQUEUE",
    "ENQUEUE_NEW",
    "MOVE_DUE",
    "PARKED_HEADS",
    "QUARANTINE",
    "READERS",
    "RELEASE",
    "RETRY",
    "SCHEDULE",
    "SET_ASIDE",
    "STEP",
    "SWEEP",
    "UNSCHEDULE",
    "VACATE",
    "Script",
    "encoded",
]
