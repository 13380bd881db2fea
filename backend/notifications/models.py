"""Notification service tables: every message is a row first (outbox), delivered by a job."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field

from backend.db import TenantOwned, utcnow


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    IN_APP = "in_app"  # shown in the app; delivered by being stored


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Notification(TenantOwned, table=True):
    id: int | None = Field(default=None, primary_key=True)
    user_id: int | None = Field(default=None, foreign_key="user_account.id", index=True)
    channel: str = Field(default=Channel.EMAIL, max_length=8)
    recipient: str = Field(max_length=254)
    subject: str = Field(max_length=200)
    body: str
    status: str = Field(default=DeliveryStatus.PENDING, max_length=16, index=True)
    attempts: int = 0
    last_error: str = Field(default="", max_length=500)
    provider_id: str = Field(default="", max_length=120)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    sent_at: datetime | None = None
