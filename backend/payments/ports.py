"""Payment port: what the marketplace asks of a payment provider (Stripe, PayPal, the demo gateway).

Money never passes through our servers as card data: checkout is always the provider's hosted page.
Every call that moves money carries an idempotency key derived from (order, transition), so a retry
after a timeout or a 5xx never charges twice. Adapters map provider errors to the domain errors below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from sqlmodel import Session

from backend.errors import DomainError

# What every adapter tells the payer when its provider cannot be reached (PaymentUnavailable: retry is safe).
UNAVAILABLE = "The payment provider is not answering. Please try again."
# In CheckoutRequest.success_url; each adapter puts the provider's session id (or its own marker) in its place.
SESSION_PLACEHOLDER = "{SESSION_ID}"


class PaymentDeclined(DomainError):
    """The payer's card or account refused; nothing was charged."""


class PaymentUnavailable(DomainError):
    """The provider could not be reached or failed (timeout, 5xx); safe to retry with the same key."""


class WebhookInvalid(DomainError):
    """Bad signature, stale timestamp, or a payload we cannot read: answer 400, change nothing."""


@dataclass(frozen=True)
class CheckoutRequest:
    tenant_id: int
    order_id: int
    amount_minor: int  # always computed by the server from the order, never sent by the client
    currency: str
    description: str
    customer_email: str
    success_url: str  # the provider sends the payer back here; SESSION_PLACEHOLDER is replaced by the session id
    cancel_url: str
    idempotency_key: str


@dataclass(frozen=True)
class CheckoutSession:
    session_id: str
    redirect_url: str  # the provider's hosted page


@dataclass(frozen=True)
class Authorization:
    """Funds held for an order (Stripe: a PaymentIntent with manual capture; PayPal: an authorization)."""

    reference: str
    amount_minor: int
    currency: str


@dataclass(frozen=True)
class PaymentEvent:
    """A verified webhook, normalised across providers."""

    provider: str
    event_id: str  # the provider's id: processing is deduplicated on (provider, event_id)
    kind: Literal["checkout_completed", "payment_failed", "refunded", "payout_account_updated", "ignored"]
    session_id: str = ""
    reference: str = ""
    tenant_id: int | None = None
    order_id: int | None = None
    amount_minor: int = 0
    currency: str = ""


@dataclass(frozen=True)
class PayoutAccount:
    account_id: str
    onboarding_url: str  # where the professional completes onboarding (empty when nothing to do)


class PaymentGateway(Protocol):
    name: str  # "stripe" | "paypal" | "demo"

    def start_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        """Create the hosted checkout for an order (authorise only; capture happens at completion)."""
        ...

    def confirm_checkout(self, session_id: str, *, idempotency_key: str) -> Authorization | None:
        """After the payer returns (or a webhook says so): the held funds, or None if not (yet) approved.
        Idempotent: calling it twice returns the same authorization."""
        ...

    def capture(self, *, reference: str, amount_minor: int, idempotency_key: str) -> None:
        """Capture held funds into the platform account (order completed or dispute released)."""
        ...

    def transfer(self, *, reference: str, payee_account: str, amount_minor: int, transfer_group: str,
                 idempotency_key: str) -> str:
        """Send the professional's share of captured funds to their payout account (a payout); returns the
        transfer id. Not the escrow release, which is our own ledger moving escrow to the professional's payable."""
        ...

    def refund(self, *, reference: str, amount_minor: int, captured: bool, idempotency_key: str) -> str:
        """Give money back: cancels an uncaptured hold (void), or refunds part or all of a capture."""
        ...

    def parse_webhook(self, payload: bytes, headers: dict[str, str]) -> PaymentEvent:
        """Verify the signature and normalise the event; raise WebhookInvalid otherwise."""
        ...

    def payout_account(self, *, pro_id: int, email: str, existing: str, return_url: str,
                       refresh_url: str) -> PayoutAccount:
        """Create (or reuse) the professional's payout account and its onboarding link."""
        ...


# ---------------------------------------------------------------------------------------------- orders, seen from here
# Orders sit above payments: they pass an order in (PayableOrder), and bootstrap hands payments the read side
# (PayableOrders) and, for a webhook, the way back up (ConfirmCheckout). Payments never imports backend.orders.


@dataclass(frozen=True)
class PayableOrder:
    """An order as payments sees it: who pays whom, how much, for what. Built by backend.orders."""

    id: int
    tenant_id: int
    client_id: int
    pro_id: int
    title: str
    price_minor: int
    currency: str
    state: str = ""  # for the read models, shown as is
    state_changed_at: datetime | None = None
    settled: bool = False  # completed or resolved: what was released to the professional may be paid out
    has_invoice: bool = False


class PayableOrders(Protocol):
    """What payments reads about orders (payouts, earnings, payment history), in the caller's tenant session."""

    def find(self, session: Session, order_id: int, *, lock: bool = False) -> PayableOrder | None:
        """One order; lock=True holds its row until the transaction ends (as a transition does)."""
        ...

    def of_pro(self, session: Session, pro_id: int) -> list[PayableOrder]:
        """The professional's orders, most recent state change first."""
        ...

    def of_client(self, session: Session, client_id: int) -> list[PayableOrder]:
        """The client's orders."""
        ...

    def by_ids(self, session: Session, order_ids: list[int]) -> dict[int, PayableOrder]:
        """These orders by id (unknown ids are left out)."""
        ...


ConfirmCheckout = Callable[[int, str], object]
"""(tenant_id, session_id): a webhook says a checkout completed; orders confirm it (apply 'pay'). Passed to
process_webhook by its job, since confirming is an order transition and orders sit above payments."""
