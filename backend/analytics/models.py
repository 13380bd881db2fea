"""Analytics tables: rollups derived from the marketplace's raw rows, never written by anyone but `rollups.py`.

- `AnalyticsDaily`: one number per (day, metric, category, currency), the UTC day the fact happened. Money metrics
  carry their currency, counts carry "". Category 0 = not by category (signups) or an order without a request.
- `AnalyticsRequest`: one row per service request, updated as it moves on (quoted, hired, paid, completed): the
  funnel and the time to first quote.
- `AnalyticsFunnelDay`: the funnel summed per (request creation day, category) from `AnalyticsRequest`: a period's
  funnel reads a row per day and category instead of a row per request.
- `AnalyticsClientDay`: one row per client per day on which they paid for at least one order, with the client's
  signup day (cohorts group on it without reading the accounts) and their paid orders up to and including that day
  (repeat clients are then one pass over the period's rows).
- `AnalyticsActorDay`: one row per user per day on which they acted as a client (posted a request, acted on an order)
  or a professional (sent a quote, acted on an order): active users over a window are a DISTINCT over its days.
- `AnalyticsWatermark`: per (tenant, source table) the last source row id folded into the rollups, plus the
  tenant's rollup `generation` (source "generation"), which every refresh that recomputed something moves on.

Everything here can be dropped and rebuilt from the raw rows (`AnalyticsService.rebuild`).
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field

from backend.db import TenantOwned, utcnow


class AnalyticsDaily(TenantOwned, table=True):
    __tablename__ = "analytics_daily"
    # the unique key leads with (tenant_id, day): it is also the index every period query uses
    __table_args__ = (sa.UniqueConstraint("tenant_id", "day", "metric", "category_id", "currency",
                                          name="uq_analytics_daily"),)

    id: int | None = Field(default=None, primary_key=True)
    day: date
    metric: str = Field(max_length=32)
    category_id: int = 0
    currency: str = Field(default="", max_length=3)
    value: int = Field(sa_type=sa.BigInteger)


class AnalyticsRequest(TenantOwned, table=True):
    __tablename__ = "analytics_request"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "request_id", name="uq_analytics_request"),
                      sa.Index("ix_analytics_request_tenant_day", "tenant_id", "created_day"))

    id: int | None = Field(default=None, primary_key=True)
    request_id: int
    created_day: date
    category_id: int
    first_quote_seconds: int | None = None
    quoted: bool = False
    hired: bool = False
    paid: bool = False
    completed: bool = False


class AnalyticsFunnelDay(TenantOwned, table=True):
    __tablename__ = "analytics_funnel_day"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "day", "category_id", name="uq_analytics_funnel_day"),)

    id: int | None = Field(default=None, primary_key=True)
    day: date  # the requests' UTC creation day
    category_id: int
    requests: int
    quoted: int
    hired: int
    paid: int
    completed: int


class AnalyticsClientDay(TenantOwned, table=True):
    __tablename__ = "analytics_client_day"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "client_id", "day", name="uq_analytics_client_day"),
                      sa.Index("ix_analytics_client_day_tenant_day", "tenant_id", "day"))

    id: int | None = Field(default=None, primary_key=True)
    client_id: int
    day: date
    paid_orders: int
    signup_day: date | None = None  # the client's account's UTC creation day
    paid_to_date: int = 0  # the client's paid orders on this day and every day before
    # month keys (year * 12 + month - 1) of `day` and `signup_day`: cohorts group on them, no date arithmetic per row
    month: int = 0
    signup_month: int | None = None
    first_in_month: bool = False  # the client's first paying day of that month: cohorts count rows, not DISTINCT


class AnalyticsActorDay(TenantOwned, table=True):
    __tablename__ = "analytics_actor_day"
    # the unique key leads with (tenant_id, day): the index of the windows over days
    __table_args__ = (sa.UniqueConstraint("tenant_id", "day", "role", "user_id", name="uq_analytics_actor_day"),)

    id: int | None = Field(default=None, primary_key=True)
    day: date
    role: str = Field(max_length=16)
    user_id: int


class AnalyticsWatermark(TenantOwned, table=True):
    __tablename__ = "analytics_watermark"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "source", name="uq_analytics_watermark"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=32)
    last_id: int = Field(default=0, sa_type=sa.BigInteger)
    refreshed_at: datetime = Field(default_factory=utcnow)
