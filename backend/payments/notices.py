"""What payments tell people: the professional that a payout was sent; the marketplace's admins that a payout or a
provider's webhook failed for good (the catalogue's ADMIN_* alerts, on the admin's payments page).

A payout sent is written in the payout's own transaction; a failure in a transaction of its own, since the failed
step's transaction rolls back. Either way the email/SMS rows are handed to the job queue after commit. Keys name the
occurrence (the order's payout, the webhook event; a failure also by its reason), so a retried job never alerts twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date, datetime, timedelta

from sqlmodel import Session

from backend.db import Database, utcnow
from backend.identity import TenantPublic
from backend.money import format_money
from backend.notifications.catalogue import Event
from backend.notifications.ports import JobQueue
from backend.notifications.service import NotificationService
from backend.payments.models import WebhookEvent
from backend.tenancy.models import Tenant
from backend.tenancy.service import public_view

EARNINGS_PATH = "/pro/earnings"
ADMIN_PAYMENTS_PATH = "/admin/payments"
PAYOUT_FAILED_KEY = "payout-failed"  # the key of a refused payout's alert: f"{PAYOUT_FAILED_KEY}:{order_id}:{reason}"
PROVIDER_LABELS = {"stripe": "Stripe", "paypal": "PayPal", "demo": "demo (test mode)"}
# How long a transfer takes to reach the professional, in business days: a Stripe Connect standard payout lands in
# about two; a PayPal payout is in the PayPal balance at once; the demo gateway moves no money. An estimate the
# message says is one ("depending on your bank"), never a promise the ledger relies on.
ARRIVAL_BUSINESS_DAYS = {"stripe": 2, "paypal": 0, "demo": 0}


def provider_label(provider: str) -> str:
    return PROVIDER_LABELS.get(provider, provider.capitalize())


def arrival_day(sent_on: date, provider: str) -> date:
    """The expected arrival: that many business days later (weekends skipped)."""
    day, left = sent_on, ARRIVAL_BUSINESS_DAYS.get(provider, 2)
    while left > 0 or day.weekday() >= 5:
        day += timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return day


def payout_failure_order(key: str) -> int | None:
    """The order whose payout a refused payout's alert key names (None for any other key)."""
    prefix, _, rest = key.partition(":")
    order_id = rest.partition(":")[0]
    return int(order_id) if prefix == PAYOUT_FAILED_KEY and order_id.isdigit() else None


def _reason_key(reason: str) -> str:
    return hashlib.sha256(reason.encode()).hexdigest()[:12]


def _moment(at: datetime) -> str:
    return at.strftime("%b %d, %Y at %H:%M UTC")


class PaymentNotices:
    def __init__(self, db: Database, notifications: NotificationService, jobs: JobQueue):
        self.db = db
        self.notifications = notifications
        self.jobs = jobs

    def deliver(self, tenant_id: int, notification_ids: Sequence[int]) -> None:
        """After commit: one delivery job per email/SMS row."""
        for notification_id in notification_ids:
            self.jobs.deliver_notification(tenant_id, notification_id)

    def payout_sent(self, session: Session, tenant: TenantPublic, *, pro_id: int, order_id: int, amount_minor: int,
                    currency: str, provider: str) -> list[int]:
        """In the payout's transaction (one payout per order: the order names it)."""
        label = provider_label(provider)
        return self.notifications.notify(
            session, tenant, Event.PAYOUT_SENT, [pro_id], key=f"payout:{order_id}",
            context={"amount": format_money(amount_minor, currency), "destination": f"{label} payout account",
                     "arrival": arrival_day(utcnow().date(), provider).strftime("%a, %b %d")},
            link=EARNINGS_PATH)

    def payout_failed(self, tenant: TenantPublic, *, pro_id: int, order_id: int, amount_minor: int, currency: str,
                      provider: str, reason: str) -> None:
        """The provider refused the transfer: the admins hear of it once per order and reason (a job retried, or
        the professional clicking again, refused the same way, is the same alert)."""
        with self.db.tenant_session(tenant.id) as session:
            pro = self.notifications.contacts.contacts(session, [pro_id]).get(pro_id)
            notes = self.notifications.notify_admins(
                session, tenant, Event.ADMIN_PAYOUT_FAILED,
                key=f"{PAYOUT_FAILED_KEY}:{order_id}:{_reason_key(reason)}",
                context={"pro_name": pro.name if pro else f"Professional #{pro_id}",
                         "amount": format_money(amount_minor, currency), "provider": provider_label(provider),
                         "reason": reason or "The provider gave no reason."},
                link=ADMIN_PAYMENTS_PATH)
        self.deliver(tenant.id, notes)

    def webhook_failed(self, session: Session, row: WebhookEvent) -> list[int]:
        """In the transaction that records the failure, in the event's tenant (an event naming no tenant alerts
        nobody: no marketplace's admin can act on it). Once per event, however often its job retries."""
        tenant_row = session.get(Tenant, row.tenant_id) if row.tenant_id else None
        if tenant_row is None:
            return []
        return self.notifications.notify_admins(
            session, public_view(tenant_row), Event.ADMIN_WEBHOOK_FAILED, key=f"webhook:{row.id}:failed",
            context={"provider": provider_label(row.provider), "event_type": f"{row.kind} ({row.event_id})",
                     "error": row.last_error or "Unknown error.", "received_at": _moment(row.received_at)},
            link=ADMIN_PAYMENTS_PATH)
