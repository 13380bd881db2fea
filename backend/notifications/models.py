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


ONE_TIME_TOKEN = "{one_time_token}"
SENT_TOKEN_TEXT = "[one-time link, removed once sent]"


class Notification(TenantOwned, table=True):
    id: int | None = Field(default=None, primary_key=True)
    user_id: int | None = Field(default=None, foreign_key="user_account.id", index=True)
    channel: str = Field(default=Channel.EMAIL, max_length=8)
    recipient: str = Field(max_length=254)
    subject: str = Field(max_length=200)
    # The body as written, except that a one-time link's token stands as ONE_TIME_TOKEN; the token itself waits in
    # `sealed_token`, encrypted with a key derived from SECRET_KEY, until the email channel has taken the message,
    # and is then erased: a retry can still send it, but no usable token stays at rest afterwards.
    body: str
    sealed_token: str = Field(default="", max_length=400)
    status: str = Field(default=DeliveryStatus.PENDING, max_length=16, index=True)
    attempts: int = 0
    last_error: str = Field(default="", max_length=500)
    provider_id: str = Field(default="", max_length=120)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    sent_at: datetime | None = None
