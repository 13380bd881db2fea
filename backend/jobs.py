"""Celery app. Broker and results on REDIS_URL; unset = tasks run eagerly in-process.

Worker: `celery -A backend.jobs worker --loglevel=info` (the Makefile's `worker` target).
Tasks take ids, are idempotent, and retry with exponential backoff and jitter.
"""

from __future__ import annotations

from celery import Celery

from backend.config import Settings, get_settings
from backend.notifications.ports import DeliveryError
from backend.payments.ports import PaymentUnavailable

DELIVER_NOTIFICATION = "notifications.deliver"
GENERATE_INVOICE = "orders.generate_invoice"
RUN_TIMERS = "orders.run_timers"
PROCESS_WEBHOOK = "payments.process_webhook"
PAY_OUT_ORDER = "payments.pay_out_order"
TIMER_INTERVAL_SECONDS = 300.0


def make_celery(settings: Settings) -> Celery:
    app = Celery("marketplace")
    if settings.redis_url:
        app.conf.update(broker_url=settings.redis_url, result_backend=settings.redis_url, task_always_eager=False)
    else:
        app.conf.update(broker_url="memory://", result_backend="cache+memory://", task_always_eager=True,
                        # autoretry in eager mode must not raise into the caller's request
                        task_eager_propagates=False)
    app.conf.update(task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
                    broker_connection_retry_on_startup=True, task_serializer="json", accept_content=["json"],
                    result_expires=3600, timezone="UTC",
                    # `celery -A backend.jobs beat` drives the order timers (48 h expiry, 7-day completion)
                    beat_schedule={"order-timers": {"task": RUN_TIMERS, "schedule": TIMER_INTERVAL_SECONDS}})
    return app


celery_app = make_celery(get_settings())


@celery_app.task(name=DELIVER_NOTIFICATION, autoretry_for=(DeliveryError,), retry_backoff=2, retry_backoff_max=600,
                 retry_jitter=True, max_retries=8)
def deliver_notification(tenant_id: int, notification_id: int) -> str:
    from backend.bootstrap import services

    return services().notifications.deliver(tenant_id, notification_id)


@celery_app.task(name=GENERATE_INVOICE, autoretry_for=(OSError,), retry_backoff=2, retry_jitter=True,
                 max_retries=8)
def generate_invoice(tenant_id: int, order_id: int) -> str:
    from backend.bootstrap import services

    svc = services()
    return svc.orders.generate_invoice(svc.tenants.by_id(tenant_id), order_id)


@celery_app.task(name=PROCESS_WEBHOOK, autoretry_for=(Exception,), retry_backoff=2, retry_jitter=True,
                 max_retries=8)
def process_webhook(event_row_id: int) -> str:
    from backend.bootstrap import services

    svc = services()
    return svc.payments.process_webhook(event_row_id, svc.tenants)


@celery_app.task(name=PAY_OUT_ORDER, autoretry_for=(PaymentUnavailable,), retry_backoff=2, retry_jitter=True,
                 max_retries=10)
def pay_out_order(tenant_id: int, order_id: int) -> int:
    from backend.bootstrap import services

    svc = services()
    return svc.payments.pay_out_order(svc.tenants.by_id(tenant_id), order_id)


@celery_app.task(name=RUN_TIMERS)
def run_timers() -> dict:
    from backend.bootstrap import services

    return services().run_timers()


class CeleryJobQueue:
    """The job ports (notifications, orders) on Celery: tasks are sent after the caller commits."""

    def __init__(self, app: Celery = celery_app):
        self.app = app

    def _send(self, task, name: str, *args) -> None:
        if self.app.conf.task_always_eager:
            task.apply(args=args)
        else:
            self.app.send_task(name, args=args)

    def deliver_notification(self, tenant_id: int, notification_id: int) -> None:
        self._send(deliver_notification, DELIVER_NOTIFICATION, tenant_id, notification_id)

    def generate_invoice(self, tenant_id: int, order_id: int) -> None:
        self._send(generate_invoice, GENERATE_INVOICE, tenant_id, order_id)

    def process_webhook(self, event_row_id: int) -> None:
        self._send(process_webhook, PROCESS_WEBHOOK, event_row_id)

    def pay_out_order(self, tenant_id: int, order_id: int) -> None:
        self._send(pay_out_order, PAY_OUT_ORDER, tenant_id, order_id)


async def run_timers_forever(interval: float = TIMER_INTERVAL_SECONDS) -> None:
    """The embedded default's stand-in for Celery beat: run the periodic work in the app process."""
    import asyncio
    import logging

    from backend.bootstrap import services

    log = logging.getLogger(__name__)
    while True:
        try:
            totals = await asyncio.to_thread(services().run_timers)
            if any(totals.values()):
                log.info("timers: %s", totals)
        except Exception:  # keep the loop alive; the next tick retries
            log.exception("periodic timers failed")
        await asyncio.sleep(interval)
