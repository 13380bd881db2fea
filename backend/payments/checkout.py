"""Hosted checkout: the payment side of paying an order (the provider's page, then the funds it holds).

OrderService.start_checkout / confirm_checkout lead: they lock and check the order, then call these, and a held
payment becomes the order's 'pay' transition. The amount always comes from the order, never from the browser.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, select

from backend.config import Settings
from backend.db import Database, utcnow
from backend.errors import NotFound
from backend.identity import TenantPublic
from backend.payments.gateways import Gateways
from backend.payments.models import Payment, PaymentStatus
from backend.payments.ports import SESSION_PLACEHOLDER, Authorization, CheckoutRequest, PayableOrder
from backend.tenancy.hosts import tenant_url


@dataclass(frozen=True)
class CheckoutResult:
    """What the provider says about a checkout."""

    order_id: int
    authorization: Authorization | None  # the funds it holds, to book with 'pay'; None: not (yet) approved
    booked: bool = False  # confirmed before (a reload of the return page, or the webhook got there first)


class Checkout:
    def __init__(self, db: Database, settings: Settings, gateways: Gateways):
        self.db = db
        self.settings = settings
        self.gateways = gateways

    def start(self, session: Session, tenant: TenantPublic, order: PayableOrder, customer_email: str) -> str:
        """Open the provider's hosted page for this order (locked by the caller); returns its URL."""
        gateway = self.gateways.for_tenant(tenant)
        payment = session.exec(select(Payment).where(Payment.order_id == order.id)).first()
        if payment is not None and payment.provider != gateway.name:
            session.delete(payment)  # the tenant switched providers before this checkout finished
            session.flush()
            payment = None
        base = lambda path: tenant_url(self.settings.public_url, tenant.slug,  # noqa: E731
                                       self.settings.default_tenant, path)
        checkout = gateway.start_checkout(CheckoutRequest(
            tenant_id=tenant.id, order_id=order.id, amount_minor=order.price_minor, currency=order.currency,
            description=order.title, customer_email=customer_email,
            success_url=base(f"/orders/{order.id}?checkout={SESSION_PLACEHOLDER}"),
            cancel_url=base(f"/orders/{order.id}?checkout=cancelled"),
            idempotency_key=f"t{tenant.id}-o{order.id}-checkout-{gateway.name}"))
        if payment is None:
            session.add(Payment(order_id=order.id, provider=gateway.name, session_id=checkout.session_id,
                                amount_minor=order.price_minor, currency=order.currency))
        elif payment.status == PaymentStatus.CHECKOUT and payment.session_id != checkout.session_id:
            # the provider forgot our key (Stripe keeps them 24 h) and opened a new session: track that one
            payment.session_id, payment.updated_at = checkout.session_id, utcnow()
        return checkout.redirect_url

    def result(self, tenant: TenantPublic, session_id: str) -> CheckoutResult:
        """Ask the provider whether it holds the funds of this checkout (unless we booked them already)."""
        with self.db.tenant_session(tenant.id) as session:
            payment = session.exec(select(Payment).where(Payment.session_id == session_id)).first()
            if payment is None:
                raise NotFound("Unknown checkout.")
            order_id, provider, status = payment.order_id, payment.provider, payment.status
        if status != PaymentStatus.CHECKOUT:
            return CheckoutResult(order_id=order_id, authorization=None, booked=True)
        authorization = self.gateways.named(provider).confirm_checkout(
            session_id, idempotency_key=f"t{tenant.id}-o{order_id}-confirm")
        return CheckoutResult(order_id=order_id, authorization=authorization)

    @staticmethod
    def still_open(session: Session, session_id: str) -> bool:
        """Lock the checkout's payment: True while nothing was booked on it."""
        payment = session.exec(select(Payment).where(Payment.session_id == session_id).with_for_update()).first()
        return payment.status == PaymentStatus.CHECKOUT

    def void_late_hold(self, session: Session, tenant: TenantPublic, session_id: str,
                       authorization: Authorization) -> None:
        """The order moved on (expired, cancelled) while the payer was on the provider's page: the hold must not
        linger on the client's card. Call after still_open, in its transaction."""
        payment = session.exec(select(Payment).where(Payment.session_id == session_id)).first()
        self.gateways.named(payment.provider).refund(
            reference=authorization.reference, amount_minor=authorization.amount_minor, captured=False,
            idempotency_key=f"t{tenant.id}-o{payment.order_id}-void-late")
        payment.reference, payment.status = authorization.reference, PaymentStatus.VOIDED
        payment.updated_at = utcnow()
