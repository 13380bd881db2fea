"""Order service tables: service requests, quotes, orders and their audit trail."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field

from backend.db import TenantOwned, utcnow


class RequestStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"  # a quote was accepted, or the client closed it
    EXPIRED = "expired"


class QuoteStatus(StrEnum):
    SENT = "sent"
    WITHDRAWN = "withdrawn"
    DECLINED = "declined"  # another quote was accepted, or the request closed
    ACCEPTED = "accepted"


class OrderState(StrEnum):
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    PAID = "paid"
    IN_PROGRESS = "in_progress"
    DELIVERED = "delivered"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    DISPUTED = "disputed"
    RESOLVED = "resolved"



class ServiceRequest(TenantOwned, table=True):
    __tablename__ = "service_request"
    # the open requests of a tenant by category and place (the admin's supply and demand), without reading the
    # far more numerous closed ones
    __table_args__ = (sa.Index("ix_service_request_open", "tenant_id", "category_id", "city", "id",
                               postgresql_where=sa.text("status = 'open'"), sqlite_where=sa.text("status = 'open'")),)

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="user_account.id", index=True)
    category_id: int = Field(foreign_key="category.id", index=True)
    title: str = Field(max_length=120)
    description: str = Field(max_length=4000)
    city: str = Field(max_length=80)
    latitude: float | None = None
    longitude: float | None = None
    budget_min_minor: int = 0
    budget_max_minor: int = 0
    currency: str = Field(max_length=3)
    preferred_start: date | None = None
    preferred_end: date | None = None
    photo_keys: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    status: str = Field(default=RequestStatus.OPEN, max_length=16, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


class Quote(TenantOwned, table=True):
    __table_args__ = (sa.UniqueConstraint("request_id", "pro_id", name="uq_quote_request_pro"),)

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="service_request.id", index=True)
    pro_id: int = Field(foreign_key="user_account.id", index=True)
    price_minor: int
    currency: str = Field(max_length=3)
    message: str = Field(max_length=2000)
    duration_hours: int
    valid_until: date
    status: str = Field(default=QuoteStatus.SENT, max_length=16)
    created_at: datetime = Field(default_factory=utcnow)


class LeadDecline(TenantOwned, table=True):
    """A professional hid a lead from their inbox."""

    __tablename__ = "lead_decline"

    request_id: int = Field(foreign_key="service_request.id", primary_key=True)
    pro_id: int = Field(foreign_key="user_account.id", primary_key=True)
    created_at: datetime = Field(default_factory=utcnow)


class Order(TenantOwned, table=True):
    __tablename__ = "service_order"

    id: int | None = Field(default=None, primary_key=True)
    client_id: int = Field(foreign_key="user_account.id", index=True)
    pro_id: int = Field(foreign_key="user_account.id", index=True)
    # unique: one request yields at most one order, however many accept clicks race
    request_id: int | None = Field(default=None, foreign_key="service_request.id", unique=True)
    quote_id: int | None = Field(default=None, foreign_key="quote.id", unique=True)
    title: str = Field(max_length=120)
    price_minor: int
    currency: str = Field(max_length=3)
    platform_fee_minor: int
    scheduled_for: date | None = None
    state: str = Field(default=OrderState.REQUESTED, max_length=16, index=True)
    invoice_key: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    state_changed_at: datetime = Field(default_factory=utcnow, index=True)


class OrderEvent(TenantOwned, table=True):
    """Audit trail: one row per applied transition."""

    __tablename__ = "order_event"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="service_order.id", index=True)
    action: str = Field(max_length=32)
    from_state: str = Field(default="", max_length=16)
    to_state: str = Field(max_length=16)
    actor_id: int | None = None  # None = the system (timers)
    actor_role: str = Field(max_length=16)
    note: str = Field(default="", max_length=500)
    at: datetime = Field(default_factory=utcnow)


class LeadMatch(TenantOwned, table=True):
    """Instant match: a professional chosen for a new request when it was posted (the tenant's top N by the
    matching service's ranking), notified first, their lead marked "Matched to you" and listed first."""

    __tablename__ = "lead_match"
    __table_args__ = (sa.UniqueConstraint("request_id", "pro_id", name="uq_lead_match_request_pro"),)

    id: int | None = Field(default=None, primary_key=True)
    request_id: int = Field(foreign_key="service_request.id", index=True)
    pro_id: int = Field(foreign_key="user_account.id", index=True)
    rank: int  # 1 = the best match
    score: float  # the ranking's best-match score when matched
    why: str = Field(default="", max_length=200)  # ranking.why at the time: "4.8★ from 37 reviews · 3 km away"
    created_at: datetime = Field(default_factory=utcnow)
