"""What the notification service needs from the outside world: channels (email, SMS, web push), their dev stand-ins, provider
status reports, the people it writes to (`Contacts`) and the job queue.

Adapters live in `adapters/` and only `backend.bootstrap` picks them; the service sees these Protocols alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from sqlmodel import Session


class DeliveryError(Exception):
    """Transient: the provider could not take it now (5xx, 429, timeout, connection); the job retries with backoff.

    `retry_in`: when `NotificationService.deliver` re-raises it, the seconds until the row's own next_attempt_at
    (the backoff it stored, which the sweeper also goes by), so that the job's retry is scheduled for when the row is
    due rather than on a clock of its own. None when a channel raises it (the row has not been updated yet)."""

    retry_in: float | None = None


class PermanentDeliveryError(Exception):
    """The provider refused this message for good (4xx other than 429): never retried; str(exc) is the provider's
    reason. `opted_out`: the recipient told the carrier to stop our texts (replied STOP; Twilio error 21610), so
    no text goes to that number until its owner verifies it again."""

    def __init__(self, *args: object, opted_out: bool = False):
        super().__init__(*args)
        self.opted_out = opted_out


# ---------------------------------------------------------------------------------------------------------------
# Email
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OutgoingEmail:
    recipient: str
    subject: str
    text: str
    html: str
    reference: str  # our id for the row, f"t{tenant_id}-n{notification_id}": Message-ID, custom arg
    headers: Mapping[str, str] = field(default_factory=dict)  # e.g. List-Unsubscribe, List-Unsubscribe-Post
    sender_name: str = ""  # the marketplace's name, shown as the From name
    category: str = ""  # the event value (SendGrid category)


class EmailSender(Protocol):
    def send(self, email: OutgoingEmail) -> str:
        """Hand the message to the provider; return the provider's id for it.
        Raises DeliveryError (try again later) or PermanentDeliveryError (never)."""
        ...


class DevMailbox(Protocol):
    """The embedded email channel's mailbox (development only), read by the dev outbox page."""

    def read(self, provider_id: str) -> str | None:
        """The delivered message's text body, or None if there is no such message."""
        ...


# ---------------------------------------------------------------------------------------------------------------
# SMS
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OutgoingSms:
    to: str  # E.164
    body: str
    reference: str  # f"t{tenant_id}-n{notification_id}"
    status_callback: str = ""  # absolute URL the provider posts status to ("" = none)


class SmsSender(Protocol):
    def send(self, sms: OutgoingSms) -> str:
        """Hand the text to the provider; return its id (Twilio's message sid).
        Raises DeliveryError (try again later) or PermanentDeliveryError (never)."""
        ...


@dataclass(frozen=True)
class DevSms:
    provider_id: str
    to: str
    body: str
    created_at: str  # ISO 8601, UTC


class DevSmsBox(Protocol):
    """The embedded SMS channel's outbox (development only): where a developer reads the phone code."""

    def messages(self, to: str | None = None, limit: int = 50) -> list[DevSms]:
        """The texts sent (to `to` only, if given), newest first."""
        ...


# ---------------------------------------------------------------------------------------------------------------
# Web push
# ---------------------------------------------------------------------------------------------------------------

class SubscriptionGone(PermanentDeliveryError):
    """The push service answered 404 or 410: the browser dropped this subscription (the user revoked the permission,
    cleared the site's data, or it expired). Nothing will ever reach it again: the device is removed."""


@dataclass(frozen=True)
class PushMessage:
    endpoint: str  # the push service URL of one device (PushSubscription.endpoint)
    p256dh: str  # the browser's P-256 public key, base64url: what the payload is encrypted to (RFC 8291)
    auth: str  # the browser's 16-byte auth secret, base64url
    payload: bytes  # UTF-8 JSON {"title", "body", "url", "tag"} (push.push_payload): what the service worker shows
    reference: str  # f"t{tenant_id}-n{notification_id}": also the Topic, so a retry replaces a copy still queued
    ttl: int = 24 * 3600  # seconds the push service keeps it for a device that is offline


class PushSender(Protocol):
    """Sends to a browser's push service (RFC 8030) with VAPID (RFC 8292), the payload encrypted (RFC 8291)."""

    @property
    def public_key(self) -> str:
        """The VAPID public key, base64url (uncompressed P-256 point): the browser's `applicationServerKey`."""
        ...

    def send(self, message: PushMessage) -> str:
        """Hand the message to the push service; return its id for it (the Location it answered, or "").
        Raises SubscriptionGone (404/410), DeliveryError (429, 5xx, timeout: try again later) or
        PermanentDeliveryError (any other refusal)."""
        ...


# ---------------------------------------------------------------------------------------------------------------
# Provider status reports (webhooks)
# ---------------------------------------------------------------------------------------------------------------

class StatusKind(StrEnum):
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    FAILED = "failed"


@dataclass(frozen=True)
class StatusUpdate:
    reference: str  # f"t{tenant}-n{id}" ("" when the provider did not echo it: then provider_id decides)
    provider_id: str
    kind: StatusKind
    reason: str = ""
    hard_bounce: bool = False  # email: the address does not exist (SendGrid "bounce" with type "bounce")
    recipient: str = ""
    opted_out: bool = False  # SMS: the recipient replied STOP (Twilio error 21610): no more texts to the number


# ---------------------------------------------------------------------------------------------------------------
# Recipients and jobs
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Contact:
    user_id: int
    email: str
    name: str
    role: str
    phone: str = ""  # VERIFIED E.164 only ("" otherwise)
    email_verified: bool = False
    time_zone: str = ""  # IANA name ("America/New_York"); "" = unknown: quiet hours are then kept in UTC


class Contacts(Protocol):
    """Who the service writes to; implemented by accounts (which sits above notifications)."""

    def contacts(self, session: Session, user_ids: Sequence[int]) -> dict[int, Contact]:
        """The active users among `user_ids` in the session's tenant, by id (unknown or inactive ones are absent)."""
        ...

    def admins(self, session: Session) -> list[int]:
        """The ids of the session's tenant's active admins."""
        ...


class JobQueue(Protocol):
    def deliver_notification(self, tenant_id: int, notification_id: int) -> None:
        """Schedule delivery. Called only after the row is committed."""
        ...


_REFERENCE = re.compile(r"t([1-9][0-9]{0,17})-n([1-9][0-9]{0,17})")


def format_reference(tenant_id: int, notification_id: int) -> str:
    """The id a provider echoes back in its status reports: f"t{tenant_id}-n{notification_id}"."""
    return f"t{tenant_id}-n{notification_id}"


def parse_reference(reference: str) -> tuple[int, int] | None:
    """"t3-n42" -> (3, 42); anything else (it comes from a webhook: untrusted until the signature passed) -> None."""
    match = _REFERENCE.fullmatch(reference or "")
    return (int(match.group(1)), int(match.group(2))) if match else None
