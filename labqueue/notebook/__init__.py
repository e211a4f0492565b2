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
from collections.abc import Sequence
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


def find_run(start: str | None = None, needs: Sequence[str] = ("sync", "deferred")) -> Path:
    """The load-test run the notebooks plot: $LABQUEUE_RUN, else the nearest
    ``results/latest`` (your last `make loadtest`), else ``results/reference`` (committed),
    the first that ran every scenario in ``needs`` (a `--scenarios capacity` run, say, has
    no `sync`: the notebooks then read the reference)."""
    explicit = os.environ.get("LABQUEUE_RUN")
    if explicit:
        return Path(explicit).resolve()
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        for name in ("latest", "reference"):
            candidate = folder / "results" / name
            ran = all((candidate / scenario / "scenario.json").exists() for scenario in needs)
            if (candidate / "meta.json").exists() and ran:
                return candidate.resolve()
    raise FileNotFoundError(
        f"no load-test results with {', '.join(needs)} under results/latest or "
        "results/reference: run `make loadtest`"
    )
