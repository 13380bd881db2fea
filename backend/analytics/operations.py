"""Operations queues: what needs the marketplace admin today, each item with a link to where they act on it.

Built only from the other services' public reads (each checks that the caller is the tenant's admin, counts the whole
queue and returns its first rows in one short transaction): analytics owns no operational data. The queues:

- disputes          orders in `disputed`, the longest waiting first        -> /orders/<id> (resolve there)
- reported_reviews  reviews with open reports, the longest waiting first   -> /admin/reviews (hide or restore)
- failed_payouts    payouts the provider refused, not paid since, newest   -> /admin/payments
- failed_webhooks   provider events that failed, newest first              -> /admin/payments
- failed_notifications  email/SMS deliveries that failed, newest first     -> /admin/notifications (retry)
- pros_awaiting_verification  active pros without the verified badge, newest first -> /admin/users
- suspended_users   suspended accounts, newest first                       -> /admin/users (reactivate)

A failed payout has no record in the payment tables (the refused transfer's transaction rolls back); its trace is
the ADMIN_PAYOUT_FAILED alert the admins were sent, which PaymentService.failed_payouts reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from backend.accounts.service import AccountService
from backend.db import utcnow
from backend.errors import PermissionDenied
from backend.identity import Caller, TenantPublic
from backend.notifications.service import NotificationService
from backend.orders.service import OrderService
from backend.payments.service import PaymentService
from backend.reviews import ReviewService

ROWS = 20  # per queue on the operations page; the counts are of the whole queue


@dataclass(frozen=True)
class Queue:
    key: str  # the OpsQueues field and the counts key
    label: str
    link: str  # where the admin works through the whole queue
    empty: str  # what the page says when there is nothing to do


QUEUES: tuple[Queue, ...] = (
    Queue("disputes", "Disputes waiting", "/orders", "No order is in dispute."),
    Queue("reported_reviews", "Reported reviews", "/admin/reviews", "No review has an open report."),
    Queue("failed_payouts", "Failed payouts", "/admin/payments", "No payout is waiting after a refusal."),
    Queue("failed_webhooks", "Failed payment webhooks", "/admin/payments", "Every provider event was processed."),
    Queue("failed_notifications", "Failed notifications", "/admin/notifications", "No email or text failed."),
    Queue("pros_awaiting_verification", "Pros awaiting verification", "/admin/users",
          "Every professional is verified."),
    Queue("suspended_users", "Suspended users", "/admin/users", "Nobody is suspended."),
)


@dataclass(frozen=True)
class OpsQueues:
    """Each queue: its first ROWS rows as plain dicts (each with `link`: where the admin acts on it); `counts`: the
    size of every whole queue (QUEUES' keys)."""

    disputes: list[dict]
    reported_reviews: list[dict]
    failed_payouts: list[dict]
    failed_webhooks: list[dict]
    failed_notifications: list[dict]
    pros_awaiting_verification: list[dict]
    suspended_users: list[dict]
    counts: dict[str, int]
    generated_at: str  # ISO 8601, UTC


def _utc(moment: datetime) -> datetime:
    """Database times come back naive (UTC) from SQLite and PostgreSQL's `timestamp`."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _iso(moment: datetime | str) -> str:
    return _utc(datetime.fromisoformat(moment) if isinstance(moment, str) else moment).isoformat()


class Operations:
    def __init__(self, orders: OrderService, payments: PaymentService, reviews: ReviewService,
                 notifications: NotificationService, accounts: AccountService, *,
                 clock: Callable[[], datetime] = utcnow):
        self.orders = orders
        self.payments = payments
        self.reviews = reviews
        self.notifications = notifications
        self.accounts = accounts
        self.clock = clock

    def queues(self, tenant: TenantPublic, caller: Caller) -> OpsQueues:
        """Every queue's first ROWS rows and whole counts (the tenant's admin only)."""
        self._require_admin(tenant, caller)
        now = self.clock()
        found = self._read(tenant, caller, ROWS)
        rows = {
            "disputes": [self._dispute(d, now) for d in found["disputes"][1]],
            "reported_reviews": [self._reported(r, now) for r in found["reported_reviews"][1]],
            "failed_payouts": [_failed_payout(p) for p in found["failed_payouts"][1]],
            "failed_webhooks": [_failed_webhook(w) for w in found["failed_webhooks"][1]],
            "failed_notifications": [_failed_notification(n) for n in found["failed_notifications"][1]],
            "pros_awaiting_verification": [_user(u) for u in found["pros_awaiting_verification"][1]],
            "suspended_users": [_user(u) for u in found["suspended_users"][1]],
        }
        return OpsQueues(**rows, counts={key: total for key, (total, _) in found.items()},
                         generated_at=_utc(now).isoformat())

    def counts(self, tenant: TenantPublic, caller: Caller) -> dict[str, int]:
        """The size of every queue (QUEUES' keys), for the badges on the admin's navigation (the tenant's admin
        only). Counts only: no row is read."""
        self._require_admin(tenant, caller)
        return {key: total for key, (total, _) in self._read(tenant, caller, 0).items()}

    # ------------------------------------------------------------------ reading the services

    @staticmethod
    def _require_admin(tenant: TenantPublic, caller: Caller | None) -> None:
        if caller is None or not caller.is_admin_of(tenant.id):
            raise PermissionDenied("Only the marketplace admin can see the operations queues.")

    def _read(self, tenant: TenantPublic, caller: Caller, limit: int) -> dict[str, tuple[int, list]]:
        """(whole count, first `limit` rows) per queue, in QUEUES' order."""
        found = {
            "disputes": self.orders.disputes_waiting(tenant, caller, limit),
            "reported_reviews": self.reviews.open_reports(tenant, caller, limit),
            "failed_payouts": self.payments.failed_payouts(tenant, caller, limit),
            "failed_webhooks": self.payments.failed_webhooks(tenant, caller, limit),
            "failed_notifications": self.notifications.failed_queue(caller, limit),
            "pros_awaiting_verification": self.accounts.pros_awaiting_verification(tenant, caller, limit),
            "suspended_users": self.accounts.suspended_users(tenant, caller, limit),
        }
        return {q.key: found[q.key] for q in QUEUES}

    # ------------------------------------------------------------------ rows

    @staticmethod
    def _dispute(d, now: datetime) -> dict:
        return {"order_id": d.order_id, "title": d.title, "client": d.client_name, "pro": d.pro_name,
                "amount": d.amount, "amount_minor": d.amount_minor, "currency": d.currency,
                "disputed_at": _iso(d.disputed_at), "age_days": _age_days(d.disputed_at, now),
                "link": f"/orders/{d.order_id}"}

    @staticmethod
    def _reported(r, now: datetime) -> dict:
        review = r.review
        return {"review_id": review.id, "order_id": review.order_id, "author": review.author_name,
                "subject": review.subject_name, "stars": review.stars, "excerpt": _excerpt(review.text),
                "open_reports": r.open_reports, "reasons": list(r.reasons), "open_since": _iso(r.open_since),
                "age_days": _age_days(datetime.fromisoformat(r.open_since), now), "link": "/admin/reviews"}


def _excerpt(text: str, limit: int = 160) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= limit else line[:limit - 1].rstrip() + "…"


def _age_days(since: datetime, now: datetime) -> int:
    """Whole days waited (0 on the first day)."""
    return max(0, (_utc(now) - _utc(since)).days)


def _failed_payout(p) -> dict:
    return {"order_id": p.order_id, "title": p.title, "pro": p.pro_name, "amount": p.amount,
            "amount_minor": p.amount_minor, "currency": p.currency, "failed_at": _iso(p.failed_at),
            "alert": p.alert, "link": "/admin/payments"}


def _failed_webhook(w) -> dict:
    return {"id": w.id, "provider": w.provider, "kind": w.kind, "event_id": w.event_id, "order_id": w.order_id,
            "status": w.status, "attempts": w.attempts, "error": w.error, "received_at": _iso(w.received_at),
            "link": "/admin/payments"}


def _failed_notification(n) -> dict:
    return {"id": n.id, "event": n.event, "channel": n.channel, "recipient": n.recipient, "subject": n.subject,
            "attempts": n.attempts, "error": n.last_error, "created_at": n.created_at, "link": "/admin/notifications"}


def _user(u) -> dict:
    return {"user_id": u.id, "name": u.full_name or u.email, "email": u.email, "role": u.role, "status": u.status,
            "joined": u.created_at, "link": "/admin/users"}
