"""Payment service: hosted checkout, escrow effects of order transitions, refunds, payouts, webhooks.

Provider calls happen inside the database transaction that locks the order, and each carries an
idempotency key derived from (order, step): if the provider times out or fails, the transaction rolls
back (order and ledger unchanged) and a retry repeats the same keys, so nothing is charged twice.
A step that gives money back (void, refund) is also written down before the provider is called (PaymentStep):
if its answer is lost, the provider may be ahead of our books, so the step is finished by replaying it with
the same keys before anything else happens to the order (OrderService.settle).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session, select

from backend.identity import Caller, Role, TenantPublic
from backend.accounts.models import User
from backend.config import Settings
from backend.db import Database, utcnow
from backend.errors import Conflict, DomainError, NotFound, PermissionDenied, ValidationFailed
from backend.money import fee_for, format_money, parse_amount
from backend.orders.models import Order, OrderEvent, OrderState
from backend.payments import ledger as L
from backend.payments.ledger import EntryRow, Ledger, Line
from backend.payments.models import (
    Payment, PaymentStatus, PaymentStep, Payout, PayoutAccountLink, StepStatus, WebhookEvent,
)
from backend.payments.ports import (
    Authorization, CheckoutRequest, PaymentDeclined, PaymentGateway, PaymentUnavailable, WebhookInvalid,
)
from backend.payments.providers import CANNOT_TAKE_PAYMENTS
from backend.tenancy.hosts import tenant_url
from backend.tenancy.platform_reads import WEBHOOK_EVENT_TENANT

log = logging.getLogger(__name__)
ESCROW_STATES = (OrderState.PAID, OrderState.IN_PROGRESS, OrderState.DELIVERED, OrderState.DISPUTED)
ADMIN_REFUND = "admin_refund"  # PaymentStep.action of an admin's partial refund (the others are order actions)
STEP_RECORDED = ("The payment provider did not confirm the refund in time. It is recorded and will be completed as "
                 "soon as the provider answers (nothing is refunded twice); until then the order stays as it is.")
STEP_WAITING = ("A refund on this order is still waiting for the payment provider's answer, and nothing else can "
                "happen to the order until it arrives. Please try again in a few minutes.")


@dataclass(frozen=True)
class StepRecord:
    """A step in doubt, as read (see PaymentStep): enough to replay it as it was asked for."""

    id: int
    order_id: int
    step: str
    action: str
    actor_id: int | None
    actor_role: str
    note: str
    amount_minor: int | None


class StepInDoubt(Exception):  # noqa: N818 (not an error shown to anyone: the caller settles the step and retries)
    """Raised under the order's lock when another step on the order is in doubt: settle it first, then retry."""

    def __init__(self, step: StepRecord):
        super().__init__(f"step {step.step!r} on order {step.order_id} is in doubt")
        self.step = step


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


class PaymentService:
    def __init__(self, db: Database, settings: Settings, gateways: dict[str, PaymentGateway], ledger: Ledger):
        self.db = db
        self.settings = settings
        self.gateways = gateways
        self.ledger = ledger
        self.orders = None  # the OrderService, wired by bootstrap: confirming a checkout applies 'pay'

    # ------------------------------------------------------------------ providers

    def providers(self) -> list[str]:
        """The providers configured (registered) on this installation."""
        return list(self.gateways)

    def can_take_payments(self, tenant: TenantPublic) -> bool:
        return bool(tenant.payment_provider) and tenant.payment_provider in self.gateways

    def gateway_for(self, tenant: TenantPublic) -> PaymentGateway:
        """The tenant's own provider, or a refusal: never another provider in its place (fail closed)."""
        gateway = self.gateways.get(tenant.payment_provider) if tenant.payment_provider else None
        if gateway is None:
            log.error("tenant %s (%s) cannot take payments: its provider %r is not configured here",
                      tenant.id, tenant.slug, tenant.payment_provider)
            raise DomainError(CANNOT_TAKE_PAYMENTS)
        return gateway

    def _gateway(self, name: str) -> PaymentGateway:
        gateway = self.gateways.get(name)
        if gateway is None:
            raise DomainError(f"The {name or 'chosen'} payment provider is not configured on this installation; "
                              "no money was moved.")
        return gateway

    def demo_gateway(self):
        """The test-card gateway's hosted page, where it exists (development only)."""
        gateway = self.gateways.get("demo")
        if gateway is None:
            raise NotFound("Test-mode checkout is not available on this installation.")
        return gateway

    # ------------------------------------------------------------------ checkout

    def start_checkout(self, tenant: TenantPublic, actor: Caller, order_id: int) -> str:
        """Begin paying an accepted order on the tenant's provider; returns the hosted page's URL.
        The amount always comes from the order, never from the browser."""
        gateway = self.gateway_for(tenant)
        with self.db.tenant_session(tenant.id) as session:
            order = session.exec(select(Order).where(Order.id == order_id).with_for_update()).first()
            if order is None or actor is None or actor.id != order.client_id or actor.role != Role.CLIENT:
                raise NotFound("No such order.")
            if order.state != OrderState.ACCEPTED:
                raise DomainError("This order is not waiting for payment.")
            payment = session.exec(select(Payment).where(Payment.order_id == order.id)).first()
            if payment is not None and payment.provider != gateway.name:
                session.delete(payment)  # the tenant switched providers before this checkout finished
                session.flush()
                payment = None
            client = session.get(User, order.client_id)
            base = lambda path: tenant_url(self.settings.public_url, tenant.slug,  # noqa: E731
                                           self.settings.default_tenant, path)
            checkout = gateway.start_checkout(CheckoutRequest(
                tenant_id=tenant.id, order_id=order.id, amount_minor=order.price_minor, currency=order.currency,
                description=order.title, customer_email=client.email,
                success_url=base(f"/orders/{order.id}?checkout={{SESSION_ID}}"),
                cancel_url=base(f"/orders/{order.id}?checkout=cancelled"),
                idempotency_key=f"t{tenant.id}-o{order.id}-checkout-{gateway.name}"))
            if payment is None:
                session.add(Payment(order_id=order.id, provider=gateway.name, session_id=checkout.session_id,
                                    amount_minor=order.price_minor, currency=order.currency))
            elif payment.status == PaymentStatus.CHECKOUT and payment.session_id != checkout.session_id:
                # the provider forgot our key (Stripe keeps them 24 h) and opened a new session: track that one
                payment.session_id, payment.updated_at = checkout.session_id, utcnow()
            return checkout.redirect_url

    def confirm_checkout(self, tenant: TenantPublic, session_id: str, caller: Caller | None = None) -> int | None:
        """The payer came back, or a webhook said so: if the provider holds the funds, mark the order paid.
        Safe to call any number of times."""
        with self.db.tenant_session(tenant.id) as session:
            payment = session.exec(select(Payment).where(Payment.session_id == session_id)).first()
            if payment is None:
                raise NotFound("Unknown checkout.")
            order_id, provider, status = payment.order_id, payment.provider, payment.status
        if status != PaymentStatus.CHECKOUT:
            return order_id
        authorization = self._gateway(provider).confirm_checkout(
            session_id, idempotency_key=f"t{tenant.id}-o{order_id}-confirm")
        if authorization is None:
            return None
        try:
            self.orders.apply(tenant, caller, order_id, "pay", authorization=authorization)
        except DomainError:
            # Either the return page and the webhook confirmed at once (the other one won: fine), or the
            # order moved on (expired, cancelled) while the payer was on the provider's page: then the
            # hold must not linger on the client's card.
            with self.db.tenant_session(tenant.id) as session:
                payment = session.exec(select(Payment).where(Payment.session_id == session_id)
                                       .with_for_update()).first()
                order = session.get(Order, order_id)
                if payment.status != PaymentStatus.CHECKOUT:
                    return order_id
                if order.state == OrderState.ACCEPTED:
                    raise
                self._gateway(provider).refund(reference=authorization.reference,
                                               amount_minor=authorization.amount_minor, captured=False,
                                               idempotency_key=f"t{tenant.id}-o{order_id}-void-late")
                payment.reference, payment.status = authorization.reference, PaymentStatus.VOIDED
                payment.updated_at = utcnow()
            raise DomainError(f"This order was {order.state.replace('_', ' ')} before the payment arrived; "
                              "the hold on your card was released.") from None
        return order_id

    # ------------------------------------------------------------------ effects of order transitions

    def _payment(self, session: Session, order: Order) -> Payment:
        payment = session.exec(select(Payment).where(Payment.order_id == order.id).with_for_update()).first()
        if payment is None:
            raise DomainError("This order has no payment.")
        return payment

    def hold(self, session: Session, tenant: TenantPublic, order: Order, authorization: Authorization | None,
             actor_id: int | None) -> None:
        if authorization is None:
            raise DomainError("Pay through the checkout page.")
        payment = self._payment(session, order)
        if payment.status != PaymentStatus.CHECKOUT:
            raise Conflict("This order is already paid.")
        if authorization.currency.upper() != order.currency or authorization.amount_minor != order.price_minor:
            raise DomainError("The payment does not match the order (amount or currency); nothing was recorded.")
        payment.reference, payment.status, payment.updated_at = authorization.reference, PaymentStatus.AUTHORIZED, utcnow()
        self.ledger.post(session, kind="hold", currency=order.currency, order_id=order.id, actor_id=actor_id,
                         idempotency_key=f"o{order.id}-hold", memo=f"{payment.provider} {authorization.reference}",
                         lines=[Line(L.client_funding(order.client_id), -order.price_minor),
                                Line(L.escrow(order.id), order.price_minor)])

    def _ensure_captured(self, payment: Payment, order: Order) -> None:
        if payment.status == PaymentStatus.AUTHORIZED:
            self._gateway(payment.provider).capture(reference=payment.reference, amount_minor=payment.amount_minor,
                                                    idempotency_key=f"t{order.tenant_id}-o{order.id}-capture")
            payment.status, payment.captured_minor = PaymentStatus.CAPTURED, payment.amount_minor

    def release(self, session: Session, tenant: TenantPublic, order: Order, actor_id: int | None,
                step: str = "release") -> None:
        """Completion: capture, and move what is left in escrow to the professional minus the platform fee."""
        payment = self._payment(session, order)
        remaining = self.ledger.balance(session, L.escrow(order.id), order.currency)
        if remaining <= 0:
            return
        self._ensure_captured(payment, order)
        fee = fee_for(remaining, tenant.platform_fee_bps)
        self.ledger.post(session, kind="release", currency=order.currency, order_id=order.id, actor_id=actor_id,
                         idempotency_key=f"o{order.id}-{step}", memo=f"fee {tenant.platform_fee_bps / 100:g}%",
                         lines=[Line(L.escrow(order.id), -remaining), Line(L.pro_payable(order.pro_id), remaining - fee),
                                Line(L.platform_fees(), fee)])
        order.platform_fee_minor = fee

    def refund(self, session: Session, tenant: TenantPublic, order: Order, amount_minor: int | None,
               actor_id: int | None, step: str, reason: str = "") -> int:
        """Give escrowed money back (all of it when amount is None). Voids an untouched hold."""
        payment = self._payment(session, order)
        remaining = self.ledger.balance(session, L.escrow(order.id), order.currency)
        if amount_minor is None and remaining == 0:
            # "Refund in full" when everything was already given back (e.g. the admin refunded it all, which voided
            # the hold): nothing is left to void or refund, and the cancel it belongs to goes ahead.
            return 0
        amount = remaining if amount_minor is None else amount_minor
        if remaining <= 0:
            raise ValidationFailed({"amount": "Nothing is left in escrow to refund."})
        if amount <= 0 or amount > remaining:
            raise ValidationFailed({"amount": f"Refund between {format_money(1, order.currency)} and "
                                              f"{format_money(remaining, order.currency)}"})
        gateway = self._gateway(payment.provider)
        key = f"t{tenant.id}-o{order.id}-{step}"
        voided, void_refused = False, False
        if payment.status == PaymentStatus.AUTHORIZED and amount == payment.amount_minor:
            try:
                gateway.refund(reference=payment.reference, amount_minor=amount, captured=False, idempotency_key=key)
                payment.status, voided = PaymentStatus.VOIDED, True
            except PaymentDeclined:
                # The provider refuses to void: an earlier capture went through although its answer was
                # lost (timeout). Replaying that capture's key records it; then refund the capture (a new key:
                # the refused void used this one on another endpoint).
                void_refused = True
        if not voided:
            self._ensure_captured(payment, order)  # a partial refund needs the money captured first
            gateway.refund(reference=payment.reference, amount_minor=amount, captured=True,
                           idempotency_key=f"{key}-after-capture" if void_refused else key)
        payment.refunded_minor += amount
        payment.updated_at = utcnow()
        self.ledger.post(session, kind="refund", currency=order.currency, order_id=order.id, actor_id=actor_id,
                         idempotency_key=f"o{order.id}-{step}", memo=reason,
                         lines=[Line(L.escrow(order.id), -amount), Line(L.refunds(order.client_id), amount)])
        return amount

    # ------------------------------------------------------------------ admin: refunds

    def admin_refund(self, tenant: TenantPublic, admin: Caller, order_id: int, amount_text: str, reason: str) -> int:
        """A partial refund from escrow, with a reason; the order carries on with what is left. A step in doubt on
        the order (see PaymentStep) is settled first, unless this is that step asked again."""
        for _ in range(3):
            try:
                return self.admin_refund_step(tenant, admin, order_id, amount_text, reason)
            except StepInDoubt as doubt:
                self.orders.settle(tenant, doubt.step)
        raise PaymentUnavailable(STEP_WAITING)

    def admin_refund_step(self, tenant: TenantPublic, admin: Caller, order_id: int, amount_text: str, reason: str,
                          resume: StepRecord | None = None) -> int:
        """resume: replay this step in doubt exactly as it was asked (same amount, same idempotency keys)."""
        if admin is None or admin.role != Role.ADMIN or admin.tenant_id != tenant.id:
            raise PermissionDenied("Only the marketplace admin can refund.")
        reason = " ".join((reason or "").split())[:500]
        step_id = None
        try:
            with self.db.tenant_session(tenant.id) as session:
                order = session.exec(select(Order).where(Order.id == order_id).with_for_update()).first()
                if order is None:
                    raise NotFound("No such order.")
                pending = self.step_in_doubt(session, order.id)
                if resume is not None:
                    if pending is None or pending.id != resume.id:
                        return 0  # finished meanwhile by whoever held the order before us
                    amount, step = resume.amount_minor, resume.step
                else:
                    errors = {}
                    try:
                        amount = parse_amount(amount_text, order.currency, field_name="amount")
                    except ValueError as exc:
                        errors["amount"] = str(exc)
                    if len(reason) < 3:
                        errors["reason"] = "Give a reason (it is shown on the order's timeline)"
                    if errors:
                        raise ValidationFailed(errors)
                    count = session.exec(select(sa.func.count()).select_from(OrderEvent).where(
                        OrderEvent.order_id == order.id, OrderEvent.action == "refund")).one()
                    step = f"refund-{count + 1}"
                    if pending is not None and (pending.step, pending.amount_minor) != (step, amount):
                        raise StepInDoubt(pending)  # that one first; this same refund asked again goes ahead
                if order.state not in ESCROW_STATES:
                    raise DomainError("Only money still held in escrow can be refunded here.")
                step_id = self.begin_step(tenant.id, order.id, step=step, action=ADMIN_REFUND, actor=admin,
                                          note=reason, amount_minor=amount)
                self.refund(session, tenant, order, amount, admin.id, step=step, reason=reason)
                session.add(OrderEvent(order_id=order.id, action="refund", from_state=order.state,
                                       to_state=order.state, actor_id=admin.id, actor_role=admin.role,
                                       note=f"Refunded {format_money(amount, order.currency)}: {reason}"))
                self.finish_step(session, step_id)
                return amount
        except DomainError as exc:
            self.step_interrupted(tenant.id, step_id, exc)
            raise

    # ------------------------------------------------------------------ steps in doubt (write-ahead journal)

    def begin_step(self, tenant_id: int, order_id: int, *, step: str, action: str, actor: Caller | None, note: str,
                   amount_minor: int | None) -> int:
        """Record, in its own committed transaction, that a step giving money back is about to call the provider.
        Call it while holding the order's lock and before the step's transaction writes anything (SQLite has one
        writer at a time). The same step asked again (a retry, or its settlement) reuses its row."""
        with self.db.tenant_session(tenant_id) as session:
            row = session.exec(select(PaymentStep).where(PaymentStep.order_id == order_id,
                                                         PaymentStep.step == step)).first()
            if row is None:
                row = PaymentStep(order_id=order_id, step=step, action=action)
                session.add(row)
            row.action, row.note, row.amount_minor = action, note[:500], amount_minor
            row.actor_id, row.actor_role = (actor.id, str(actor.role)) if actor is not None else (None, "")
            row.status, row.attempts, row.updated_at = StepStatus.PENDING, row.attempts + 1, utcnow()
            session.flush()
            return row.id

    def finish_step(self, session: Session, step_id: int) -> None:
        """In the transaction that books the step's outcome: done, atomically with the books."""
        row = session.get(PaymentStep, step_id)
        row.status, row.last_error, row.updated_at = StepStatus.DONE, "", utcnow()

    def step_interrupted(self, tenant_id: int, step_id: int | None, exc: DomainError) -> None:
        """After the step's transaction rolled back. A refusal (the provider declined, the amount was wrong) moved
        nothing: the step is over. Anything else (no answer, or a failure after the provider acted) leaves it
        pending: in doubt until it is replayed."""
        if step_id is None:
            return
        done = isinstance(exc, (PaymentDeclined, ValidationFailed))
        with self.db.tenant_session(tenant_id) as session:
            row = session.exec(select(PaymentStep).where(PaymentStep.id == step_id).with_for_update()).first()
            if row is None or row.status != StepStatus.PENDING:
                return
            if done:
                row.status = StepStatus.FAILED
            row.last_error, row.updated_at = exc.message[:500], utcnow()
            log.warning("payment step %r on order %s %s: %s", row.step, row.order_id,
                        "refused" if done else "in doubt", exc.message)

    def step_in_doubt(self, session: Session, order_id: int) -> StepRecord | None:
        row = session.exec(select(PaymentStep).where(PaymentStep.order_id == order_id,
                                                     PaymentStep.status == StepStatus.PENDING)
                           .order_by(PaymentStep.id)).first()
        if row is None:
            return None
        return StepRecord(id=row.id, order_id=row.order_id, step=row.step, action=row.action, actor_id=row.actor_id,
                          actor_role=row.actor_role, note=row.note, amount_minor=row.amount_minor)

    def orders_in_doubt(self, tenant_id: int) -> list[int]:
        """Orders with a step in doubt (the timer job settles them)."""
        with self.db.tenant_session(tenant_id) as session:
            return sorted(set(session.exec(select(PaymentStep.order_id).where(
                PaymentStep.status == StepStatus.PENDING)).all()))

    # ------------------------------------------------------------------ payouts

    def _payout_account(self, session: Session, tenant: TenantPublic, provider: str, pro_id: int) -> str | None:
        link = session.exec(select(PayoutAccountLink).where(PayoutAccountLink.pro_id == pro_id,
                                                            PayoutAccountLink.provider == provider)).first()
        return link.account_id if link else None

    def payout_onboarding(self, tenant: TenantPublic, pro: Caller) -> str:
        """Create (or reuse) the professional's payout account; returns the onboarding URL ('' when done)."""
        if pro is None or pro.role != Role.PROFESSIONAL or pro.tenant_id != tenant.id:
            raise PermissionDenied("Only professionals receive payouts.")
        gateway = self.gateway_for(tenant)
        with self.db.tenant_session(tenant.id) as session:
            existing = self._payout_account(session, tenant, gateway.name, pro.id) or ""
            account = gateway.payout_account(
                pro_id=pro.id, email=pro.email, existing=existing,
                return_url=tenant_url(self.settings.public_url, tenant.slug, self.settings.default_tenant,
                                      "/pro/earnings"),
                refresh_url=tenant_url(self.settings.public_url, tenant.slug, self.settings.default_tenant,
                                       "/pro/earnings"))
            if not existing:
                session.add(PayoutAccountLink(pro_id=pro.id, provider=gateway.name, account_id=account.account_id))
            return account.onboarding_url

    def pay_out(self, tenant: TenantPublic, pro: Caller) -> int:
        """Transfer every completed order's share not yet paid out; returns the total. Each order's
        transfer is its own step with its own key, so a retry after a failure pays nothing twice."""
        if pro is None or pro.role != Role.PROFESSIONAL or pro.tenant_id != tenant.id:
            raise PermissionDenied("Only professionals receive payouts.")
        with self.db.tenant_session(tenant.id) as session:
            due = session.exec(select(Order.id).where(
                Order.pro_id == pro.id, Order.state.in_([OrderState.COMPLETED, OrderState.RESOLVED]),
                Order.id.not_in(select(Payout.order_id)))).all()
        total, waiting = 0, 0
        for order_id in due:
            paid = self._pay_out_order(tenant, pro.id, order_id)
            total += max(paid, 0)
            waiting += paid < 0
        if total == 0:
            raise DomainError("Set up your payout account first." if waiting else
                              "There is nothing available to pay out yet.")
        return total

    def pay_out_order(self, tenant: TenantPublic, order_id: int) -> int:
        """The job after completion ("transfers on release"): pay the professional's share now if they
        have a payout account; otherwise it waits on their earnings page until they set one up."""
        with self.db.tenant_session(tenant.id) as session:
            order = session.get(Order, order_id)
            if order is None or order.state not in (OrderState.COMPLETED, OrderState.RESOLVED):
                return 0
            payment = session.exec(select(Payment).where(Payment.order_id == order_id)).first()
            if payment is None:
                return 0
            pro_id = order.pro_id
        return max(self._pay_out_order(tenant, pro_id, order_id), 0)

    def _pay_out_order(self, tenant: TenantPublic, pro_id: int, order_id: int) -> int:
        with self.db.tenant_session(tenant.id) as session:
            order = session.exec(select(Order).where(Order.id == order_id).with_for_update()).first()
            if session.exec(select(Payout.id).where(Payout.order_id == order_id)).first() is not None:
                return 0
            payment = self._payment(session, order)
            share = self._released_share(session, order)
            if share <= 0:
                return 0
            account = self._payout_account(session, tenant, payment.provider, pro_id)
            if account is None:
                return -1  # waits until the professional sets up payouts with this order's provider
            transfer_id = self._gateway(payment.provider).release(
                reference=payment.reference, payee_account=account, amount_minor=share,
                transfer_group=f"order-{tenant.id}-{order.id}", idempotency_key=f"t{tenant.id}-o{order.id}-payout")
            payment.released_minor += share
            session.add(Payout(pro_id=pro_id, order_id=order.id, provider=payment.provider, transfer_id=transfer_id,
                               amount_minor=share, currency=order.currency))
            self.ledger.post(session, kind="payout", currency=order.currency, order_id=order.id, actor_id=pro_id,
                             idempotency_key=f"o{order.id}-payout", memo=transfer_id,
                             lines=[Line(L.pro_payable(pro_id), -share), Line(L.pro_paid_out(pro_id), share)])
            return share

    def _released_share(self, session: Session, order: Order) -> int:
        """What the release transaction of this order credited to the professional."""
        rows = self.ledger.entries(session, order_id=order.id, account_prefix=f"pro:{order.pro_id}:payable")
        return sum(r.amount_minor for r in rows if r.kind == "release")

    # ------------------------------------------------------------------ views

    def earnings(self, tenant: TenantPublic, pro: Caller) -> Earnings:
        if pro is None or pro.role != Role.PROFESSIONAL or pro.tenant_id != tenant.id:
            raise PermissionDenied("Only professionals have earnings.")
        currency = tenant.currency
        with self.db.tenant_session(tenant.id) as session:
            orders = session.exec(select(Order).where(Order.pro_id == pro.id)
                                  .order_by(Order.state_changed_at.desc())).all()
            paid_out_ids = set(session.exec(select(Payout.order_id).where(Payout.pro_id == pro.id)).all())
            held = 0
            rows = []
            for o in orders:
                escrowed = self.ledger.balance(session, L.escrow(o.id), o.currency)
                share = self._released_share(session, o)
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
            ready = self.can_take_payments(tenant) and self._payout_account(
                session, tenant, tenant.payment_provider, pro.id) is not None
        return Earnings(currency=currency, held=format_money(held, currency),
                        available=format_money(available, currency), paid_out=format_money(paid_out, currency),
                        available_minor=available, payout_ready=ready, rows=rows)

    def _rows(self, session: Session, query) -> list[PaymentRow]:
        from backend.profiles.models import Profile

        names = {p.user_id: p.full_name for p in session.exec(select(Profile)).all()}
        rows = []
        for payment, order in session.exec(query).all():
            escrowed = self.ledger.balance(session, L.escrow(order.id), order.currency)
            rows.append(PaymentRow(
                order_id=order.id, title=order.title, client_name=names.get(order.client_id, ""),
                pro_name=names.get(order.pro_id, ""), provider=payment.provider, status=payment.status,
                order_state=order.state, amount=format_money(payment.amount_minor, payment.currency),
                refunded=format_money(payment.refunded_minor, payment.currency),
                escrow=format_money(escrowed, payment.currency), escrow_minor=escrowed,
                has_invoice=bool(order.invoice_key), created_at=payment.created_at.strftime("%b %d, %Y")))
        return rows

    def client_history(self, tenant: TenantPublic, client: Caller) -> list[PaymentRow]:
        if client is None or client.role != Role.CLIENT or client.tenant_id != tenant.id:
            raise PermissionDenied("Only clients have a payment history.")
        with self.db.tenant_session(tenant.id) as session:
            return self._rows(session, select(Payment, Order).join(Order, Order.id == Payment.order_id)
                              .where(Order.client_id == client.id, Payment.status != PaymentStatus.CHECKOUT)
                              .order_by(Payment.created_at.desc()).limit(300))

    def overview(self, tenant: TenantPublic, admin: Caller) -> PaymentsOverview:
        if admin is None or admin.role != Role.ADMIN or admin.tenant_id != tenant.id:
            raise PermissionDenied("Only the marketplace admin can see payments.")
        c = tenant.currency
        with self.db.tenant_session(tenant.id) as session:
            sums = self._sums(session)
            rows = self._rows(session, select(Payment, Order).join(Order, Order.id == Payment.order_id)
                              .order_by(Payment.created_at.desc()).limit(300))
        return PaymentsOverview(held=format_money(sums.get("escrow", 0), c),
                                fees=format_money(sums.get("platform_fees", 0), c),
                                refunded=format_money(sums.get("refunds", 0), c),
                                paid_out=format_money(sums.get("pro_paid_out", 0), c), rows=rows,
                                checkout_ready=self.can_take_payments(tenant))

    def _sums(self, session: Session) -> dict[str, int]:
        from backend.payments.models import LedgerAccount, LedgerEntry

        return {kind: int(total) for kind, total in session.exec(
            select(LedgerAccount.kind, sa.func.sum(LedgerEntry.amount_minor))
            .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id).group_by(LedgerAccount.kind)).all()}

    def order_ledger(self, tenant: TenantPublic, caller: Caller, order_id: int) -> list[EntryRow]:
        if caller is None or caller.role != Role.ADMIN or caller.tenant_id != tenant.id:
            raise PermissionDenied("Only the marketplace admin can see the ledger.")
        with self.db.tenant_session(tenant.id) as session:
            return self.ledger.entries(session, order_id=order_id)

    # ------------------------------------------------------------------ webhooks

    def record_webhook(self, provider: str, payload: bytes, headers: dict[str, str]) -> int | None:
        """Verify and store a provider event. Returns its row id for the processing job, or None for a
        replay (already stored) or an event about nothing we track. Raises WebhookInvalid -> HTTP 400."""
        gateway = self.gateways.get(provider)
        if gateway is None:
            raise WebhookInvalid("Unknown payment provider.")
        event = gateway.parse_webhook(payload, headers)
        if event.kind == "ignored":
            return None
        with self._webhook_session(event.tenant_id) as session:
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

    def process_webhook(self, event_row_id: int, tenants) -> str:
        """The job behind a stored event. Idempotent: a processed event is not processed again."""
        found = self.db.platform_read(WEBHOOK_EVENT_TENANT, event_row_id=event_row_id)
        if not found:
            return "skipped"
        with self._webhook_session(found[0].tenant_id) as session:
            row = session.get(WebhookEvent, event_row_id)
            if row is None or row.status == "processed":
                return "skipped"
            kind, tenant_id, session_id = row.kind, row.tenant_id, row.session_id
        result = "ignored"
        try:
            if kind == "checkout_completed" and tenant_id and session_id:
                self.confirm_checkout(tenants.by_id(tenant_id), session_id)
                result = "confirmed"
        except PaymentUnavailable as exc:  # the job retries; record the attempt
            self._mark_webhook(event_row_id, "received", exc.message, tenant_id)
            raise
        except DomainError as exc:  # settled otherwise (e.g. a late payment was voided): done, but noted
            self._mark_webhook(event_row_id, "processed", exc.message, tenant_id)
            return "handled"
        except Exception as exc:
            self._mark_webhook(event_row_id, "failed", str(exc), tenant_id)
            raise
        self._mark_webhook(event_row_id, "processed", "", tenant_id)
        return result

    def _webhook_session(self, tenant_id: int | None):
        """webhook_event rows live under the tenant their verified payload names (row-level security);
        an event that names none is a platform row."""
        return self.db.tenant_session(tenant_id) if tenant_id else self.db.platform_session()

    def _mark_webhook(self, event_row_id: int, status: str, error: str, tenant_id: int | None) -> None:
        with self._webhook_session(tenant_id) as session:
            row = session.get(WebhookEvent, event_row_id)
            row.status, row.attempts, row.last_error = status, row.attempts + 1, error[:500]
