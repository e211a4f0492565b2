"""The monitor: a resque-web for labqueue (pages, JSON API, and a live view for notebooks).

    labqueue web                                   # http://127.0.0.1:5678/
    from labqueue.web import create_app            # the Flask app factory
    from labqueue.web import live; live.start(r)   # a refreshing chart in a notebook

Flask is imported only by ``create_app``, so ``labqueue.web.live`` works without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["create_app"]


def create_app(connection: Any = None, config: Any = None) -> Flask:
    """The monitor's Flask app (see :func:`labqueue.web.app.create_app`)."""
    from .app import create_app as factory

    return factory(connection, config)
