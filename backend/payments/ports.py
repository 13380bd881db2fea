"""Payment port: what the order lifecycle asks of a payment provider.

Every call carries an idempotency key derived from (order, transition), so a retry after a
timeout never charges twice. Adapters map provider errors to these domain errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from backend.errors import DomainError


class PaymentDeclined(DomainError):
    """The payer's card or account refused; nothing was charged."""


class PaymentUnavailable(DomainError):
    """The provider could not be reached or failed; safe to retry with the same idempotency key."""


@dataclass(frozen=True)
class CardDetails:
    """Only the demo gateway ever sees card data; real providers use their hosted pages."""

    number: str
    exp_month: int
    exp_year: int
    cvc: str


class PaymentGateway(Protocol):
    name: str

    def hold(self, *, tenant_id: int, order_id: int, amount_minor: int, currency: str, card: CardDetails | None,
             idempotency_key: str) -> str:
        """Authorise the client's money into escrow; return the provider's payment reference."""
        ...

    def capture(self, *, reference: str, amount_minor: int, idempotency_key: str) -> None:
        """Capture held funds (completion)."""
        ...

    def release(self, *, reference: str, payee_id: int, amount_minor: int, idempotency_key: str) -> None:
        """Pay the professional their share of captured funds."""
        ...

    def refund(self, *, reference: str, amount_minor: int, idempotency_key: str) -> None:
        """Return money to the client: voids an uncaptured hold, refunds a capture."""
        ...
