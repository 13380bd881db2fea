"""The email channel when no provider is configured outside development: every delivery fails, loudly.

There is deliberately no fallback to the dev mailbox (it would keep users' one-time links on the server's disk,
readable by whoever reads the disk). The failed rows stay in the outbox table and are retried once a provider is
configured.
"""

from __future__ import annotations

from backend.notifications.ports import DeliveryError

NOT_CONFIGURED = ("No email provider is configured, so this email was not sent. Configure the email provider "
                  "(see the README's configuration table); the dev outbox exists only with ENVIRONMENT=development.")


class UnconfiguredEmailSender:
    def send(self, *, recipient: str, subject: str, body: str, message_id: str) -> str:
        raise DeliveryError(NOT_CONFIGURED)
