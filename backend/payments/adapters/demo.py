"""Demo gateway: the embedded default, so the whole order flow runs offline with test cards.

Behaves like a provider: keeps its own records (table demo_charge, in its own transactions),
honours idempotency keys, and answers test cards the way Stripe's test mode does.
"""

from __future__ import annotations

import secrets
from datetime import date

from sqlmodel import select

from backend.db import Database
from backend.payments.models import DemoCharge
from backend.payments.ports import CardDetails, PaymentDeclined

TEST_CARDS = {
    "4242424242424242": None,  # succeeds
    "4000000000000002": "Your card was declined.",
    "4000000000009995": "Your card has insufficient funds.",
}


def _digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())


class DemoGateway:
    name = "demo"

    def __init__(self, db: Database):
        self.db = db

    def hold(self, *, tenant_id: int, order_id: int, amount_minor: int, currency: str, card: CardDetails | None,
             idempotency_key: str) -> str:
        if card is None:
            raise PaymentDeclined("Enter a card to pay.")
        number = _digits(card.number)
        if number not in TEST_CARDS:
            raise PaymentDeclined("This is a demo marketplace: use test card 4242 4242 4242 4242.")
        today = date.today()
        if not (1 <= card.exp_month <= 12) or (card.exp_year, card.exp_month) < (today.year, today.month):
            raise PaymentDeclined("Your card has expired.")
        if not (card.cvc.isdigit() and len(card.cvc) in (3, 4)):
            raise PaymentDeclined("Your card's security code is invalid.")
        if TEST_CARDS[number]:
            raise PaymentDeclined(TEST_CARDS[number])
        with self.db.tenant_session(tenant_id) as session:
            existing = session.exec(select(DemoCharge).where(DemoCharge.hold_key == idempotency_key)).first()
            if existing is not None:
                return existing.reference  # a retried hold returns the first result, charging once
            charge = DemoCharge(reference=f"demo_t{tenant_id}_{secrets.token_hex(8)}", hold_key=idempotency_key,
                                order_id=order_id, amount_minor=amount_minor, currency=currency,
                                card_last4=number[-4:])
            session.add(charge)
            return charge.reference

    def _update(self, reference: str, idempotency_key: str, change) -> None:
        # The reference names its tenant (demo_t<id>_...), as a provider account would.
        try:
            tenant_id = int(reference.split("_")[1].removeprefix("t"))
        except (IndexError, ValueError):
            raise PaymentDeclined("Unknown payment reference.") from None
        with self.db.tenant_session(tenant_id) as session:
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

    def release(self, *, reference: str, payee_id: int, amount_minor: int, idempotency_key: str) -> None:
        def change(c: DemoCharge) -> None:
            if c.status != "captured" or c.released_minor + c.refunded_minor + amount_minor > c.captured_minor:
                raise PaymentDeclined("Nothing left to release on this payment.")
            c.released_minor += amount_minor

        self._update(reference, idempotency_key, change)

    def refund(self, *, reference: str, amount_minor: int, idempotency_key: str) -> None:
        def change(c: DemoCharge) -> None:
            if c.status == "held":
                c.status = "voided"
                c.refunded_minor = amount_minor
                return
            if c.status not in ("captured", "refunded") or (
                    c.released_minor + c.refunded_minor + amount_minor > c.captured_minor):
                raise PaymentDeclined("This payment cannot be refunded.")
            c.refunded_minor += amount_minor
            c.status = "refunded"

        self._update(reference, idempotency_key, change)
