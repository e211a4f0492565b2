"""Every error labqueue raises, under one root.

    LabqueueError                 the root: catch this to catch them all
    ├── ConfigurationError        a bad URL, conflicting or empty arguments
    ├── ConnectionFailed          Redis is not reachable at the URL given
    ├── PayloadError              a payload cannot be built or read (not JSON, no class, ...)
    │   └── UnknownJobClass       a payload names a class that is not registered
    ├── NotAJob                   a Python class that is not a labqueue Job was given
    └── JobNotFound               no job (status, failure) with that id

Each message is one line that says what went wrong and what to do about it; the CLI
prints it as it is and exits non-zero.
"""

from __future__ import annotations


class LabqueueError(Exception):
    """The root of every labqueue error."""


class ConfigurationError(LabqueueError):
    """A setting or argument is invalid or contradicts another one."""


class ConnectionFailed(LabqueueError):
    """Redis could not be reached at the given URL."""


class PayloadError(LabqueueError):
    """A job payload could not be built or read."""


class UnknownJobClass(PayloadError):
    """A payload names a job class that is not in the registry (nothing is imported)."""


class NotAJob(LabqueueError):
    """A class given as a job does not subclass labqueue.Job."""


class JobNotFound(LabqueueError):
    """No job, status or failure record exists with the given id."""
