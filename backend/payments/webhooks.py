"""Webhook intake: provider events verified and stored once (record), then processed by a job (process).

A completed checkout is an order transition, and orders sit above payments: the job passes the way up in as
`confirm` (backend/jobqueue.py), so this module never names the order service.

An event that cannot be processed alerts its marketplace's admins (ADMIN_WEBHOOK_FAILED), once per event: when it is
recorded as failed (an error nobody expected: retrying may not help), or when the provider stayed unreachable for as
many attempts as its job makes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import select

from backend.db import Database
from backend.errors import DomainError
from backend.payments.gateways import Gateways
from backend.payments.models import WebhookEvent
from backend.payments.notices import PaymentNotices
from backend.payments.ports import ConfirmCheckout, PaymentUnavailable, WebhookInvalid
from backend.tenancy.platform_reads import WEBHOOK_EVENT_TENANT

# The process_webhook task's tries (backend/jobs.py: max_retries=8, plus the first): a provider still unreachable
# on the last one leaves the event unprocessed until the provider resends it, which an admin should know.
ATTEMPTS_BEFORE_ALERT = 9
# An event still "received" this long after it arrived has no job carrying it (its enqueue was lost while Redis was
# down): the timers enqueue it again (`lost`). Longer than the job's own retries take (2 s doubling, 8 retries:
# under 9 minutes), so a job still retrying is rarely doubled (and processing is idempotent). Events older than
# LOST_HORIZON are no longer looked at: the provider has stopped resending them too; an admin can see them.
LOST_AFTER = timedelta(minutes=15)
LOST_HORIZON = timedelta(days=7)


class WebhookIntake:
    def __init__(self, db: Database, gateways: Gateways, notices: PaymentNotices):
        self.db = db
        self.gateways = gateways
        self.notices = notices

    def record(self, provider: str, payload: bytes, headers: dict[str, str]) -> int | None:
        """Verify and store a provider event. Returns its row id for the processing job, or None for a
        replay (already stored) or an event about nothing we track. Raises WebhookInvalid -> HTTP 400."""
        gateway = self.gateways.registered.get(provider)
        if gateway is None:
            raise WebhookInvalid("Unknown payment provider.")
        event = gateway.parse_webhook(payload, headers)
        if event.kind == "ignored":
            return None
        with self._session(event.tenant_id) as session:
            known = session.exec(select(WebhookEvent).where(WebhookEvent.provider == provider,
                                                            WebhookEvent.event_id == event.event_id)).first()
            if known is not None:  # a replay; one whose processing failed gets another go
                return known.id if known.status == "failed" else None
            row = WebhookEvent(provider=provider, event_id=event.event_id, kind=event.kind,
                               tenant_id=event.tenant_id, session_id=event.session_id, reference=event.reference,
                               order_id=event.order_id)
            session.add(row)
            try:
                session.flush()
            except sa.exc.IntegrityError:
                return None  # the same event delivered twice at once
            return row.id

    def process(self, event_row_id: int, confirm: ConfirmCheckout) -> str:
        """The job behind a stored event. Idempotent: a processed event is not processed again.
        confirm(tenant_id, session_id) books a completed checkout (OrderService.confirm_checkout)."""
        found = self.db.platform_read(WEBHOOK_EVENT_TENANT, event_row_id=event_row_id)
        if not found:
            return "skipped"
        with self._session(found[0].tenant_id) as session:
            row = session.get(WebhookEvent, event_row_id)
            if row is None or row.status == "processed":
                return "skipped"
            kind, tenant_id, session_id = row.kind, row.tenant_id, row.session_id
        result = "ignored"
        try:
            if kind == "checkout_completed" and tenant_id and session_id:
                confirm(tenant_id, session_id)
                result = "confirmed"
        except PaymentUnavailable as exc:  # the job retries; record the attempt
            self._mark(event_row_id, "received", exc.message, tenant_id)
            raise
        except DomainError as exc:  # settled otherwise (e.g. a late payment was voided): done, but noted
            self._mark(event_row_id, "processed", exc.message, tenant_id)
            return "handled"
        except Exception as exc:
            self._mark(event_row_id, "failed", str(exc), tenant_id)
            raise
        self._mark(event_row_id, "processed", "", tenant_id)
        return result

    def lost(self, tenant_ids: Sequence[int], now: datetime, limit: int = 200) -> list[int]:
        """Row ids of stored events whose job is gone: still "received" (never tried, or tried and the provider was
        unreachable) with fewer than ATTEMPTS_BEFORE_ALERT attempts (after that many the admins were told, and the
        event waits for the provider to resend it), received between LOST_HORIZON and LOST_AFTER ago. Tenant by
        tenant, each in its own session (row-level security), then the events naming no tenant."""
        found: list[int] = []
        for tenant_id in [*tenant_ids, None]:
            if len(found) >= limit:
                break
            owner = WebhookEvent.tenant_id.is_(None) if tenant_id is None else WebhookEvent.tenant_id == tenant_id
            with self._session(tenant_id) as session:
                found += session.exec(select(WebhookEvent.id).where(
                    owner, WebhookEvent.status == "received", WebhookEvent.attempts < ATTEMPTS_BEFORE_ALERT,
                    WebhookEvent.received_at <= now - LOST_AFTER, WebhookEvent.received_at > now - LOST_HORIZON)
                    .order_by(WebhookEvent.id).limit(limit - len(found))).all()
        return found

    def _session(self, tenant_id: int | None):
        """webhook_event rows live under the tenant their verified payload names (row-level security);
        an event that names none is a platform row."""
        return self.db.tenant_session(tenant_id) if tenant_id else self.db.platform_session()

    def _mark(self, event_row_id: int, status: str, error: str, tenant_id: int | None) -> None:
        """Record an attempt; a failure (see the module's docstring) alerts the admins in the same transaction."""
        notes: list[int] = []
        with self._session(tenant_id) as session:
            row = session.get(WebhookEvent, event_row_id)
            row.status, row.attempts, row.last_error = status, row.attempts + 1, error[:500]
            if status == "failed" or (status == "received" and row.attempts >= ATTEMPTS_BEFORE_ALERT):
                notes = self.notices.webhook_failed(session, row)
        if tenant_id:
            self.notices.deliver(tenant_id, notes)
