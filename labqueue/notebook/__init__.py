"""Helpers that keep the boilerplate out of the notebooks' cells.

    from labqueue.notebook import Lab, Shop, show_json
    lab = Lab()                 # a private redis-server for this notebook, stopped at the end
    shop = Shop.open(lab)       # the toy store's real code, its fake mail server and ERP
    lab.cli.dump()              # what Redis holds, as redis-cli shows it
    lab.close()

Not part of labqueue's core: it uses :mod:`labqueue.demo` and matplotlib, which the core
never imports. ``Shop`` and the charts are imported on first use.
"""

from __future__ import annotations

from typing import Any

from .lab import Lab
from .rediscli import RedisCli, format_reply, pretty_json

__all__ = ["Lab", "RedisCli", "Shop", "format_reply", "pretty_json", "show_json"]


def show_json(raw: str | bytes | None) -> None:
    """Print a JSON value stored in Redis, indented."""
    print(pretty_json(raw))


def __getattr__(name: str) -> Any:
    if name == "Shop":
        from .shop import Shop

        return Shop
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
