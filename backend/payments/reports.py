"""Read models: a professional's earnings, a client's payment history, the admin's overview and an order's ledger.
Order facts (title, state, parties) come from orders through the PayableOrders port."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, select

from backend.db import Database
from backend.errors import PermissionDenied
from backend.identity import Caller, Role, TenantPublic
from backend.money import fee_for, format_money
from backend.notifications.catalogue import Event
from backend.notifications.service import NotificationService
from backend.payments import ledger as L
from backend.payments.gateways import Gateways
from backend.payments.ledger import EntryRow, Ledger
from backend.payments.models import LedgerAccount, LedgerEntry, Payment, PaymentStatus, Payout, WebhookEvent
from backend.payments.notices import payout_failure_order
from backend.payments.payouts import payout_account_id, released_share
from backend.payments.ports import PayableOrder, PayableOrders
from backend.payments.webhooks import ATTEMPTS_BEFORE_ALERT
from backend.profiles.models import Profile

HISTORY_ROWS = 300


@dataclass(frozen=True)
class EarningsRow:
    order_id: int
    title: str
    state: str
    amount: str
    status: str  # held | available | paid out | refunded
    date: str


@dataclass(frozen=True)
class Earnings:
    currency: str
    held: str
    available: str
    paid_out: str
    available_minor: int
    payout_ready: bool
    rows: list[EarningsRow] = field(default_factory=list)


@dataclass(frozen=True)
class PaymentRow:
    order_id: int
    title: str
    client_name: str
    pro_name: str
    provider: str
    status: str
    order_state: str
    amount: str
    refunded: str
    escrow: str
    escrow_minor: int
    has_invoice: bool
    created_at: str


@dataclass(frozen=True)
class PaymentsOverview:
    held: str
    fees: str
    refunded: str
    paid_out: str
    rows: list[PaymentRow] = field(default_factory=list)
    checkout_ready: bool = True  # False: clients of this marketplace cannot pay (no configured provider)


@dataclass(frozen=True)
class FailedPayout:
    """A payout the provider refused and that has not gone out since (the admins were alerted)."""
    order_id: int
    title: str
    pro_id: int
    pro_name: str
    amount: str  # the professional's released share, formatted
    amount_minor: int
    currency: str
    failed_at: datetime  # the latest refusal's alert (UTC)
    alert: str  # that alert's subject


@dataclass(frozen=True)
class FailedWebhook:
    """A provider event that could not be processed: recorded as failed, or still unprocessed after every attempt
    its job makes (the provider stayed unreachable); the admins were alerted either way."""
    id: int
    provider: str
    kind: str
    event_id: str
    order_id: int | None
    status: str
    attempts: int
    error: str
    received_at: datetime  # UTC


def _admin_only(tenant: TenantPublic, admin: Caller | None) -> None:
    if admin is None or admin.role != Role.ADMIN or admin.tenant_id != tenant.id:
        raise PermissionDenied("Only the marketplace admin can see payments.")


class PaymentReports:
    """`alerts` (the notification service) holds the only durable trace of a refused payout: its admin alert."""

    def __init__(self, db: Database, gateways: Gateways, ledger: Ledger, orders: PayableOrders,
                 alerts: NotificationService):
        self.db = db
        self.gateways = gateways
        self.ledger = ledger
        self.orders = orders
        self.alerts = alerts

    def earnings(self, tenant: TenantPublic, pro: Caller) -> Earnings:
        if pro is None or pro.role != Role.PROFESSIONAL or pro.tenant_id != tenant.id:
            raise PermissionDenied("Only professionals have earnings.")
        currency = tenant.currency
        with self.db.tenant_session(tenant.id) as session:
            orders = self.orders.of_pro(session, pro.id)
            paid_out_ids = set(session.exec(select(Payout.order_id).where(Payout.pro_id == pro.id)).all())
            held = 0
            rows = []
            for o in orders:
                escrowed = self.ledger.balance(session, L.escrow(o.id), o.currency)
                share = released_share(self.ledger, session, o.id, o.pro_id)
                if escrowed > 0:
                    held += escrowed - fee_for(escrowed, tenant.platform_fee_bps)
                    status, amount = "held", escrowed - fee_for(escrowed, tenant.platform_fee_bps)
                elif share > 0:
                    status, amount = ("paid out" if o.id in paid_out_ids else "available"), share
                else:
                    continue
                rows.append(EarningsRow(order_id=o.id, title=o.title, state=o.state,
                                        amount=format_money(amount, o.currency), status=status,
                                        date=o.state_changed_at.strftime("%b %d, %Y")))
            available = self.ledger.balance(session, L.pro_payable(pro.id), currency)
            paid_out = self.ledger.balance(session, L.pro_paid_out(pro.id), currency)
            ready = self.gateways.can_take_payments(tenant) and payout_account_id(
                session, tenant.payment_provider, pro.id) is not None
        return Earnings(currency=currency, held=format_money(held, currency),
                        available=format_money(available, currency), paid_out=format_money(paid_out, currency),
                        available_minor=available, payout_ready=ready, rows=rows)

    def _rows(self, session: Session, payments: list[Payment], orders: dict[int, PayableOrder]) -> list[PaymentRow]:
        names = {p.user_id: p.full_name for p in session.exec(select(Profile)).all()}
        rows = []
        for payment in payments:
            order = orders.get(payment.order_id)
            if order is None:
                continue
            escrowed = self.ledger.balance(session, L.escrow(order.id), order.currency)
            rows.append(PaymentRow(
                order_id=order.id, title=order.title, client_name=names.get(order.client_id, ""),
                pro_name=names.get(order.pro_id, ""), provider=payment.provider, status=payment.status,
                order_state=order.state, amount=format_money(payment.amount_minor, payment.currency),
                refunded=format_money(payment.refunded_minor, payment.currency),
                escrow=format_money(escrowed, payment.currency), escrow_minor=escrowed,
                has_invoice=order.has_invoice, created_at=payment.created_at.strftime("%b %d, %Y")))
        return rows

    def client_history(self, tenant: TenantPublic, client: Caller) -> list[PaymentRow]:
        if client is None or client.role != Role.CLIENT or client.tenant_id != tenant.id:
            raise PermissionDenied("Only clients have a payment history.")
        with self.db.tenant_session(tenant.id) as session:
            orders = {o.id: o for o in self.orders.of_client(session, client.id)}
            if not orders:
                return []
            payments = session.exec(select(Payment).where(Payment.order_id.in_(list(orders)),
                                                          Payment.status != PaymentStatus.CHECKOUT)
                                    .order_by(Payment.created_at.desc()).limit(HISTORY_ROWS)).all()
            return self._rows(session, list(payments), orders)

    def overview(self, tenant: TenantPublic, admin: Caller) -> PaymentsOverview:
        if admin is None or admin.role != Role.ADMIN or admin.tenant_id != tenant.id:
            raise PermissionDenied("Only the marketplace admin can see payments.")
        c = tenant.currency
        with self.db.tenant_session(tenant.id) as session:
            sums = self._sums(session)
            payments = list(session.exec(select(Payment).order_by(Payment.created_at.desc())
                                         .limit(HISTORY_ROWS)).all())
            rows = self._rows(session, payments, self.orders.by_ids(session, [p.order_id for p in payments]))
        return PaymentsOverview(held=format_money(sums.get("escrow", 0), c),
                                fees=format_money(sums.get("platform_fees", 0), c),
                                refunded=format_money(sums.get("refunds", 0), c),
                                paid_out=format_money(sums.get("pro_paid_out", 0), c), rows=rows,
                                checkout_ready=self.gateways.can_take_payments(tenant))

    @staticmethod
    def _sums(session: Session) -> dict[str, int]:
        return {kind: int(total) for kind, total in session.exec(
            select(LedgerAccount.kind, sa.func.sum(LedgerEntry.amount_minor))
            .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id).group_by(LedgerAccount.kind)).all()}

    def failed_payouts(self, tenant: TenantPublic, admin: Caller, limit: int = 20) -> tuple[int, list[FailedPayout]]:
        """The admin's operations queue: orders whose payout the provider refused (Payouts._pay_out_order: nothing
        moved, the step's transaction rolled back, so no payment table records it; the ADMIN_PAYOUT_FAILED alert
        it sent is the record) and that have no payout since, the latest refusal first, and how many in all.
        At most `limit` (<= 100) rows; 0 counts only (the navigation's badge)."""
        _admin_only(tenant, admin)
        limit = max(0, min(limit, 100))
        with self.db.tenant_session(tenant.id) as session:
            latest = {}  # order id -> its latest refusal (alerts come oldest first)
            for alert in self.alerts.admin_alerts(session, Event.ADMIN_PAYOUT_FAILED):
                order_id = payout_failure_order(alert.key)
                if order_id is not None:
                    latest[order_id] = alert
            if latest:
                for order_id in session.exec(select(Payout.order_id).where(Payout.order_id.in_(list(latest)))).all():
                    latest.pop(order_id, None)
            newest = sorted(latest.items(), key=lambda item: (item[1].at, item[0]), reverse=True)[:limit]
            if not newest:
                return len(latest), []
            orders = self.orders.by_ids(session, [order_id for order_id, _ in newest])
            names = dict(session.exec(select(Profile.user_id, Profile.full_name).where(
                Profile.user_id.in_({o.pro_id for o in orders.values()}))).all())
            rows = []
            for order_id, alert in newest:
                order = orders.get(order_id)
                if order is None:
                    continue
                share = released_share(self.ledger, session, order_id, order.pro_id)
                rows.append(FailedPayout(order_id=order_id, title=order.title, pro_id=order.pro_id,
                                         pro_name=names.get(order.pro_id) or f"User {order.pro_id}",
                                         amount=format_money(share, order.currency), amount_minor=share,
                                         currency=order.currency, failed_at=alert.at, alert=alert.subject))
            return len(latest), rows

    def failed_webhooks(self, tenant: TenantPublic, admin: Caller,
                        limit: int = 20) -> tuple[int, list[FailedWebhook]]:
        """The admin's operations queue: this marketplace's provider events that failed (WebhookIntake._mark's
        rule for alerting the admins), newest first, and how many in all. One the provider sends again and that
        is then processed leaves the queue. At most `limit` (<= 100) rows; 0 counts only."""
        _admin_only(tenant, admin)
        limit = max(0, min(limit, 100))
        failed = (WebhookEvent.tenant_id == tenant.id,  # a platform table: not scoped by the ORM, only by RLS
                  sa.or_(WebhookEvent.status == "failed",
                         sa.and_(WebhookEvent.status == "received", WebhookEvent.attempts >= ATTEMPTS_BEFORE_ALERT)))
        with self.db.tenant_session(tenant.id) as session:
            total = session.exec(select(sa.func.count()).select_from(WebhookEvent).where(*failed)).one()
            if not total or not limit:
                return total, []
            events = session.exec(select(WebhookEvent).where(*failed).order_by(
                WebhookEvent.received_at.desc(), WebhookEvent.id.desc()).limit(limit)).all()
            return total, [FailedWebhook(id=e.id, provider=e.provider, kind=e.kind, event_id=e.event_id,
                                         order_id=e.order_id, status=e.status, attempts=e.attempts,
                                         error=e.last_error, received_at=e.received_at) for e in events]

    def order_ledger(self, tenant: TenantPublic, caller: Caller, order_id: int) -> list[EntryRow]:
        if caller is None or caller.role != Role.ADMIN or caller.tenant_id != tenant.id:
            raise PermissionDenied("Only the marketplace admin can see the ledger.")
        with self.db.tenant_session(tenant.id) as session:
            return self.ledger.entries(session, order_id=order_id)
