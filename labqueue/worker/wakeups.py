"""How an idle worker sleeps: on pub/sub, until a push to one of its queues.

labqueue's enqueue publishes the queue's name on a wake-up channel; keyevent notifications
of list pushes (on for the embedded server) carry the key of a list Resque or php-resque
pushed to. Only pushes to the worker's own queues wake it; without either it sleeps out its
poll interval. A busy worker reads its buffer now and then (:meth:`Wakeups.drain`), so
notifications never pile up in Redis.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import Any

import redis

from ..keys import Keys

#: A busy worker reads its pending wake-ups every this many jobs.
DRAIN_EVERY = 256


class Wakeups:
    """One worker's subscription: made on the first idle wait, dropped when Redis goes away."""

    def __init__(self, connection: redis.Redis, keys: Keys, queues: Sequence[str], db: int) -> None:
        self.connection = connection
        self.keys = keys
        self.queues = list(queues)
        self.db = db
        self._pubsub: Any = None

    def wait(self, timeout: float) -> None:
        """Sleep until a push to one of our queues, or ``timeout`` seconds.

        The first call only subscribes and returns: a push may have come before the
        subscription, so the worker looks at its queues once more before it sleeps.
        """
        try:
            if self._pubsub is None:
                self._pubsub = self._subscribe()
                return
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                message = self._pubsub.get_message(timeout=left)
                if message is not None and self.wakes_us(message):
                    break
            self.drain()
        except redis.RedisError:  # Redis away: the next step waits for it
            self.close()

    def wakes_us(self, message: dict[str, Any]) -> bool:
        """A wake-up (its data: the queue) or a push event (its data: the key) for our queues."""
        data = message.get("data")
        data = data.decode() if isinstance(data, bytes) else str(data)
        if data == "" or self.queues == ["*"]:
            return True  # stop(), or a worker on every queue
        return data.removeprefix(self.keys.queue_prefix) in self.queues

    def drain(self) -> None:
        """Read the notifications that arrived meanwhile (at most a bounded number)."""
        if self._pubsub is None:
            return
        try:
            for _ in range(DRAIN_EVERY * 8):
                if self._pubsub.get_message(timeout=0.0) is None:
                    return
        except redis.RedisError:
            self.close()

    def close(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                pubsub.close()

    def _subscribe(self) -> Any:
        pubsub = self.connection.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(self.keys.wakeup_channel, *self.keys.push_event_channels(self.db))
        return pubsub
