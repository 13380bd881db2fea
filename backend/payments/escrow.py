"""Escrow: the money effects of order transitions (hold, release, refund), in the transition's own transaction.

Provider calls happen inside the database transaction that locks the order, and each carries an idempotency key
derived from (order, step): if the provider times out or fails, the transaction rolls back (order and ledger
unchanged) and a retry repeats the same keys, so nothing is charged twice. A step that gives money back (void,
refund) is also written down before the provider is called (backend/payments/steps.py).

"Release" here is escrow release: at completion, what is left in escrow moves (in our ledger) to the professional's
payable account minus the platform fee. Sending that share to the professional is a payout (payouts.py, the
gateway's `transfer`).
"""

from __future__ import annotations

from sqlmodel import Session, select

from backend.db import utcnow
from backend.errors import Conflict, DomainError, ValidationFailed
from backend.identity import TenantPublic
from backend.money import fee_for, format_money
from backend.payments import ledger as L
from backend.payments.gateways import Gateways
from backend.payments.ledger import Ledger, Line
from backend.payments.models import Payment, PaymentStatus
from backend.payments.ports import Authorization, PayableOrder, PaymentDeclined


def locked_payment(session: Session, order_id: int) -> Payment:
    payment = session.exec(select(Payment).where(Payment.order_id == order_id).with_for_update()).first()
    if payment is None:
        raise DomainError("This order has no payment.")
    return payment


class Escrow:
    def __init__(self, gateways: Gateways, ledger: Ledger):
        self.gateways = gateways
        self.ledger = ledger

    def hold(self, session: Session, tenant: TenantPublic, order: PayableOrder, authorization: Authorization | None,
             actor_id: int | None) -> None:
        if authorization is None:
            raise DomainError("Pay through the checkout page.")
        payment = locked_payment(session, order.id)
        if payment.status != PaymentStatus.CHECKOUT:
            raise Conflict("This order is already paid.")
        if authorization.currency.upper() != order.currency or authorization.amount_minor != order.price_minor:
            raise DomainError("The payment does not match the order (amount or currency); nothing was recorded.")
        payment.reference, payment.status = authorization.reference, PaymentStatus.AUTHORIZED
        payment.updated_at = utcnow()
        self.ledger.post(session, kind="hold", currency=order.currency, order_id=order.id, actor_id=actor_id,
                         idempotency_key=f"o{order.id}-hold", memo=f"{payment.provider} {authorization.reference}",
                         lines=[Line(L.client_funding(order.client_id), -order.price_minor),
                                Line(L.escrow(order.id), order.price_minor)])

    def held(self, session: Session, order: PayableOrder) -> int:
        """What is in the order's escrow now (what a release or a full refund would move)."""
        return self.ledger.balance(session, L.escrow(order.id), order.currency)

    def _ensure_captured(self, payment: Payment, order: PayableOrder) -> None:
        if payment.status == PaymentStatus.AUTHORIZED:
            self.gateways.named(payment.provider).capture(
                reference=payment.reference, amount_minor=payment.amount_minor,
                idempotency_key=f"t{order.tenant_id}-o{order.id}-capture")
            payment.status, payment.captured_minor = PaymentStatus.CAPTURED, payment.amount_minor

    def release(self, session: Session, tenant: TenantPublic, order: PayableOrder, actor_id: int | None,
                step: str = "release") -> int | None:
        """Completion: capture, and move what is left in escrow to the professional minus the platform fee.
        Returns that fee (the order records it), or None when nothing was left to release."""
        payment = locked_payment(session, order.id)
        remaining = self.ledger.balance(session, L.escrow(order.id), order.currency)
        if remaining <= 0:
            return None
        self._ensure_captured(payment, order)
        fee = fee_for(remaining, tenant.platform_fee_bps)
        self.ledger.post(session, kind="release", currency=order.currency, order_id=order.id, actor_id=actor_id,
                         idempotency_key=f"o{order.id}-{step}", memo=f"fee {tenant.platform_fee_bps / 100:g}%",
                         lines=[Line(L.escrow(order.id), -remaining),
                                Line(L.pro_payable(order.pro_id), remaining - fee), Line(L.platform_fees(), fee)])
        return fee

    def refund(self, session: Session, tenant: TenantPublic, order: PayableOrder, amount_minor: int | None,
               actor_id: int | None, step: str, reason: str = "") -> int:
        """Give escrowed money back (all of it when amount is None). Voids an untouched hold."""
        payment = locked_payment(session, order.id)
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
        gateway = self.gateways.named(payment.provider)
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
