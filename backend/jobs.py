"""Celery app. Broker and results on REDIS_URL; unset = tasks run eagerly in-process.

Worker: `celery -A backend.jobs worker --loglevel=info` (the Makefile's `worker` target).
Tasks take ids, are idempotent, and retry with exponential backoff and jitter.
"""

from __future__ import annotations

from celery import Celery

from backend.config import Settings, get_settings
from backend.notifications.ports import DeliveryError

DELIVER_NOTIFICATION = "notifications.deliver"


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
                    result_expires=3600, timezone="UTC")
    return app


celery_app = make_celery(get_settings())


@celery_app.task(name=DELIVER_NOTIFICATION, autoretry_for=(DeliveryError,), retry_backoff=2, retry_backoff_max=600,
                 retry_jitter=True, max_retries=8)
def deliver_notification(tenant_id: int, notification_id: int) -> str:
    from backend.bootstrap import services

    return services().notifications.deliver(tenant_id, notification_id)


class CeleryJobQueue:
    """The JobQueue port on Celery."""

    def __init__(self, app: Celery = celery_app):
        self.app = app

    def deliver_notification(self, tenant_id: int, notification_id: int) -> None:
        if self.app.conf.task_always_eager:
            deliver_notification.apply(args=(tenant_id, notification_id))
        else:
            self.app.send_task(DELIVER_NOTIFICATION, args=(tenant_id, notification_id))
