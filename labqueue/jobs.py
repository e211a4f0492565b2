"""Job classes and the allow-list that maps a payload's ``class`` to one of them.

A job is a class with ``perform(self)``; its data are on the instance, as php-resque and
Resque jobs see them:

- ``self.args``: php-resque's ``$this->args``, the dict a php-resque (or labqueue keyword)
  producer sent, i.e. ``args[0]`` when that is a dict; ``{}`` otherwise.
- ``self.arg_list``: the whole ``args`` list, Ruby Resque's ``perform(*args)``
  (``["positional", 1, 2.5, true, null]`` arrives as that list).
- ``self.connection``: the worker's Redis client; ``self.queue``; ``self.job_id`` (None
  for Ruby producers, which send no id); ``self.payload`` (the full Payload).

Only registered classes run: a payload naming anything else fails with UnknownJobClass,
and nothing is ever imported because a payload said so. Register with the decorator::

    @labqueue.job("Job\\\\Work\\\\TestJob", "Job::Work::TestJob")   # PHP and Ruby names
    class TestJob(labqueue.Job):
        def perform(self) -> None:
            send_mail(self.args["to_address"])

Without names a class is registered under its dotted Python name (``module.Class``).

A concurrency limit: ``@labqueue.job("Shop::RecordSale", max_concurrency=2, limiter="erp")``
lets at most 2 jobs of the classes naming limiter ``erp`` run at once, across every worker,
thread and host (see :mod:`labqueue.worker.limits`); they must all say the same number.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar, overload

import redis

from .errors import ConfigurationError, NotAJob, PayloadError, UnknownJobClass
from .payload import Payload, check_class_name

#: resque-retry's ExponentialBackoff schedule, in seconds (a job class's default backoff).
DEFAULT_BACKOFF: tuple[float, ...] = (0, 60, 600, 3600, 10800, 21600)

#: What a job class's ``retry_jitter`` may be: how a retry's delay is drawn below its schedule
#: entry d: uniform in [0, d] ("full"), in [d/2, d] ("equal"), or exactly d (None); see
#: :mod:`labqueue.worker.retry`.
RETRY_JITTERS = ("full", "equal", None)


class Job:
    """Base class of every job."""

    #: seconds a run may take before it is stopped (None: the worker's default)
    timeout: float | None = None
    #: how many times a failed run is retried (resque-retry's retry_limit; 0: never)
    retry_limit: int = 0
    #: seconds before retry 1, 2, 3, ... (the last repeats): resque-retry's default schedule
    retry_backoff: tuple[float, ...] = DEFAULT_BACKOFF
    #: exceptions worth a retry; any other fails the job at once
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    #: how a retry's delay is drawn below its schedule entry: "full" (default), "equal", None
    retry_jitter: str | None = "full"
    #: deaths of the worker running it (os._exit, segfault, OOM kill) before the job goes to
    #: the failed store instead of running again (None: the worker's ``crash_limit``, 3)
    crash_limit: int | None = None
    #: at most this many jobs of this class (of its limiter) run at once, across every
    #: worker, thread and host (None: no limit); see :mod:`labqueue.worker.limits`
    max_concurrency: int | None = None
    #: the name of the slots it takes (None: its registered name; ignored without
    #: ``max_concurrency``); classes naming the same limiter share its slots and must declare
    #: the same ``max_concurrency``
    limiter: str | None = None

    def __init__(self, payload: Payload, queue: str, connection: redis.Redis | None = None) -> None:
        self.payload = payload
        #: the worker's Redis client, for jobs that need Redis themselves
        self.connection = connection
        self.queue = queue
        self.job_id = payload.id
        self.arg_list: list[Any] = payload.args
        first = payload.args[0] if payload.args else None
        self.args: dict[str, Any] = first if isinstance(first, dict) else {}

    def perform(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define perform(self)")


J = TypeVar("J", bound=type[Job])


class Registry:
    """Names -> job classes. The only way a payload's ``class`` becomes code."""

    def __init__(self) -> None:
        self._by_name: dict[str, type[Job]] = {}
        self._primary: dict[type[Job], str] = {}
        self._limiters: dict[str, tuple[int, type[Job], str]] = {}  # name -> K, first class

    def register(self, cls: J, *names: str) -> J:
        """Register ``cls`` under ``names`` (the first is what producers here write)."""
        if not (isinstance(cls, type) and issubclass(cls, Job)):
            raise NotAJob(f"{cls!r} is not a job: subclass labqueue.Job and define perform()")
        _check_settings(cls)
        names = names or (f"{cls.__module__}.{cls.__qualname__}",)
        for name in names:
            check_class_name(name)
        self._claim_limiter(cls, self._primary.get(cls, names[0]))
        for name in names:
            other = self._by_name.get(name)
            if other is not None and other is not cls and other.__qualname__ != cls.__qualname__:
                raise ConfigurationError(
                    f"job name {name!r} is taken by {other.__module__}.{other.__qualname__}"
                )
            self._by_name[name] = cls
        self._primary[cls] = names[0]
        return cls

    def resolve(self, name: str) -> type[Job]:
        """The class registered as ``name``; UnknownJobClass (nothing imported) otherwise."""
        try:
            return self._by_name[name]
        except (KeyError, TypeError):
            raise UnknownJobClass(
                f"job class {name!r} is not registered here: register it with @labqueue.job "
                f"and start the worker with --import MODULE"
            ) from None

    def name_of(self, job: type[Job] | str) -> str:
        """The name a payload carries for ``job`` (a registered class or any class name)."""
        if isinstance(job, str):
            return check_class_name(job)
        if not (isinstance(job, type) and issubclass(job, Job)):
            raise NotAJob(f"{job!r} is not a job: pass a labqueue.Job subclass or a class name")
        if job not in self._primary:
            self.register(job)
        return self._primary[job]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def limit_of(self, cls: type[Job]) -> tuple[str, int] | None:
        """(limiter name, K) of a limited class, read from its attributes now (checked again:
        ConfigurationError if changed to a bad value since registration); None: no limit."""
        k = getattr(cls, "max_concurrency", None)
        if k is None:
            return None
        _check_limit(cls)
        name = getattr(cls, "limiter", None) or self._primary.get(cls) or cls.__qualname__
        return name, k

    def limited(self) -> bool:
        """Whether any registered class has a concurrency limit (the worker's fast path)."""
        return any(getattr(c, "max_concurrency", None) is not None for c in self._primary)

    def _claim_limiter(self, cls: type[Job], primary: str) -> None:
        """ConfigurationError when ``cls`` names a limiter another class sized differently."""
        k = getattr(cls, "max_concurrency", None)
        if k is None:
            return
        name = getattr(cls, "limiter", None) or primary
        known, first, first_name = self._limiters.setdefault(name, (k, cls, primary))
        if known != k and first is not cls:
            raise ConfigurationError(
                f"limiter {name!r}: {primary} says max_concurrency={k}, "
                f"{first_name} says {known}; classes sharing a limiter must agree"
            )


def _check_settings(cls: type[Job]) -> None:
    """ConfigurationError, at registration, for a retry_jitter or crash_limit no worker can
    honour (a worker meeting one later would have no good moment to say so)."""
    jitter, limit = getattr(cls, "retry_jitter", "full"), getattr(cls, "crash_limit", None)
    if isinstance(jitter, bool) or jitter not in RETRY_JITTERS:
        raise ConfigurationError(
            f"{cls.__qualname__}.retry_jitter must be 'full', 'equal' or None, not {jitter!r}"
        )
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigurationError(
            f"{cls.__qualname__}.crash_limit must be a whole number >= 1 or None, not {limit!r}"
        )
    _check_limit(cls)


def _check_limit(cls: type[Job]) -> None:
    """ConfigurationError for a ``max_concurrency`` or ``limiter`` no worker can honour."""
    k, name = getattr(cls, "max_concurrency", None), getattr(cls, "limiter", None)
    if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
        raise ConfigurationError(
            f"{cls.__qualname__}.max_concurrency must be a whole number >= 1 or None, not {k!r}"
        )
    if name is not None and not (isinstance(name, str) and name.strip() and name.isprintable()):
        raise ConfigurationError(
            f"{cls.__qualname__}.limiter must be a non-empty printable name or None, not {name!r}"
        )


#: The registry workers use unless given another.
registry = Registry()

#: What names a job to enqueue: a registered Job subclass, or a class name as producers write it.
JobRef = type[Job] | str


def job_args(args: Sequence[Any], data: dict[str, Any]) -> list[Any]:
    """A payload's ``args``: keyword data become php-resque's ``[{...}]``, positional Ruby's."""
    if args and data:
        raise PayloadError(
            "pass either keyword data (php-resque style) or positional args (Ruby style), not both"
        )
    return [data] if data else list(args)


def build_payload(job: JobRef, args: Sequence[Any], data: dict[str, Any], reg: Registry) -> Payload:
    """A new payload for ``job`` (see :func:`job_args`), named as ``reg`` names it."""
    return Payload.new(reg.name_of(job), job_args(args, data))


@overload
def job(arg: J, /) -> J: ...
@overload
def job(
    arg: str | None = None,
    /,
    *more: str,
    max_concurrency: int | None = None,
    limiter: str | None = None,
) -> Callable[[J], J]: ...
def job(
    arg: Any = None, /, *more: str, max_concurrency: int | None = None, limiter: str | None = None
) -> Any:
    """Register a job class: ``@job``, ``@job("Name")`` or ``@job("Php\\\\Name", "Ruby::Name")``;
    ``max_concurrency=K`` (and ``limiter="name"``) set the class's concurrency limit."""
    if isinstance(arg, type):
        return registry.register(arg)
    names = tuple(n for n in (arg, *more) if n is not None)

    def decorate(cls: J) -> J:
        if max_concurrency is not None:
            cls.max_concurrency = max_concurrency
        if limiter is not None:
            cls.limiter = limiter
        return registry.register(cls, *names)

    return decorate
