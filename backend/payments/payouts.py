"""Payouts: the professional's payout account, and sending each settled order's released share to it (the
gateway's `transfer`). Which orders are settled comes from orders, through the PayableOrders port. A payout sent
tells the professional; one the provider refuses tells the marketplace's admins (notices.py)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, select

from backend.config import Settings
from backend.db import Database
from backend.errors import DomainError, PermissionDenied
from backend.identity import Caller, Role, TenantPublic
from backend.notifications.catalogue import Event
from backend.payments import ledger as L
from backend.payments.escrow import locked_payment
from backend.payments.gateways import Gateways
from backend.payments.ledger import Ledger, Line
from backend.payments.models import LedgerTransaction, Payment, Payout, PayoutAccountLink
from backend.payments.notices import PaymentNotices, payout_failure_order
from backend.payments.ports import PayableOrders, PaymentDeclined
from backend.tenancy.hosts import tenant_url


def payout_account_id(session: Session, provider: str, pro_id: int) -> str | None:
    link = session.exec(select(PayoutAccountLink).where(PayoutAccountLink.pro_id == pro_id,
                                                        PayoutAccountLink.provider == provider)).first()
    return link.account_id if link else None


def released_share(ledger: Ledger, session: Session, order_id: int, pro_id: int) -> int:
    """What the release transaction of this order credited to the professional."""
    rows = ledger.entries(session, order_id=order_id, account_prefix=f"pro:{pro_id}:payable")
    return sum(r.amount_minor for r in rows if r.kind == "release")


def _require_pro(tenant: TenantPublic, pro: Caller | None) -> None:
    if pro is None or pro.role != Role.PROFESSIONAL or pro.tenant_id != tenant.id:
        raise PermissionDenied("Only professionals receive payouts.")


class Payouts:
    def __init__(self, db: Database, settings: Settings, gateways: Gateways, ledger: Ledger, orders: PayableOrders,
                 notices: PaymentNotices):
        self.db = db
        self.settings = settings
        self.gateways = gateways
        self.ledger = ledger
        self.orders = orders
        self.notices = notices

    def onboarding(self, tenant: TenantPublic, pro: Caller) -> str:
        """Create (or reuse) the professional's payout account; returns the onboarding URL ('' when done)."""
        _require_pro(tenant, pro)
        gateway = self.gateways.for_tenant(tenant)
        with self.db.tenant_session(tenant.id) as session:
            existing = payout_account_id(session, gateway.name, pro.id) or ""
            earnings_url = tenant_url(self.settings.public_url, tenant.slug, self.settings.default_tenant,
                                      "/pro/earnings")
            account = gateway.payout_account(pro_id=pro.id, email=pro.email, existing=existing,
                                             return_url=earnings_url, refresh_url=earnings_url)
            if not existing:
                session.add(PayoutAccountLink(pro_id=pro.id, provider=gateway.name, account_id=account.account_id))
            return account.onboarding_url

    def pay_out(self, tenant: TenantPublic, pro: Caller) -> int:
        """Transfer every settled order's share not yet paid out; returns the total. Each order's
        transfer is its own step with its own key, so a retry after a failure pays nothing twice."""
        _require_pro(tenant, pro)
        with self.db.tenant_session(tenant.id) as session:
            paid = set(session.exec(select(Payout.order_id).where(Payout.pro_id == pro.id)).all())
            due = [o.id for o in self.orders.of_pro(session, pro.id) if o.settled and o.id not in paid]
        total, waiting = 0, 0
        for order_id in due:
            sent = self._pay_out_order(tenant, pro.id, order_id)
            total += max(sent, 0)
            waiting += sent < 0
        if total == 0:
            raise DomainError("Set up your payout account first." if waiting else
                              "There is nothing available to pay out yet.")
        return total

    def pay_out_order(self, tenant: TenantPublic, order_id: int) -> int:
        """The job after completion ("transfers on release"): pay the professional's share now if they
        have a payout account; otherwise it waits on their earnings page until they set one up."""
        with self.db.tenant_session(tenant.id) as session:
            order = self.orders.find(session, order_id)
            if order is None or not order.settled:
                return 0
            payment = session.exec(select(Payment).where(Payment.order_id == order_id)).first()
            if payment is None:
                return 0
            pro_id = order.pro_id
        return max(self._pay_out_order(tenant, pro_id, order_id), 0)

    def owed(self, session: Session, order_ids: Sequence[int]) -> list[int]:
        """Of these orders, the ones whose payout job should have sent the professional's share and did not (its
        enqueue was lost while Redis was down, or it never got to run): something was released to the professional
        (the order's release transaction), no payout is recorded, and they had a payout account at the order's
        provider when it was released, so the job at release would have transferred it. Left out: a share
        released before the professional set up payouts (it waits for their own "pay out", as always) and one the
        provider refused (asking again is refused the same way; the admins were alerted and the operations queue
        shows it until someone acts). A read: pay_out_order re-checks it all under the order's lock."""
        if not order_ids:
            return []
        paid = select(Payout.id).where(Payout.order_id == LedgerTransaction.order_id)
        released = session.exec(
            select(LedgerTransaction.order_id, LedgerTransaction.created_at, Payment.provider)
            .join(Payment, Payment.order_id == LedgerTransaction.order_id)
            .where(LedgerTransaction.order_id.in_(set(order_ids)), LedgerTransaction.kind == "release",
                   ~paid.exists())).all()
        if not released:
            return []
        orders = self.orders.by_ids(session, [order_id for order_id, _, _ in released])
        links = session.exec(select(PayoutAccountLink).where(
            PayoutAccountLink.pro_id.in_({o.pro_id for o in orders.values()}))).all()
        since = {(link.pro_id, link.provider): link.created_at for link in links}
        owed = {order_id for order_id, released_at, provider in released if order_id in orders
                and (opened := since.get((orders[order_id].pro_id, provider))) is not None and opened <= released_at}
        if owed:  # a refusal's only trace is its admin alert (PaymentNotices.payout_failed)
            owed -= {payout_failure_order(alert.key)
                     for alert in self.notices.notifications.admin_alerts(session, Event.ADMIN_PAYOUT_FAILED)}
        return sorted(owed)

    def _pay_out_order(self, tenant: TenantPublic, pro_id: int, order_id: int) -> int:
        asked: dict = {}  # what was asked of the provider, for the admins' alert if it refuses
        try:
            with self.db.tenant_session(tenant.id) as session:
                order = self.orders.find(session, order_id, lock=True)
                if session.exec(select(Payout.id).where(Payout.order_id == order_id)).first() is not None:
                    return 0
                payment = locked_payment(session, order.id)
                share = released_share(self.ledger, session, order.id, order.pro_id)
                if share <= 0:
                    return 0
                account = payout_account_id(session, payment.provider, pro_id)
                if account is None:
                    return -1  # waits until the professional sets up payouts with this order's provider
                asked = dict(pro_id=pro_id, order_id=order.id, amount_minor=share, currency=order.currency,
                             provider=payment.provider)
                transfer_id = self.gateways.named(payment.provider).transfer(
                    reference=payment.reference, payee_account=account, amount_minor=share,
                    transfer_group=f"order-{tenant.id}-{order.id}",
                    idempotency_key=f"t{tenant.id}-o{order.id}-payout")
                payment.released_minor += share
                session.add(Payout(pro_id=pro_id, order_id=order.id, provider=payment.provider,
                                   transfer_id=transfer_id, amount_minor=share, currency=order.currency))
                self.ledger.post(session, kind="payout", currency=order.currency, order_id=order.id,
                                 actor_id=pro_id, idempotency_key=f"o{order.id}-payout", memo=transfer_id,
                                 lines=[Line(L.pro_payable(pro_id), -share), Line(L.pro_paid_out(pro_id), share)])
                notes = self.notices.payout_sent(session, tenant, **asked)
        except PaymentDeclined as exc:
            # Refused for good (a closed bank account, an unfinished onboarding): nothing moved and retrying the
            # same transfer changes nothing, so a person must act. A provider that does not answer
            # (PaymentUnavailable) is retried by the job instead.
            if asked:
                self.notices.payout_failed(tenant, reason=exc.message, **asked)
            raise
        self.notices.deliver(tenant.id, notes)
        return share
