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

import os
from pathlib import Path
from typing import Any

from .lab import Lab
from .rediscli import RedisCli, format_reply, pretty_json

__all__ = ["Lab", "RedisCli", "Shop", "find_run", "format_reply", "pretty_json", "show_json"]


def show_json(raw: str | bytes | None) -> None:
    """Print a JSON value stored in Redis, indented."""
    print(pretty_json(raw))


def __getattr__(name: str) -> Any:
    if name == "Shop":
        from .shop import Shop

        return Shop
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def find_run(start: str | None = None) -> Path:
    """The load-test run the notebooks plot: $LABQUEUE_RUN, else the nearest
    ``results/latest`` (your last `make loadtest`), else ``results/reference`` (committed)."""
    explicit = os.environ.get("LABQUEUE_RUN")
    if explicit:
        return Path(explicit).resolve()
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        for name in ("latest", "reference"):
            candidate = folder / "results" / name
            if (candidate / "meta.json").exists():
                return candidate.resolve()
    raise FileNotFoundError(
        "no load-test results under results/latest or results/reference: run `make loadtest`"
    )
