"""The store's three jobs, one per slow step of a deferred checkout.

Run them with ``labqueue worker --queues email,erp --import labqueue.demo.jobs``; the
worker reads the store's settings from the environment (see :mod:`.config`), as gunicorn's
workers do. Each payload carries only the order id (``{"order_id": 7}``): the job reads
the order from the database, so a job that waits in a queue never sends stale data.

Jobs run at least once, so each may run twice; both runs must leave one email and one
sale:

- ``SendReceiptEmail`` looks at the order's ``send_email`` step first and does nothing
  if it is already ``done`` (a crash between sending and recording can still send twice:
  at least once, not exactly once).
- ``RecordSaleInERP`` and ``DecreaseInventoryInERP`` always call the ERP, which keys the
  call on the order id and ignores a second one.

A failing step raises StepFailed: the job lands in the failed store, the order's step shows
``failed`` with the cause, and ``labqueue failed requeue`` runs it again.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, ClassVar

import labqueue

from .checkout import JOB_NAMES, Store
from .config import StoreConfig
from .errors import StoreError

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


@labqueue.job(JOB_NAMES["erp_record_sale"])
class RecordSaleInERP(StoreJob):
    """Step 6: record the sale in the ERP (keyed on the order id)."""

    step = "erp_record_sale"


@labqueue.job(JOB_NAMES["erp_decrease_inventory"])
class DecreaseInventoryInERP(StoreJob):
    """Step 7: decrease the ERP's stock (keyed on the order id)."""

    step = "erp_decrease_inventory"
