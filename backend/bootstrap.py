"""Builds the services from Settings: the one place that picks adapters."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

from backend.accounts.security import Passwords
from backend.accounts.service import AccountService
from backend.config import Settings, get_settings
from backend.db import Database, utcnow
from backend.notifications.adapters.maildir import MaildirEmailSender
from backend.orders.catalog import CatalogService
from backend.orders.requests import RequestService
from backend.orders.service import OrderJobs, OrderService
from backend.payments.adapters.demo import DemoGateway
from backend.payments.ledger import Ledger
from backend.payments.ports import PaymentGateway
from backend.payments.service import PaymentService
from backend.profiles.pros import ProService
from backend.notifications.ports import JobQueue
from backend.notifications.service import NotificationService
from backend.profiles.service import ProfileService
from backend.storage.adapters.local import LocalObjectStore
from backend.storage.ports import ObjectStore
from backend.tenancy.service import PlatformService, TenantDirectory


class Jobs(JobQueue, OrderJobs, Protocol):
    """Every background job the services schedule."""

    def process_webhook(self, event_row_id: int) -> None: ...


@dataclass
class Services:
    settings: Settings
    db: Database
    tenants: TenantDirectory
    platform: PlatformService
    accounts: AccountService
    profiles: ProfileService
    notifications: NotificationService
    catalog: CatalogService
    pros: ProService
    requests: RequestService
    orders: OrderService
    payments: PaymentService
    store: ObjectStore
    jobs: Jobs

    def run_timers(self) -> dict[str, int]:
        """All periodic work, for every active tenant (Celery beat, or the app's own loop)."""
        totals = {"expire": 0, "auto_complete": 0, "requests_expired": 0}
        now = utcnow()
        for tenant_id in self.orders.active_tenant_ids():
            tenant = self.tenants.by_id(tenant_id)
            for key, count in self.orders.run_timers(tenant, now).items():
                totals[key] += count
            totals["requests_expired"] += self.requests.expire_requests(tenant_id, now)
        return totals


def build_services(settings: Settings, *, jobs: Jobs | None = None, migrate: bool = True) -> Services:
    if migrate:
        from backend.migrate import upgrade

        upgrade(settings.owner_database_url)
    if jobs is None:
        from backend.jobs import CeleryJobQueue

        jobs = CeleryJobQueue()
    db = Database(settings)
    passwords = Passwords(settings)
    store = make_object_store(settings)
    tenants = TenantDirectory(db, settings)
    payments = PaymentService(db, settings, make_gateways(settings, db), Ledger())
    orders = OrderService(db, payments, store, jobs)
    payments.orders = orders
    return Services(
        settings=settings,
        db=db,
        tenants=tenants,
        platform=PlatformService(db, passwords, tenants, payments.providers()),
        accounts=AccountService(db, settings, passwords, jobs),
        profiles=ProfileService(db, settings, store),
        notifications=NotificationService(db, MaildirEmailSender(settings.data_dir / "outbox")),
        catalog=CatalogService(db),
        pros=ProService(db, settings, store),
        requests=RequestService(db, settings, store),
        orders=orders,
        payments=payments,
        store=store,
        jobs=jobs,
    )


def make_gateways(settings: Settings, db: Database) -> dict[str, PaymentGateway]:
    """The demo gateway always; Stripe and PayPal when their keys are set."""
    gateways: dict[str, PaymentGateway] = {"demo": DemoGateway(db, settings.secret_key.get_secret_value())}
    if settings.stripe_secret_key:
        from backend.payments.adapters.stripe import StripeGateway

        gateways["stripe"] = StripeGateway(
            settings.stripe_secret_key.get_secret_value(),
            settings.stripe_webhook_secret.get_secret_value() if settings.stripe_webhook_secret else "",
            api_base=settings.stripe_api_base)
    if settings.paypal_client_id and settings.paypal_client_secret:
        from backend.payments.adapters.paypal import PayPalGateway

        gateways["paypal"] = PayPalGateway(
            settings.paypal_client_id, settings.paypal_client_secret.get_secret_value(),
            settings.paypal_webhook_id or "", environment=settings.paypal_environment,
            api_base=settings.paypal_api_base)
    return gateways


def make_object_store(settings: Settings) -> ObjectStore:
    if settings.s3_bucket:
        from backend.storage.adapters.s3 import S3ObjectStore

        store = S3ObjectStore(settings.s3_bucket, endpoint_url=settings.s3_endpoint_url,
                              region=settings.s3_region, presign_seconds=settings.s3_presign_seconds)
        store.ensure_bucket()
        return store
    return LocalObjectStore(settings.objects_dir)


_services: Services | None = None
_lock = threading.Lock()


def services() -> Services:
    """The process-wide services, built (and the database migrated) on first use."""
    global _services
    if _services is None:
        with _lock:
            if _services is None:
                _services = build_services(get_settings())
    return _services
