"""labqueue: a small Redis job queue that speaks Resque's data layout.

One import is enough for the notebooks::

    import labqueue
    r = labqueue.connect()
    job_id = labqueue.JobScheduler(r).set_job_class("Job\\\\Work\\\\TestJob") \\
        .set_job_data({"to_name": "Samir"}).set_queue("default").schedule()
"""

import importlib.metadata as _metadata

from .connection import connect, connection_url
from .errors import (
    BadKey,
    ChildFailed,
    ConfigurationError,
    ConnectionFailed,
    JobCrashed,
    JobFailed,
    JobNotFound,
    JobRaised,
    JobTimeout,
    LabqueueError,
    NotAJob,
    NotReplicated,
    NotRequeuable,
    PayloadError,
    UnknownJobClass,
    UnreadableData,
    UnreadableKey,
)
from .failures import FailedStore, Failure
from .jobs import Job, Registry, job, registry
from .keys import Keys
from .payload import Payload
from .queue import JobScheduler, Queue, enqueue_together, queues
from .status import JobStatus, StatusRecord, get_status, get_statuses
from .worker import Worker

try:
    #: The installed version (package metadata); "0+unknown" when run from a bare checkout.
    __version__ = _metadata.version("labqueue")
except _metadata.PackageNotFoundError:  # pragma: no cover - not installed
    __version__ = "0+unknown"

__all__ = [
    "BadKey",
    "ChildFailed",
    "ConfigurationError",
    "ConnectionFailed",
    "FailedStore",
    "Failure",
    "Job",
    "JobCrashed",
    "JobFailed",
    "JobNotFound",
    "JobRaised",
    "JobScheduler",
    "JobStatus",
    "JobTimeout",
    "Keys",
    "LabqueueError",
    "NotAJob",
    "NotReplicated",
    "NotRequeuable",
    "Payload",
    "PayloadError",
    "Queue",
    "Registry",
    "StatusRecord",
    "UnknownJobClass",
    "UnreadableData",
    "UnreadableKey",
    "Worker",
    "connect",
    "connection_url",
    "enqueue_together",
    "get_status",
    "get_statuses",
    "job",
    "queues",
    "registry",
]
