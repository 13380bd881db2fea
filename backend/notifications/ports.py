from __future__ import annotations

from typing import Protocol


class DeliveryError(Exception):
    """A provider could not take the message now; the job retries with backoff."""


class EmailSender(Protocol):
    def send(self, *, recipient: str, subject: str, body: str, message_id: str) -> str:
        """Hand the message to the provider; return the provider's id for it."""
        ...


class DevMailbox(Protocol):
    """The embedded email channel's mailbox (development only), read by the dev outbox page."""

    def read(self, provider_id: str) -> str | None:
        """The delivered message's text body, or None if there is no such message."""
        ...


class JobQueue(Protocol):
    def deliver_notification(self, tenant_id: int, notification_id: int) -> None:
        """Schedule delivery. Called only after the row is committed."""
        ...
