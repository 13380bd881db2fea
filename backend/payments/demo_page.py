"""The demo gateway's hosted checkout page (/pay/demo/<session>), served by this app in development: what is being
paid, and the card form (test cards only) parsed here rather than in the web layer."""

from __future__ import annotations

from dataclasses import dataclass

from backend.errors import ValidationFailed
from backend.money import format_money


@dataclass(frozen=True)
class DemoCheckoutView:
    amount: str
    description: str
    cancel_url: str


def checkout_view(gateway, session_id: str) -> DemoCheckoutView:
    """gateway: the demo gateway (Gateways.demo()); raises DomainError for an unknown or expired checkout."""
    charge = gateway.session_details(session_id)
    return DemoCheckoutView(amount=format_money(charge.amount_minor, charge.currency),
                            description=charge.description, cancel_url=charge.cancel_url)


def card_from_form(form: dict) -> dict:
    """The hosted page's fields (card_number, expiry as MM/YY or MM/YYYY, cvc) as the gateway's pay_hosted takes
    them. ValidationFailed({"expiry": ...}) when the expiry is not two numbers."""
    expiry = (form.get("expiry", "") or "").replace(" ", "")
    month, _, year = expiry.partition("/")
    if not (month.isdigit() and year.isdigit()):
        raise ValidationFailed({"expiry": "Use MM/YY"})
    return {"number": form.get("card_number", ""), "exp_month": int(month),
            "exp_year": 2000 + int(year) if len(year) == 2 else int(year), "cvc": form.get("cvc", "")}

