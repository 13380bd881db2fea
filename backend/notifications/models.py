"""Notification service tables: every message is a row first (outbox), delivered by a job.

One `Notification` row per (event, recipient, channel): written in the transaction that causes the event, so a
rolled-back use case sends nothing, and a committed one loses nothing (a lost enqueue is found again by
`NotificationService.due`). Preferences store only what differs from the catalogue's defaults; suppressions
stop email to an address that hard-bounced, and texts to a number that replied STOP.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field

from backend.db import TenantOwned, utcnow


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    IN_APP = "in_app"  # shown in the app; delivered by being stored
    PUSH = "push"  # web push to each device the user turned it on for (one row per device; see push.py)


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its job (first try or a retry after a transient error; see next_attempt_at)
    SENT = "sent"  # the provider took it (in-app rows: stored = sent)
    DELIVERED = "delivered"  # the provider's status webhook said delivered
    FAILED = "failed"  # permanent refusal (4xx), hard bounce, or retries exhausted; last_error says why
    SKIPPED = "skipped"  # never sent: address suppressed after a hard bounce, no verified phone...; last_error says why


# Rows in these states are never handed to a provider again.
FINAL_STATUSES = frozenset({DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.FAILED,
                            DeliveryStatus.SKIPPED})

ONE_TIME_TOKEN = "{one_time_token}"
SENT_TOKEN_TEXT = "[one-time link, removed once sent]"


class Notification(TenantOwned, table=True):
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "dedupe_key", name="uq_notification_dedupe"),
        sa.Index("ix_notification_inbox", "tenant_id", "user_id", "channel", "read_at"),
        sa.Index("ix_notification_due", "tenant_id", "status", "next_attempt_at"),
        sa.Index("ix_notification_provider", "tenant_id", "provider_id"),
        # Removing a device sets its rows' device_id to NULL: without an index that would scan every message.
        sa.Index("ix_notification_device", "device_id", postgresql_where=sa.text("device_id IS NOT NULL"),
                 sqlite_where=sa.text("device_id IS NOT NULL")),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int | None = Field(default=None, foreign_key="user_account.id", index=True)
    channel: str = Field(default=Channel.EMAIL, max_length=8)
    event: str = Field(default="", max_length=40)  # catalogue.Event value ("" for legacy queue_email rows)
    group: str = Field(default="", max_length=20)  # catalogue.Group value
    # f"{key}:{user_id}:{channel}": the same cause never makes a second row (NULL for legacy rows: no dedupe)
    dedupe_key: str | None = Field(default=None, max_length=200)
    recipient: str = Field(max_length=254)
    subject: str = Field(max_length=200)
    # The body as written, except that a one-time link's token stands as ONE_TIME_TOKEN; the token itself waits in
    # `sealed_token`, encrypted with a key derived from SECRET_KEY, until the channel has taken the message,
    # and is then erased: a retry can still send it, but no usable token stays at rest afterwards.
    body: str
    html_body: str = ""  # email only (the same placeholder rule as `body`)
    link: str = Field(default="", max_length=500)  # where the in-app item / email button points (path or URL)
    unsubscribe_url: str = Field(default="", max_length=600)  # email: the one-click link for (user, group, email)
    sealed_token: str = Field(default="", max_length=400)
    status: str = Field(default=DeliveryStatus.PENDING, max_length=16, index=True)
    attempts: int = 0
    last_error: str = Field(default="", max_length=500)
    provider_id: str = Field(default="", max_length=120)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    sent_at: datetime | None = None
    next_attempt_at: datetime | None = None  # not before this (quiet hours, retry backoff)
    delivered_at: datetime | None = None
    read_at: datetime | None = None  # in-app only
    # push only: the device (PushSubscription) this row goes to; NULL once that device is removed
    device_id: int | None = Field(default=None, foreign_key="push_subscription.id", ondelete="SET NULL")


class NotificationPreference(TenantOwned, table=True):
    """A user's choice for one (group, channel) cell of the matrix; only cells that differ from the default."""

    __tablename__ = "notification_preference"

    user_id: int = Field(foreign_key="user_account.id", primary_key=True)
    group: str = Field(max_length=20, primary_key=True)
    channel: str = Field(max_length=8, primary_key=True)
    enabled: bool
    updated_at: datetime = Field(default_factory=utcnow)


class EmailSuppression(TenantOwned, table=True):
    """A hard bounce: no email to this address (lower-case) until the user changes it."""

    __tablename__ = "email_suppression"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "email", name="uq_email_suppression_email"),)

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254)
    reason: str = Field(default="", max_length=300)
    created_at: datetime = Field(default_factory=utcnow)


class SmsSuppression(TenantOwned, table=True):
    """A number that replied STOP to our texts (Twilio error 21610): the carrier blocks our texts to it until its owner
    texts START, which we are not told of. No text goes to it (SKIPPED rows that say why) until the number is verified
    again with a texted code, which proves texts reach it.

    Asking for that code is the one way back: the first request after the STOP is refused with the advice to text
    START first (`start_advised_at` records it); from then on codes go out, and the carrier decides. A new STOP
    report starts over."""

    __tablename__ = "sms_suppression"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "phone", name="uq_sms_suppression_phone"),)

    id: int | None = Field(default=None, primary_key=True)
    phone: str = Field(max_length=16)  # E.164
    reason: str = Field(default="", max_length=300)
    created_at: datetime = Field(default_factory=utcnow)  # the latest STOP report
    start_advised_at: datetime | None = None


class PushSubscription(TenantOwned, table=True):
    """One device (a browser's push subscription) on which a user turned notifications on.

    What the browser's `PushSubscription.toJSON()` gave: the push service's `endpoint` (unique per marketplace: a
    browser that subscribes again, even for another user of the same marketplace, takes its row over) and the keys
    the messages are encrypted to (RFC 8291: the browser's P-256 public key `p256dh` and the 16-byte `auth` secret,
    both base64url). A push service answering 404/410 for it means the browser dropped it: the row is deleted."""

    __tablename__ = "push_subscription"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "endpoint", name="uq_push_subscription_endpoint"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user_account.id", index=True)
    endpoint: str = Field(max_length=2000)
    p256dh: str = Field(max_length=100)  # 65 bytes, base64url without padding: 87 characters
    auth: str = Field(max_length=40)  # 16 bytes, base64url without padding: 22 characters
    label: str = Field(default="", max_length=80)  # "Chrome on Android": how the device list names it
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None  # the last message the push service accepted for it
