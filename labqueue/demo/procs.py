"""What the store's stack adds to :mod:`labqueue.procs`: its error, its log directory, and
the ready files its fake services write once they listen.

The children themselves (started in their own session, with their own log file, stopped
politely and then for sure) are :class:`labqueue.procs.Child`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .errors import StoreError


class StackError(StoreError):
    """A piece of the stack did not start, or died."""


def read_ready_file(path: Path) -> dict[str, Any] | None:
    """The JSON a child wrote once it listens (None until then)."""
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def write_ready_file(path: str, data: dict[str, Any]) -> None:
    """Atomically: the parent never reads half a file."""
    tmp = f"{path}.tmp"
    Path(tmp).write_text(json.dumps(data))
    os.replace(tmp, path)


class LogDir:
    """The given directory, or a temporary one that is removed again."""

    def __init__(self, path: str | os.PathLike[str] | None, prefix: str) -> None:
        self.owned = path is None
        self.path = Path(tempfile.mkdtemp(prefix=prefix) if path is None else path).resolve()
        self.path.mkdir(parents=True, exist_ok=True)

    def cleanup(self) -> None:
        if self.owned:
            shutil.rmtree(self.path, ignore_errors=True)
