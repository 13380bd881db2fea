"""The email channel when no provider is configured outside development: every delivery fails, loudly.

There is deliberately no fallback to the dev mailbox (it would keep users' one-time links on the server's disk,
readable by whoever reads the disk). The rows stay pending in the outbox table (DeliveryError is transient) and go
out once a provider is configured. (Without an SMS provider there is no SMS channel at all: bootstrap passes no
sender, and nobody is offered SMS.)
"""

from __future__ import annotations

from backend.notifications.ports import DeliveryError, OutgoingEmail

NOT_CONFIGURED = ("No email provider is configured, so this email was not sent. Configure the email provider "
                  "(see the README's configuration table); the dev outbox exists only with ENVIRONMENT=development.")


class UnconfiguredEmailSender:
    def send(self, email: OutgoingEmail) -> str:
        raise DeliveryError(NOT_CONFIGURED)
