"""The store's three jobs, one per slow step of a deferred checkout.

Run them with ``labqueue worker --queues email,erp --import labqueue.demo.jobs``; the
worker reads the store's settings from the environment (see :mod:`.config`), as gunicorn's
workers do. Each payload carries only the order id (``{"order_id": 7}``): the job reads
the order from the database, so a job that waits in a queue never sends stale data.

Jobs run at least once, so each may run twice (a worker killed mid-job, a retry, a relay
sending again after a crash). What that means for each, precisely:

- ``SendReceiptEmail`` is at least once, not exactly once. It looks at the order's
  ``send_email`` step first and does nothing if it is already ``done``, so a second run
  *after* the first one recorded its success sends nothing. But sending (SMTP) and recording
  (SQLite) are two systems: a run killed after the mail server accepted the message and
  before the step was recorded, or two runs at the same moment, send the receipt twice. The
  shopper may get two receipts; never none. (The message carries a stable ``Message-ID``,
  ``<order-N.receipt@toystore.test>``, which lets a mail client show the two as one.)
- ``RecordSaleInERP`` and ``DecreaseInventoryInERP`` always call the ERP, which keys each
  call on the order id and ignores a second one: effectively once, because the receiving
  side deduplicates (a failed ERP call changes nothing there).

A failing step raises StepFailed and the order's step shows ``failed`` with the cause. The
ERP jobs are retried (:attr:`ERPJob.retry_limit` times, backoff with full jitter, on
StepFailed only), so an ERP outage of a few minutes drains by itself once the ERP is back;
a job whose retries are spent, and a failed email, land in the failed store, and
``labqueue failed requeue`` runs them again.

The two ERP jobs can be held to the ERP's capacity: with ``STORE_ERP_LIMIT=K`` in the
environment when this module is imported (``python -m labqueue.demo up --erp-limit K`` sets
it for every worker it starts), both declare ``max_concurrency=K, limiter="erp"``, so across
every worker, process, thread and host at most K of them run at once, and the rest wait in
Redis, not inside the ERP. :func:`limit_erp` changes it in this process.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, ClassVar

import labqueue

from .checkout import JOB_NAMES, Store
from .config import ERP_LIMITER, StoreConfig, check_erp_limit, erp_limit_from_env
from .errors import StepFailed, StoreError

log = logging.getLogger("labqueue.demo.jobs")

_store: Store | None = None
_lock = threading.Lock()


def configure(config: StoreConfig | None, redis_client: Any = None) -> None:
    """Use this config (and Redis client) in this process; None: read the environment again."""
    global _store
    with _lock:
        if _store is not None:
            _store.close()
        _store = Store(config, redis_client) if config is not None else None


def store() -> Store:
    """This process's Store, built from the environment on first use."""
    global _store
    with _lock:
        if _store is None:
            _store = Store(StoreConfig.from_env())
        return _store


class StoreJob(labqueue.Job):
    """Runs one slow step of one order; args: ``{"order_id": int}``."""

    step: ClassVar[str] = ""
    timeout = 60.0

    @property
    def order_id(self) -> int:
        value = self.args.get("order_id")
        if isinstance(value, bool) or not isinstance(value, int):
            raise StoreError(f"{type(self).__name__} needs args {{'order_id': int}}, got {value!r}")
        return value

    def perform(self) -> None:
        outcome = store().run_step(self.order_id, self.step)
        log.info("order %s: %s %s", self.order_id, self.step, outcome)


@labqueue.job(JOB_NAMES["send_email"])
class SendReceiptEmail(StoreJob):
    """Step 5: mail the receipt (skipped if this order's receipt went out already)."""

    step = "send_email"


class ERPJob(StoreJob):
    """A step that calls the ERP: retried while the ERP fails (it ignores a second call for
    an order, so a retry after a call that did land is harmless)."""

    #: about 3 minutes of retries in all at most (full jitter: half that on average), enough
    #: for a restart or a short outage of the ERP; longer ones wait in the failed store
    retry_limit = 10
    retry_backoff = (2.0, 4.0, 8.0, 16.0, 30.0)
    retry_on = (StepFailed,)  # the ERP failed or was away; not a missing order or bad args
    #: at most this many ERP jobs at once, everywhere ($STORE_ERP_LIMIT; None: no limit)
    max_concurrency = erp_limit_from_env()
    #: the limiter both ERP classes share: their K slots are the ERP's, not K per class
    limiter = ERP_LIMITER if max_concurrency else None


@labqueue.job(JOB_NAMES["erp_record_sale"])
class RecordSaleInERP(ERPJob):
    """Step 6: record the sale in the ERP (keyed on the order id)."""

    step = "erp_record_sale"


@labqueue.job(JOB_NAMES["erp_decrease_inventory"])
class DecreaseInventoryInERP(ERPJob):
    """Step 7: decrease the ERP's stock (keyed on the order id)."""

    step = "erp_decrease_inventory"


def limit_erp(limit: int | None) -> None:
    """At most ``limit`` ERP jobs at once across every worker (None: no limit), in this
    process: what ``STORE_ERP_LIMIT`` does at import."""
    if limit is not None:
        check_erp_limit(limit)
    for cls in (RecordSaleInERP, DecreaseInventoryInERP):
        cls.max_concurrency = limit
        cls.limiter = ERP_LIMITER if limit else None


# Once more after ``@labqueue.job`` has run, whatever the decorator set: the class bodies
# gave the registry the limit, this keeps it on both classes.
limit_erp(ERPJob.max_concurrency)
