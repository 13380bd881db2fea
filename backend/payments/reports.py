"""Read models: a professional's earnings, a client's payment history, the admin's overview and an order's ledger.
Order facts (title, state, parties) come from orders through the PayableOrders port."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session, select

from backend.db import Database
from backend.errors import PermissionDenied
from backend.identity import Caller, Role, TenantPublic
from backend.money import fee_for, format_money
from backend.payments import ledger as L
from backend.payments.gateways import Gateways
from backend.payments.ledger import EntryRow, Ledger
from backend.payments.models import LedgerAccount, LedgerEntry, Payment, PaymentStatus, Payout
from backend.payments.payouts import payout_account_id, released_share
from backend.payments.ports import PayableOrder, PayableOrders
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


class PaymentReports:
    def __init__(self, db: Database, gateways: Gateways, ledger: Ledger, orders: PayableOrders):
        self.db = db
        self.gateways = gateways
        self.ledger = ledger
        self.orders = orders

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

    def order_ledger(self, tenant: TenantPublic, caller: Caller, order_id: int) -> list[EntryRow]:
        if caller is None or caller.role != Role.ADMIN or caller.tenant_id != tenant.id:
            raise PermissionDenied("Only the marketplace admin can see the ledger.")
        with self.db.tenant_session(tenant.id) as session:
            return self.ledger.entries(session, order_id=order_id)
