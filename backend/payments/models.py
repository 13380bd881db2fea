"""Payment service tables: the payment of each order, the double-entry ledger, payouts, webhooks,
and the demo gateway's own records."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from backend.db import TenantOwned, utcnow


class PaymentStatus(StrEnum):
    CHECKOUT = "checkout"  # hosted checkout started, not approved yet
    AUTHORIZED = "authorized"  # funds held (escrow)
    CAPTURED = "captured"
    VOIDED = "voided"


class Payment(TenantOwned, table=True):
    """One per order: which provider holds the money and how much of it has gone where."""

    __table_args__ = (sa.UniqueConstraint("provider", "session_id", name="uq_payment_session"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="service_order.id", unique=True)
    provider: str = Field(max_length=16)
    session_id: str = Field(max_length=120)
    reference: str = Field(default="", max_length=120)  # PaymentIntent / authorization id
    amount_minor: int
    currency: str = Field(max_length=3)
    status: str = Field(default=PaymentStatus.CHECKOUT, max_length=16)
    captured_minor: int = 0
    refunded_minor: int = 0
    released_minor: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class StepStatus(StrEnum):
    PENDING = "pending"  # written before the provider is called; the outcome is not booked (yet)
    DONE = "done"  # booked, in the same transaction that marked it done
    FAILED = "failed"  # refused (by the provider or the service): nothing moved


class PaymentStep(TenantOwned, table=True):
    """Write-ahead record of a step that gives money back (a cancel's void or refund, a dispute's refund or split,
    an admin's partial refund): voids and refunds cannot be taken back, so the provider's answer must never be lost
    on our side. The row is committed in its own transaction *before* the provider is called, and marked done in
    the transaction that books the outcome; a row left pending (timeout, lost answer, crash) is a step in doubt.
    Nothing else may happen to the order until the step is finished by replaying it with the same idempotency keys,
    to which providers answer what they did the first time (see OrderService.settle_payments)."""

    __tablename__ = "payment_step"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "order_id", "step", name="uq_payment_step"),)

    id: int | None = Field(default=None, primary_key=True)
    # No foreign key on purpose: the row is written while the step's own transaction holds the order row
    # FOR UPDATE, and a foreign-key check on service_order would wait for that lock (a deadlock).
    order_id: int = Field(index=True)
    step: str = Field(max_length=40)  # the idempotency step: "cancel", "resolve_split", "refund-2"...
    action: str = Field(max_length=24)  # what to replay: an order action, or "admin_refund"
    actor_id: int | None = None  # who asked (None: the system)
    actor_role: str = Field(default="", max_length=16)
    note: str = Field(default="", max_length=500)
    amount_minor: int | None = None  # the amount asked for (a split's refund, an admin refund); None: all
    status: str = Field(default=StepStatus.PENDING, max_length=16)
    attempts: int = 0
    last_error: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class LedgerAccount(TenantOwned, table=True):
    """An account per party and purpose, e.g. client:7:funding, escrow:order:12, platform:fees."""

    __tablename__ = "ledger_account"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "code", "currency", name="uq_ledger_account_code"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=80)
    kind: str = Field(max_length=24)  # client_funding | escrow | platform_fees | pro_payable | pro_paid_out | refunds
    party_id: int | None = None  # user id (client / professional) or order id (escrow)
    currency: str = Field(max_length=3)


class LedgerTransaction(TenantOwned, table=True):
    __tablename__ = "ledger_transaction"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "idempotency_key", name="uq_ledger_tx_key"),)

    id: int | None = Field(default=None, primary_key=True)
    order_id: int | None = Field(default=None, foreign_key="service_order.id", index=True)
    kind: str = Field(max_length=24)  # hold | release | refund | payout
    idempotency_key: str = Field(max_length=120)
    memo: str = Field(default="", max_length=500)
    actor_id: int | None = None
    created_at: datetime = Field(default_factory=utcnow)


class LedgerEntry(TenantOwned, table=True):
    """Signed amounts: positive = the account holds more. Every transaction sums to zero per currency."""

    __tablename__ = "ledger_entry"

    id: int | None = Field(default=None, primary_key=True)
    transaction_id: int = Field(foreign_key="ledger_transaction.id", index=True)
    account_id: int = Field(foreign_key="ledger_account.id", index=True)
    amount_minor: int
    currency: str = Field(max_length=3)


class Payout(TenantOwned, table=True):
    id: int | None = Field(default=None, primary_key=True)
    pro_id: int = Field(foreign_key="user_account.id", index=True)
    order_id: int = Field(foreign_key="service_order.id", unique=True)
    provider: str = Field(max_length=16)
    transfer_id: str = Field(max_length=120)
    amount_minor: int
    currency: str = Field(max_length=3)
    created_at: datetime = Field(default_factory=utcnow)


class PayoutAccountLink(TenantOwned, table=True):
    """The professional's account at each provider (Stripe Connect id, PayPal email)."""

    __tablename__ = "payout_account"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "pro_id", "provider", name="uq_payout_account"),)

    id: int | None = Field(default=None, primary_key=True)
    pro_id: int = Field(foreign_key="user_account.id", index=True)
    provider: str = Field(max_length=16)
    account_id: str = Field(max_length=254)
    created_at: datetime = Field(default_factory=utcnow)


class WebhookEvent(SQLModel, table=True):
    """Every verified provider event, once: replays are recognised by (provider, event_id).
    A platform table: an event names its tenant in metadata only after it is verified."""

    __tablename__ = "webhook_event"
    __table_args__ = (sa.UniqueConstraint("provider", "event_id", name="uq_webhook_event"),
                      # a marketplace's failed events (the admin's operations queue) without scanning every event
                      sa.Index("ix_webhook_event_tenant_status", "tenant_id", "status"))

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int | None = Field(default=None, foreign_key="tenant.id")
    provider: str = Field(max_length=16)
    event_id: str = Field(max_length=120)
    kind: str = Field(max_length=40)
    session_id: str = Field(default="", max_length=120)
    reference: str = Field(default="", max_length=120)
    order_id: int | None = None
    status: str = Field(default="received", max_length=16)  # received | processed | failed
    attempts: int = 0
    last_error: str = Field(default="", max_length=500)
    received_at: datetime = Field(default_factory=utcnow)


class DemoCharge(TenantOwned, table=True):
    """The demo gateway's own record of a hosted checkout and its money, as a provider would keep it."""

    __tablename__ = "demo_charge"

    id: int | None = Field(default=None, primary_key=True)
    session_id: str = Field(max_length=60, unique=True)
    reference: str = Field(default="", max_length=60, index=True)
    checkout_key: str = Field(max_length=120, unique=True)
    order_id: int = Field(index=True)
    amount_minor: int
    currency: str = Field(max_length=3)
    description: str = Field(default="", max_length=200)
    success_url: str = Field(max_length=500)
    cancel_url: str = Field(max_length=500)
    card_last4: str = Field(default="", max_length=4)
    status: str = Field(default="open", max_length=16)  # open | held | captured | voided | refunded
    captured_minor: int = 0
    released_minor: int = 0
    refunded_minor: int = 0
    applied_keys: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    created_at: datetime = Field(default_factory=utcnow)
