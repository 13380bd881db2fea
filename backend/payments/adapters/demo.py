"""Demo gateway: the embedded default, so the whole flow runs offline with Stripe-style test cards.

It behaves like a provider: a hosted checkout page (served by this app at /pay/demo/<session>),
its own records (table demo_charge, in its own transactions), idempotency keys honoured, and
test cards answered the way Stripe's test mode does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from datetime import date

from sqlmodel import select

from backend.db import Database
from backend.payments.models import DemoCharge
from backend.payments.ports import (
    SESSION_PLACEHOLDER, Authorization, CheckoutRequest, CheckoutSession, PaymentDeclined, PaymentEvent, PayoutAccount,
    WebhookInvalid,
)

TEST_CARDS = {
    "4242424242424242": None,  # succeeds
    "4000000000000002": "Your card was declined.",
    "4000000000009995": "Your card has insufficient funds.",
}


def _digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())


def _tenant_of(token: str) -> int:
    """Ids name their tenant (demo_cs_t<id>_..., demo_pi_t<id>_...), as a provider account would."""
    try:
        return int(token.split("_")[2].removeprefix("t"))
    except (IndexError, ValueError):
        raise PaymentDeclined("Unknown payment reference.") from None


class DemoGateway:
    name = "demo"

    def __init__(self, db: Database, secret: str):
        self.db = db
        self._secret = secret.encode()

    # ------------------------------------------------------------------ checkout

    def start_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        with self.db.tenant_session(request.tenant_id) as session:
            charge = session.exec(select(DemoCharge).where(DemoCharge.checkout_key == request.idempotency_key)).first()
            if charge is None:
                session_id = f"demo_cs_t{request.tenant_id}_{secrets.token_hex(8)}"
                charge = DemoCharge(session_id=session_id, checkout_key=request.idempotency_key,
                                    order_id=request.order_id, amount_minor=request.amount_minor,
                                    currency=request.currency, description=request.description[:200],
                                    success_url=request.success_url.replace(SESSION_PLACEHOLDER, session_id),
                                    cancel_url=request.cancel_url)
                session.add(charge)
            return CheckoutSession(session_id=charge.session_id, redirect_url=f"/pay/demo/{charge.session_id}")

    def session_details(self, session_id: str) -> DemoCharge:
        """For the hosted page: what is being paid, and where to go afterwards."""
        with self.db.tenant_session(_tenant_of(session_id)) as session:
            charge = session.exec(select(DemoCharge).where(DemoCharge.session_id == session_id)).first()
            if charge is None:
                raise PaymentDeclined("This checkout does not exist or has expired.")
            session.expunge(charge)
            return charge

    def pay_hosted(self, session_id: str, *, number: str, exp_month: int, exp_year: int, cvc: str) -> str:
        """The hosted page's Pay button: authorise the card, return where to send the payer."""
        digits = _digits(number)
        if digits not in TEST_CARDS:
            raise PaymentDeclined("Test mode: use 4242 4242 4242 4242, or a decline test card.")
        today = date.today()
        if not (1 <= exp_month <= 12) or (exp_year, exp_month) < (today.year, today.month):
            raise PaymentDeclined("Your card has expired.")
        if not (cvc.isdigit() and len(cvc) in (3, 4)):
            raise PaymentDeclined("Your card's security code is invalid.")
        if TEST_CARDS[digits]:
            raise PaymentDeclined(TEST_CARDS[digits])
        with self.db.tenant_session(_tenant_of(session_id)) as session:
            charge = session.exec(select(DemoCharge).where(DemoCharge.session_id == session_id)
                                  .with_for_update()).first()
            if charge is None:
                raise PaymentDeclined("This checkout does not exist or has expired.")
            if charge.status == "open":
                charge.status = "held"
                charge.card_last4 = digits[-4:]
                charge.reference = f"demo_pi_t{_tenant_of(session_id)}_{secrets.token_hex(8)}"
            return charge.success_url

    def confirm_checkout(self, session_id: str, *, idempotency_key: str) -> Authorization | None:
        charge = self.session_details(session_id)
        if charge.status == "open":
            return None
        return Authorization(reference=charge.reference, amount_minor=charge.amount_minor, currency=charge.currency)

    # ------------------------------------------------------------------ money after checkout

    def _update(self, reference: str, idempotency_key: str, change) -> None:
        with self.db.tenant_session(_tenant_of(reference)) as session:
            charge = session.exec(select(DemoCharge).where(DemoCharge.reference == reference)
                                  .with_for_update()).first()
            if charge is None:
                raise PaymentDeclined("Unknown payment reference.")
            if idempotency_key in charge.applied_keys:
                return
            change(charge)
            charge.applied_keys = [*charge.applied_keys, idempotency_key]

    def capture(self, *, reference: str, amount_minor: int, idempotency_key: str) -> None:
        def change(c: DemoCharge) -> None:
            if c.status != "held" or amount_minor > c.amount_minor:
                raise PaymentDeclined("This payment cannot be captured.")
            c.status, c.captured_minor = "captured", amount_minor

        self._update(reference, idempotency_key, change)

    def transfer(self, *, reference: str, payee_account: str, amount_minor: int, transfer_group: str,
                 idempotency_key: str) -> str:
        def change(c: DemoCharge) -> None:
            if c.captured_minor - c.refunded_minor - c.released_minor < amount_minor:
                raise PaymentDeclined("Nothing left to release on this payment.")
            c.released_minor += amount_minor

        self._update(reference, idempotency_key, change)
        return f"demo_tr_{hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]}"

    def refund(self, *, reference: str, amount_minor: int, captured: bool, idempotency_key: str) -> str:
        def change(c: DemoCharge) -> None:
            if not captured:
                if c.status != "held":
                    raise PaymentDeclined("This payment cannot be voided.")
                c.status, c.refunded_minor = "voided", amount_minor
                return
            if c.captured_minor - c.refunded_minor - c.released_minor < amount_minor:
                raise PaymentDeclined("This payment cannot be refunded by that much.")
            c.refunded_minor += amount_minor
            c.status = "refunded" if c.refunded_minor == c.captured_minor else c.status

        self._update(reference, idempotency_key, change)
        return f"demo_re_{hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]}"

    # ------------------------------------------------------------------ webhooks and payouts

    def sign(self, payload: bytes) -> str:
        return hmac.new(self._secret, payload, hashlib.sha256).hexdigest()

    def parse_webhook(self, payload: bytes, headers: dict[str, str]) -> PaymentEvent:
        signature = next((v for k, v in headers.items() if k.lower() == "demo-signature"), "")
        if not signature or not hmac.compare_digest(signature, self.sign(payload)):
            raise WebhookInvalid("Bad signature.")
        try:
            data = json.loads(payload)
            return PaymentEvent(provider=self.name, event_id=str(data["id"]), kind=data["kind"],
                                session_id=data.get("session_id", ""), reference=data.get("reference", ""),
                                tenant_id=data.get("tenant_id"), order_id=data.get("order_id"))
        except (ValueError, KeyError, TypeError):
            raise WebhookInvalid("Unreadable event.") from None

    def payout_account(self, *, pro_id: int, email: str, existing: str, return_url: str,
                       refresh_url: str) -> PayoutAccount:
        return PayoutAccount(account_id=existing or f"demo_acct_{pro_id}", onboarding_url="")
