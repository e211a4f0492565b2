"""What a worker records when a job ends: the status and failure FINISH writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..keys import status_id
from ..payload import Payload
from ..status import JobStatus, php_prefix, php_status, status_json
from .retry import RetryPlan


@dataclass
class Outcome:
    """What FINISH records for one job."""

    job_id: str | None
    status: str
    failure: str = ""
    retry: RetryPlan | None = None  #: run it again (instead of recording a failure)
    status_id: str | None = None  #: the status key's id when not job_id (php-resque prefix)


def outcome(
    payload: Payload, status: JobStatus, started: float, result: Any, failure: str = ""
) -> Outcome:
    """FINISH's record of a job: labqueue's status, or php-resque's for its payloads."""
    prefix = php_prefix(payload)
    if prefix is None or payload.id is None:
        return Outcome(payload.id, status_json(status, started), failure)
    php = php_status(status, result)
    return Outcome(payload.id, php, failure, None, status_id(payload.id, prefix))
