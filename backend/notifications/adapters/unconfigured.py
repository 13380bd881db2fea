"""The email and SMS channels when no provider is configured outside development: every delivery fails, loudly.

There is deliberately no fallback to the dev mailbox or the dev SMS outbox (they would keep users' one-time links and
phone codes on the server's disk, readable by whoever reads the disk). The rows stay pending in the outbox table
(DeliveryError is transient) and go out once a provider is configured.
"""

from __future__ import annotations

from backend.notifications.ports import DeliveryError, OutgoingEmail, OutgoingSms

NOT_CONFIGURED = ("No email provider is configured, so this email was not sent. Configure the email provider "
                  "(see the README's configuration table); the dev outbox exists only with ENVIRONMENT=development.")
SMS_NOT_CONFIGURED = ("No SMS provider is configured, so this text was not sent. Configure Twilio (TWILIO_ACCOUNT_SID, "
                      "TWILIO_AUTH_TOKEN and a sender; see the README's configuration table); the dev SMS outbox "
                      "exists only with ENVIRONMENT=development.")


class UnconfiguredEmailSender:
    def send(self, email: OutgoingEmail) -> str:
        raise DeliveryError(NOT_CONFIGURED)


class UnconfiguredSmsSender:
    def send(self, sms: OutgoingSms) -> str:
        raise DeliveryError(SMS_NOT_CONFIGURED)
