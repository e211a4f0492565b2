"""Keys of the layout holding the wrong type: what the services do with them.

Every script checks the keys it will write before its first write (the preflight, see
:mod:`labqueue.lua`); a key holding another type than the layout gives it (a queue that is a
hash, ``stat:failed`` a list or ``"abc"``, ``resque:failed`` a string...) fails the call
with :class:`~labqueue.errors.BadKey` and nothing written. Then:

- A producer (enqueue, enqueue_at) raises it: one clear error, nothing half written.
- A service (a worker, the delayed mover, ``labqueue scheduler``) moves the key aside,
  renamed to ``<ns>:labqueue:aside:<epoch>:<key>`` with its content intact for a human to
  look at (labqueue never deletes it), logs one warning naming both names (once per key
  and type), and runs the call again: the whole call, since nothing was written. A
  ``*`` worker meeting a bad queue thus serves every other queue on the same step, and the
  queue itself works again for the next enqueue.
- The job whose outcome met the bad key (a counter, the failed store, its queue...) is
  neither lost nor run twice: it stays in the worker's in-progress hash until its outcome is
  recorded, in full, on the step run again (a killed worker's job is released as ever). A
  key that comes back bad as fast as it is moved (:data:`ATTEMPTS` times in one call) makes
  :func:`heal` give up and raise BadKey; the worker then keeps the job, logs once and tries
  again every poll interval, never in a hot loop.
- Keys a script meets as it goes (a ``delayed:<second>`` that is not a list, a delayed job's
  queue of another type) are left alone by the script, named in its reply, and moved aside
  here; the other delayed jobs move on the same call.

Keys only read by other parts (the monitor, the CLI) are their readers' business.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import redis

from .errors import BadKey
from .keys import Keys
from .scripts import SET_ASIDE

log = logging.getLogger("labqueue.badkeys")

#: How many bad keys one call may meet (each moved aside, the call run again) before
#: :func:`heal` gives up: more than any script writes, so only a key that comes back bad
#: as fast as it is moved exhausts it.
ATTEMPTS = 16

#: The same problem (key, what it held) is warned about again only after this many seconds
#: (a key someone keeps writing garbage to); meanwhile at debug level.
REPEAT_AFTER = 3600.0

T = TypeVar("T")

_said: dict[tuple[bytes, str], float] = {}  # problem -> when last warned (monotonic)


def say_once(bad: BadKey, line: str) -> None:
    """One warning per distinct problem (key and what it held); the same again at debug."""
    problem, now = (bad.key, bad.found), time.monotonic()
    if now - _said.get(problem, -REPEAT_AFTER) < REPEAT_AFTER:
        log.debug("%s", line)
        return
    if len(_said) >= 1024:
        _said.clear()
    _said[problem] = now
    log.warning("%s", line)


def set_aside(connection: redis.Redis, keys: Keys, bad: BadKey, who: str) -> bytes | None:
    """Rename ``bad.key`` aside if it still holds what it held; its new name, or None."""
    target = keys.aside(bad.key, f"{time.time():.3f}")
    if not SET_ASIDE.call(connection, (bad.key, target), (bad.found, bad.expected)):
        return None  # moved by another worker, or fixed, meanwhile
    moved = target.decode("utf-8", "backslashreplace")
    say_once(
        bad,
        f"{who}: {bad.shown} held a {bad.found} where the layout keeps a "
        f"{bad.expected}: moved it aside to {moved} (nothing deleted)",
    )
    return target


def heal(bad: BadKey, again: Callable[[], T], connection: redis.Redis, keys: Keys, who: str) -> T:
    """After ``bad`` failed a call: set it aside and run ``again`` (the same call), as many
    times as it meets bad keys, up to :data:`ATTEMPTS`; then BadKey is raised."""
    for _ in range(ATTEMPTS):
        set_aside(connection, keys, bad, who)
        try:
            return again()
        except BadKey as next_bad:
            bad = next_bad
    raise bad
