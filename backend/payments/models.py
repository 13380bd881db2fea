"""Tables owned by the payment service. The double-entry ledger arrives with the payments issue."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field

from backend.db import TenantOwned, utcnow


class DemoCharge(TenantOwned, table=True):
    """The demo gateway's own record of a payment, as a provider would keep it."""

    __tablename__ = "demo_charge"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "hold_key", name="uq_demo_charge_hold_key"),)

    id: int | None = Field(default=None, primary_key=True)
    reference: str = Field(max_length=40, unique=True)
    hold_key: str = Field(max_length=120)
    order_id: int = Field(index=True)
    amount_minor: int
    currency: str = Field(max_length=3)
    card_last4: str = Field(max_length=4)
    status: str = Field(default="held", max_length=16)  # held | captured | voided | refunded
    captured_minor: int = 0
    released_minor: int = 0
    refunded_minor: int = 0
    applied_keys: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    created_at: datetime = Field(default_factory=utcnow)
