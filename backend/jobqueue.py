"""The job queue the services schedule on, below the wiring: Celery (REDIS_URL set) or inline in this process.

Two adapters of one port (`bootstrap.Jobs`), both addressed by job name and ids only:
- `CeleryJobQueue` sends each job by its task name after the caller committed; a worker runs it
  (`celery -A backend.jobs worker --beat`, task bodies in `backend/jobs.py`, which imports the wiring).
- `InlineJobQueue` runs it at once in this process, against the services it is bound to. It is also what a
  Celery task does in the worker, so a job's body is written once: here.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Celery

from backend.config import Settings

log = logging.getLogger(__name__)

DELIVER_NOTIFICATION = "notifications.deliver"
GENERATE_INVOICE = "orders.generate_invoice"
RUN_TIMERS = "orders.run_timers"
PROCESS_WEBHOOK = "payments.process_webhook"
PAY_OUT_ORDER = "payments.pay_out_order"
OPEN_REVIEWS = "reviews.open_for_order"
MATCHING_INDEX_PRO = "matching.index_pro"
MATCHING_INDEX_REQUEST = "matching.index_request"
MATCHING_REINDEX_TENANT = "matching.reindex_tenant"
SEARCH_QUEUE = "search"  # index writes: with the embedded engine (tantivy, one writer) one worker, -Q search -c 1
TIMER_INTERVAL_SECONDS = 300.0
# After an enqueue failed (Redis down), no job is even tried for this long: each try costs the caller's request about
# 0.6 s of kombu's reconnect attempts, and a fan-out enqueues thousands. Nothing is lost meanwhile: what recovers each
# kind of job is RECOVERED_BY.
ENQUEUE_PAUSE_SECONDS = 30.0
# What redoes a job whose enqueue was lost (every job is idempotent, so doing it again, or twice, is harmless).
RECOVERED_BY = {
    DELIVER_NOTIFICATION: "the row waits PENDING and the timers' sweep sends it (NotificationService.due)",
    GENERATE_INVOICE: "the timers enqueue it again (OrderService.redo_lost_follow_ups)",
    PAY_OUT_ORDER: "the timers enqueue it again (OrderService.redo_lost_follow_ups)",
    OPEN_REVIEWS: "the review timers open the window (ReviewService.run_timers)",
    PROCESS_WEBHOOK: "the event row waits 'received' and the timers enqueue it again (PaymentService.lost_webhooks)",
    MATCHING_INDEX_PRO: "the document stays stale until a reindex (check-index, the app's start-up check)",
    MATCHING_INDEX_REQUEST: "the document stays stale until a reindex (check-index, the app's start-up check)",
    MATCHING_REINDEX_TENANT: "the index stays as it was until a reindex (check-index, the app's start-up check)",
}


def make_celery(settings: Settings) -> Celery:
    app = Celery("marketplace")
    if settings.redis_url:
        app.conf.update(broker_url=settings.redis_url, result_backend=settings.redis_url)
    else:  # nothing is sent without a broker (the inline queue runs jobs); this keeps the app importable
        app.conf.update(broker_url="memory://", result_backend="cache+memory://")
    app.conf.update(task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
                    broker_connection_retry_on_startup=True, task_serializer="json", accept_content=["json"],
                    result_expires=3600, timezone="UTC",
                    # `celery -A backend.jobs beat` drives the timers (48 h expiry, 7-day completion, review windows)
                    beat_schedule={"order-timers": {"task": RUN_TIMERS, "schedule": TIMER_INTERVAL_SECONDS}},
                    # index writes go to their own queue: the embedded engine allows one writer at a time, so
                    # `celery -A backend.jobs worker -Q search -c 1` is its single writer (Elasticsearch: any number)
                    task_routes={MATCHING_INDEX_PRO: {"queue": SEARCH_QUEUE},
                                 MATCHING_INDEX_REQUEST: {"queue": SEARCH_QUEUE},
                                 MATCHING_REINDEX_TENANT: {"queue": SEARCH_QUEUE}})
    return app


class CeleryJobQueue:
    """Jobs sent by task name to the workers (the caller has committed: tasks read what it wrote).

    Fire and forget: every method returns None and never raises. The caller's use case has committed (the order
    completed, the account made) and must not fail, or skip its other follow-ups, because Redis is down; what
    redoes a lost job is RECOVERED_BY (the periodic timers, `Services.run_timers`, for all but the index jobs, whose
    drift a reindex repairs). No result is stored: nobody reads one, and with a result backend Celery would first
    retry connecting to it for about 20 s, then raise."""

    def __init__(self, app: Celery):
        self.app = app
        self._paused_until = 0.0  # time.monotonic() before which nothing is enqueued (the broker refused one)

    @property
    def paused(self) -> bool:
        """True while enqueues are skipped after a failure (ENQUEUE_PAUSE_SECONDS)."""
        return time.monotonic() < self._paused_until

    def _send(self, name: str, args: tuple, queue: str | None = None) -> None:
        recovery = RECOVERED_BY.get(name, "nothing redoes it")
        if self.paused:
            log.debug("broker down: job %s%r not enqueued; %s", name, args, recovery)
            return
        try:
            self.app.send_task(name, args=args, ignore_result=True, **({"queue": queue} if queue else {}))
        except Exception as exc:  # kombu's OperationalError, or whatever else the broker throws: the caller committed
            self._paused_until = time.monotonic() + ENQUEUE_PAUSE_SECONDS
            log.warning("could not enqueue job %s%r (%s): %s; no job is enqueued for %.0f s", name, args, exc,
                        recovery, ENQUEUE_PAUSE_SECONDS)

    def deliver_notification(self, tenant_id: int, notification_id: int) -> None:
        self._send(DELIVER_NOTIFICATION, (tenant_id, notification_id))

    def generate_invoice(self, tenant_id: int, order_id: int) -> None:
        self._send(GENERATE_INVOICE, (tenant_id, order_id))

    def process_webhook(self, event_row_id: int) -> None:
        self._send(PROCESS_WEBHOOK, (event_row_id,))

    def pay_out_order(self, tenant_id: int, order_id: int) -> None:
        self._send(PAY_OUT_ORDER, (tenant_id, order_id))

    def open_reviews(self, tenant_id: int, order_id: int) -> None:
        self._send(OPEN_REVIEWS, (tenant_id, order_id))

    def index_pro(self, tenant_id: int, pro_id: int) -> None:
        self._send(MATCHING_INDEX_PRO, (tenant_id, pro_id), queue=SEARCH_QUEUE)

    def index_request(self, tenant_id: int, request_id: int) -> None:
        self._send(MATCHING_INDEX_REQUEST, (tenant_id, request_id), queue=SEARCH_QUEUE)

    def reindex_tenant(self, tenant_id: int) -> None:
        self._send(MATCHING_REINDEX_TENANT, (tenant_id,), queue=SEARCH_QUEUE)


class InlineJobQueue:
    """Each job runs at once, in the caller's thread, after the caller committed. `services` (the bootstrap's
    Services) is bound once they are built. The embedded default (no Redis) logs a failed job and carries on,
    as a worker would; tests and benches pass `raise_errors=True` to see it. `skip` names jobs that do nothing
    (a benchmark leaving out invoices)."""

    def __init__(self, services: Any = None, *, raise_errors: bool = False, skip: frozenset[str] = frozenset()):
        self.services = services
        self.raise_errors = raise_errors
        self.skip = skip
        self.delivered: list[tuple[int, int]] = []  # notifications delivered, for tests

    def _run(self, name: str, fn, *args):
        if name in self.skip:
            return None
        try:
            return fn(*args)
        except Exception:
            if self.raise_errors:
                raise
            log.exception("job %s%r failed", name, args)
            return None

    def _tenant(self, tenant_id: int):
        return self.services.tenants.by_id(tenant_id)

    def deliver_notification(self, tenant_id: int, notification_id: int) -> str | None:
        self.delivered.append((tenant_id, notification_id))
        return self._run(DELIVER_NOTIFICATION, self.services.notifications.deliver, tenant_id, notification_id)

    def generate_invoice(self, tenant_id: int, order_id: int) -> str | None:
        return self._run(GENERATE_INVOICE, lambda: self.services.orders.generate_invoice(
            self._tenant(tenant_id), order_id))

    def process_webhook(self, event_row_id: int) -> str | None:
        # a completed checkout is an order transition: payments get the way up to orders passed in
        return self._run(PROCESS_WEBHOOK, self.services.payments.process_webhook, event_row_id,
                         lambda tenant_id, session_id: self.services.orders.confirm_checkout(
                             self._tenant(tenant_id), session_id))

    def pay_out_order(self, tenant_id: int, order_id: int) -> int | None:
        return self._run(PAY_OUT_ORDER, lambda: self.services.payments.pay_out_order(
            self._tenant(tenant_id), order_id))

    def open_reviews(self, tenant_id: int, order_id: int) -> int | None:
        return self._run(OPEN_REVIEWS, lambda: self.services.reviews.open_for_order(self._tenant(tenant_id), order_id))

    def index_pro(self, tenant_id: int, pro_id: int) -> str | None:
        return self._run(MATCHING_INDEX_PRO, self.services.matching.index_pro, tenant_id, pro_id)

    def index_request(self, tenant_id: int, request_id: int) -> str | None:
        return self._run(MATCHING_INDEX_REQUEST, self.services.matching.index_request, tenant_id, request_id)

    def reindex_tenant(self, tenant_id: int) -> dict | None:
        return self._run(MATCHING_REINDEX_TENANT, self.services.matching.reindex, tenant_id)

    def run_timers(self) -> dict | None:
        return self._run(RUN_TIMERS, self.services.run_timers)
