"""How an idle worker sleeps: on pub/sub, until a push to one of its queues.

labqueue's enqueue publishes the queue's name on a wake-up channel; keyevent notifications
of list pushes (on for the embedded server) carry the key of a list Resque or php-resque
pushed to. Only pushes to the worker's own queues wake it; without either it sleeps out its
poll interval. A busy worker reads its buffer now and then (:meth:`Wakeups.drain`), so
notifications never pile up in Redis.

Where SUBSCRIBE is refused (an ACL user without those channels, a proxy without pub/sub),
the worker polls: it sleeps its poll interval between looks at its queues, logs one warning
saying so, and asks again after :data:`RESUBSCRIBE_AFTER` seconds. Refused keyevent channels
alone (an ACL allowing ``resque:*`` channels only) leave the wake-up channel: labqueue's
enqueues still wake the worker at once, other producers' pushes are seen by polling. A wait
never returns early on an error: an idle worker looks at its queues at most once per poll
interval, whatever pub/sub does (a Redis outage is the next step's to notice and report).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import redis

from ..keys import Keys
from .guard import unavailable

log = logging.getLogger("labqueue.worker")

#: A busy worker reads its pending wake-ups every this many jobs.
DRAIN_EVERY = 256

#: After SUBSCRIBE was refused, a worker polls this many seconds before it asks again.
RESUBSCRIBE_AFTER = 60.0

#: Subscriptions lost this many times in a row (connections dropped, not refused): the
#: server or a proxy in between does not keep pub/sub; treated as refused.
DROPS_BEFORE_POLLING = 3


class Wakeups:
    """One worker's subscription: made on the first idle wait, dropped when Redis goes away."""

    def __init__(
        self,
        connection: redis.Redis,
        keys: Keys,
        queues: Sequence[str],
        db: int,
        stop: threading.Event | None = None,
    ) -> None:
        self.connection = connection
        self.keys = keys
        self.queues = list(queues)
        self.db = db
        self.who = "worker"  #: for log lines (the worker sets its id)
        self._stop = stop or threading.Event()
        self._pubsub: Any = None
        self._channels = [keys.wakeup_channel, *keys.push_event_channels(db)]
        self._retry_at = 0.0  # monotonic time before which no SUBSCRIBE is tried
        self._drops = 0  # subscriptions lost in a row
        self._untold = ""  # why keyevents were refused, said once the wake-ups work
        self._said: set[str] = set()
        self._poll = 0.0

    def wait(self, timeout: float) -> None:
        """Sleep until a push to one of our queues, or ``timeout`` seconds.

        The first call only subscribes and returns: a push may have come before the
        subscription, so the worker looks at its queues once more before it sleeps.
        Without a subscription (refused, lost) it sleeps ``timeout``, until stopped.
        """
        deadline = time.monotonic() + timeout
        self._poll = timeout
        try:
            if self._pubsub is not None:
                self._listen(deadline)
                return
            if time.monotonic() >= self._retry_at:
                self._pubsub = self._subscribe()
                return
        except redis.RedisError as exc:
            if self._failed(exc):
                return  # keyevents refused: the wake-up channel alone, on the next wait
        except UnicodeDecodeError:  # a push to a key whose name is not UTF-8: look anyway
            self.close()
            return
        self._stop.wait(max(0.0, deadline - time.monotonic()))

    def _listen(self, deadline: float) -> None:
        while (left := deadline - time.monotonic()) > 0:
            message = self._pubsub.get_message(timeout=left)
            if message is not None and self.wakes_us(message):
                break
        self.drain()
        self._drops = 0
        if self._untold:  # the wake-up channel works without the keyevents: say it now
            self._say(self._untold)
            self._untold = ""

    def wakes_us(self, message: dict[str, Any]) -> bool:
        """A wake-up (its data: the queue) or a push event (its data: the key) for our queues."""
        data = message.get("data")
        data = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
        if data == "" or self.queues == ["*"]:
            return True  # stop(), or a worker on every queue
        return data.removeprefix(self.keys.queue_prefix) in self.queues

    def found(self) -> None:
        """The worker found a job on waking: one worker has no one to pass the news on to
        (a process of threads wakes another idle thread, see :mod:`.threads`)."""

    def drain(self) -> None:
        """Read the notifications that arrived meanwhile (at most a bounded number)."""
        if self._pubsub is None:
            return
        try:
            for _ in range(DRAIN_EVERY * 8):
                if self._pubsub.get_message(timeout=0.0) is None:
                    return
        except redis.RedisError as exc:
            self._failed(exc)
        except UnicodeDecodeError:
            self.close()

    def close(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                pubsub.close()

    def _subscribe(self) -> Any:
        pubsub = self.connection.pubsub(ignore_subscribe_messages=True)
        try:
            pubsub.subscribe(*self._channels)
        except BaseException:
            with contextlib.suppress(Exception):
                pubsub.close()
            raise
        return pubsub

    def _failed(self, exc: redis.RedisError) -> bool:
        """The subscription is gone: refused (poll, and say so once) or lost (ask again).
        True when only the keyevents were refused (the wake-up channel is worth a try now)."""
        self.close()
        refused = isinstance(exc, redis.ResponseError) and not unavailable(exc)
        if not refused:
            self._drops += 1
            if self._drops < DROPS_BEFORE_POLLING:
                return False  # dropped: subscribe again on the next idle wait
        reason = f"{type(exc).__name__}: {exc}"
        if len(self._channels) > 1 and refused:  # keyevents refused? try the wake-ups alone
            self._channels = self._channels[:1]
            self._untold = (
                f"{self.who}: may not subscribe to keyevent notifications ({reason}); "
                f"labqueue's enqueues still wake it, pushes by other producers are seen by "
                f"polling every {self._poll:g} s"
            )
            return True
        self._untold = ""
        self._retry_at = time.monotonic() + RESUBSCRIBE_AFTER
        self._say(
            f"{self.who}: cannot subscribe to wake-ups ({reason}); polling every "
            f"{self._poll:g} s (asking again every {RESUBSCRIBE_AFTER:g} s)"
        )
        return False

    def _say(self, line: str) -> None:
        """One warning per distinct problem; the same one again only at debug level."""
        if line in self._said:
            log.debug("%s", line)
            return
        if len(self._said) < 64:
            self._said.add(line)
        log.warning("%s", line)
