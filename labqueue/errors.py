"""Every error labqueue raises, under one root.

    LabqueueError                 the root: catch this to catch them all
    ├── ConfigurationError        a bad URL, conflicting or empty arguments (also a ValueError)
    ├── ConnectionFailed          connect() cannot reach Redis, or start the embedded one
    ├── NotReplicated             a durable enqueue reached the primary, but not enough
    │                             replicas confirmed it in time (WAIT)
    ├── PayloadError              a payload cannot be built or read (not JSON, no class, ...)
    │   └── UnknownJobClass       a payload names a class that is not registered
    ├── NotAJob                   a Python class that is not a labqueue Job was given
    ├── JobNotFound               no job (status, failure) with that id (also a LookupError)
    ├── UnreadableData            a value in Redis is not what the layout says: not JSON,
    │   │                         nested too deep, no number (also a ValueError)
    │   └── UnreadableKey         a key of the layout holds another type
    ├── NotRequeuable             a failure record that is no record, or whose payload is no
    │                             job or names no queue
    ├── BadKey                    a key of the layout holds the wrong type (a script found it
    │                             before writing anything)
    ├── ChildFailed               a child process (a redis-server, a worker) died or never
    │                             became ready
    └── JobFailed                 how a job failed when the worker could not see it raise
        ├── JobTimeout            it ran over its time limit and was stopped
        ├── JobCrashed            its process died (--fork: segfault, os._exit, killed)
        └── JobRaised             it raised in a child process (--fork); carries the original

Each message is one line that says what went wrong and what to do about it; the CLI
prints it as it is and exits non-zero.

What passes through unwrapped: once connected, Redis's own errors reach the caller as
redis-py raises them (``redis.RedisError``: ``redis.ConnectionError`` and
``redis.TimeoutError`` when Redis goes away mid-way, ``redis.ResponseError`` for a reply
such as OOM or WRONGTYPE); a worker waits those out instead (:mod:`labqueue.worker.guard`),
and the CLI prints them in one line too. A job's own exception is recorded in the failed
store, not raised. Python's ``TypeError`` for a wrong call (a missing argument) is left as
it is.
"""

from __future__ import annotations


class LabqueueError(Exception):
    """The root of every labqueue error."""


class ConfigurationError(LabqueueError, ValueError):
    """A setting or argument is invalid or contradicts another one."""


class ConnectionFailed(LabqueueError):
    """Redis could not be reached at the given URL."""


class NotReplicated(LabqueueError):
    """A durable enqueue is on the primary, but fewer replicas than asked confirmed it
    within the timeout: the job is queued, and would be lost if the primary failed now."""

    def __init__(self, job_ids: list[str], confirmed: int, wanted: int, timeout: float) -> None:
        first = job_ids[0] if job_ids else "-"
        more = f" (and {len(job_ids) - 1} more)" if len(job_ids) > 1 else ""
        super().__init__(
            f"job {first}{more} is queued on the primary, but {confirmed} of {wanted} replicas "
            f"confirmed it within {timeout:g} s (WAIT): it would be lost if the primary failed "
            "now; check the replicas (INFO replication), or enqueue again"
        )
        self.job_ids = job_ids
        self.confirmed = confirmed
        self.wanted = wanted


class PayloadError(LabqueueError):
    """A job payload could not be built or read."""


class UnknownJobClass(PayloadError):
    """A payload names a job class that is not in the registry (nothing is imported)."""


class NotAJob(LabqueueError):
    """A class given as a job does not subclass labqueue.Job."""


class JobNotFound(LabqueueError, LookupError):
    """No job, status or failure record exists with the given id."""


class UnreadableData(LabqueueError, ValueError):
    """A value in Redis is not what the layout says (not JSON, nested too deep, no number)."""


class UnreadableKey(UnreadableData):
    """A key of the layout holds another type (or Redis refuses to read it)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        #: the key, as read (bytes that were not UTF-8 as lone surrogates)
        self.key = key


class NotRequeuable(LabqueueError):
    """A failure record that is no record, or whose payload is no job or names no queue."""


class BadKey(LabqueueError):
    """A key of the layout holds the wrong type, or a counter is not an integer INCR can add
    one to: a script's preflight found it and wrote nothing (see :mod:`labqueue.badkeys`)."""

    def __init__(self, key: bytes, found: str, expected: str) -> None:
        self.key = key  #: the key's name, its bytes as Redis has them
        self.found = found  #: what it holds: TYPE's answer ('string' for a bad counter)
        self.expected = expected  #: what belongs there: list, set, zset, hash or integer
        super().__init__(
            f"{self.shown} holds a {found} where the layout keeps a {expected}; nothing was "
            f"written (move the key aside or delete it)"
        )

    @property
    def shown(self) -> str:
        """The key's name as text, bytes that are not UTF-8 escaped."""
        return self.key.decode("utf-8", "backslashreplace")


class ChildFailed(LabqueueError):
    """A child process labqueue started died, or did not become ready in time."""


class JobFailed(LabqueueError):
    """A job failed in a way the worker observed from outside ``perform``."""


class JobTimeout(JobFailed):
    """A job ran over its time limit and was stopped."""


class JobCrashed(JobFailed):
    """The process running a job died before reporting (segfault, ``os._exit``, killed)."""

    def __init__(self, message: str, *, final: bool = False) -> None:
        super().__init__(message)
        #: True for the crash cap's verdict (a job that crashed its worker too often): such
        #: a job is not retried, whatever its class's retries
        self.final = final


class JobRaised(JobFailed):
    """A job raised in a child process (``--fork``); carries the original exception's parts."""

    def __init__(
        self, exception: str, error: str, backtrace: list[str], lineage: list[str] | None = None
    ) -> None:
        super().__init__(f"{exception}: {error}")
        #: the original exception's class name, message and traceback lines
        self.exception = exception
        self.error = error
        self.backtrace = backtrace
        #: names of its class and their bases (what ``retry_on`` is matched against)
        self.lineage = lineage or [exception]
