"""Builds the services from Settings: the one place that picks adapters."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from backend.accounts.security import Passwords
from backend.accounts.service import AccountService
from backend.config import Settings, get_settings
from backend.db import Database
from backend.notifications.adapters.maildir import MaildirEmailSender
from backend.notifications.ports import JobQueue
from backend.notifications.service import NotificationService
from backend.profiles.service import ProfileService
from backend.storage.adapters.local import LocalObjectStore
from backend.tenancy.service import PlatformService, TenantDirectory


@dataclass
class Services:
    settings: Settings
    db: Database
    tenants: TenantDirectory
    platform: PlatformService
    accounts: AccountService
    profiles: ProfileService
    notifications: NotificationService
    store: LocalObjectStore


def build_services(settings: Settings, *, jobs: JobQueue | None = None, migrate: bool = True) -> Services:
    if migrate:
        from backend.migrate import upgrade

        upgrade(settings.owner_database_url)
    if jobs is None:
        from backend.jobs import CeleryJobQueue

        jobs = CeleryJobQueue()
    db = Database(settings)
    passwords = Passwords(settings)
    store = LocalObjectStore(settings.objects_dir)
    tenants = TenantDirectory(db, settings)
    return Services(
        settings=settings,
        db=db,
        tenants=tenants,
        platform=PlatformService(db, passwords, tenants),
        accounts=AccountService(db, settings, passwords, jobs),
        profiles=ProfileService(db, settings, store),
        notifications=NotificationService(db, MaildirEmailSender(settings.data_dir / "outbox")),
        store=store,
    )


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
