"""Tools that simulate more than one machine on this one, for the tests and notebook 7.

- :mod:`.faultproxy`: :class:`FaultProxy`, a TCP proxy on loopback that passes, cuts,
  delays or blackholes a connection for N seconds (a network that drops).
- :mod:`.hosts`: :class:`SimHost`, a "host" of its own (hostname and pid namespace, sharing
  this machine's loopback) to start workers in, and to kill all at once.
- :mod:`.sentinel`: :class:`SentinelStack`, a primary, a replica and three sentinels on
  free loopback ports, from the redis-server labqueue finds.
- :mod:`.failover`: load, a failover under it, and what was lost, measured.

Not part of labqueue's core: nothing in the core imports it. Everything here binds and
targets loopback addresses only.
"""

from __future__ import annotations

from .faultproxy import FaultProxy
from .hosts import SimHost, hosts_unavailable

__all__ = ["FaultProxy", "SimHost", "hosts_unavailable"]
