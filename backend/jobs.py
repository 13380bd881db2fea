"""Celery tasks: the worker's entry point (`celery -A backend.jobs worker --beat`, the Makefile's `worker`).

Each task runs its job through `InlineJobQueue` on this process's services, so a job's body lives in one place
(backend/jobqueue.py). Tasks take ids, are idempotent, and retry with exponential backoff and jitter (a delivery
retries when its row says: see deliver_notification). A job whose enqueue was lost is redone by the timers
(jobqueue.RECOVERED_BY).
"""

from __future__ import annotations

import asyncio
import logging

from backend.bootstrap import services
from backend.config import get_settings
from backend.jobqueue import (
    DELIVER_NOTIFICATION, GENERATE_INVOICE, MATCHING_INDEX_PRO, MATCHING_INDEX_REQUEST,
    MATCHING_REINDEX_TENANT, OPEN_REVIEWS, PAY_OUT_ORDER,
    PROCESS_WEBHOOK, RUN_TIMERS, TIMER_INTERVAL_SECONDS, InlineJobQueue, make_celery,
)
from backend.matching.ports import SearchUnavailable
from backend.notifications.ports import DeliveryError
from backend.notifications.service import BACKOFF_MAX, MAX_ATTEMPTS
from backend.payments.ports import PaymentUnavailable

log = logging.getLogger(__name__)
celery_app = make_celery(get_settings())


def _here() -> InlineJobQueue:
    """This worker's services; a failure raises, for Celery to retry."""
    return InlineJobQueue(services(), raise_errors=True)


@celery_app.task(name=DELIVER_NOTIFICATION, bind=True, max_retries=MAX_ATTEMPTS)
def deliver_notification(self, tenant_id: int, notification_id: int) -> str:
    """A transient failure is recorded on the row (attempts, next_attempt_at) and raised as DeliveryError with
    `retry_in`, the seconds until that next attempt: the retry is scheduled then, so the task follows the row's
    schedule (one earlier finds the row "later" and ends, leaving it to the sweeper). After MAX_ATTEMPTS the row is
    FAILED and deliver no longer raises, so the task's retries never outlast the row's."""
    try:
        return _here().deliver_notification(tenant_id, notification_id)
    except DeliveryError as exc:
        fallback = min(2.0 ** (self.request.retries + 1), BACKOFF_MAX.total_seconds())  # the row's own backoff
        raise self.retry(countdown=getattr(exc, "retry_in", None) or fallback, exc=exc,
                         max_retries=MAX_ATTEMPTS)


@celery_app.task(name=GENERATE_INVOICE, autoretry_for=(OSError,), retry_backoff=2, retry_jitter=True,
                 max_retries=8)
def generate_invoice(tenant_id: int, order_id: int) -> str:
    return _here().generate_invoice(tenant_id, order_id)


@celery_app.task(name=PROCESS_WEBHOOK, autoretry_for=(Exception,), retry_backoff=2, retry_jitter=True,
                 max_retries=8)
def process_webhook(event_row_id: int) -> str:
    return _here().process_webhook(event_row_id)


@celery_app.task(name=PAY_OUT_ORDER, autoretry_for=(PaymentUnavailable,), retry_backoff=2, retry_jitter=True,
                 max_retries=10)
def pay_out_order(tenant_id: int, order_id: int) -> int:
    return _here().pay_out_order(tenant_id, order_id)


@celery_app.task(name=OPEN_REVIEWS)  # no retries: the review timers open any window this job did not
def open_reviews(tenant_id: int, order_id: int) -> int:
    return _here().open_reviews(tenant_id, order_id)


# Index jobs rebuild a document from the database, so a retry or a late run is harmless; the engine being down
# (Elasticsearch unreachable, the embedded index locked by another writer) is worth waiting for.
@celery_app.task(name=MATCHING_INDEX_PRO, autoretry_for=(SearchUnavailable,), retry_backoff=2, retry_backoff_max=300,
                 retry_jitter=True, max_retries=10)
def index_pro(tenant_id: int, pro_id: int) -> str:
    return _here().index_pro(tenant_id, pro_id)


@celery_app.task(name=MATCHING_INDEX_REQUEST, autoretry_for=(SearchUnavailable,), retry_backoff=2,
                 retry_backoff_max=300, retry_jitter=True, max_retries=10)
def index_request(tenant_id: int, request_id: int) -> str:
    return _here().index_request(tenant_id, request_id)


@celery_app.task(name=MATCHING_REINDEX_TENANT, autoretry_for=(SearchUnavailable,), retry_backoff=2,
                 retry_backoff_max=300, retry_jitter=True, max_retries=10)
def reindex_tenant(tenant_id: int) -> dict:
    return _here().reindex_tenant(tenant_id)


@celery_app.task(name=RUN_TIMERS)
def run_timers() -> dict:
    return _here().run_timers()


async def run_timers_forever(interval: float = TIMER_INTERVAL_SECONDS) -> None:
    """The embedded default's stand-in for Celery beat: run the periodic work in the app process."""
    while True:
        try:
            totals = await asyncio.to_thread(services().run_timers)
            if any(totals.values()):
                log.info("timers: %s", totals)
        except Exception:  # keep the loop alive; the next tick retries
            log.exception("periodic timers failed")
        await asyncio.sleep(interval)
