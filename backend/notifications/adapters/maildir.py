"""Embedded email delivery (development only): a local Maildir under ./data/outbox, read by the dev outbox page.

Nothing leaves the machine, yet the message is really built (RFC 5322, multipart/alternative with the plain-text and
HTML bodies and the same headers SendGrid would get) and stored, so what a developer reads in the outbox is what the
provider would have been given. Bootstrap picks this channel only with ENVIRONMENT=development.
"""

from __future__ import annotations

import mailbox
from email.headerregistry import Address
from email.message import EmailMessage, Message
from pathlib import Path

from backend.notifications.ports import OutgoingEmail

DEV_SENDER = "no-reply@marketplace.localhost"


class MaildirEmailSender:
    def __init__(self, directory: Path, sender: str = DEV_SENDER):
        directory.parent.mkdir(parents=True, exist_ok=True)
        self._maildir = mailbox.Maildir(directory, create=True)
        self._sender = sender

    def send(self, email: OutgoingEmail) -> str:
        return self._maildir.add(self._message(email))

    def _message(self, email: OutgoingEmail) -> EmailMessage:
        msg = EmailMessage()
        user, _, domain = self._sender.partition("@")
        msg["From"] = Address(display_name=email.sender_name, username=user, domain=domain)
        msg["To"] = email.recipient
        msg["Subject"] = email.subject
        msg["Message-ID"] = f"<{email.reference}@{domain}>"
        for name, value in email.headers.items():
            msg[name] = value
        msg.set_content(email.text)
        if email.html:
            msg.add_alternative(email.html, subtype="html")
        return msg

    def read(self, provider_id: str) -> str | None:
        """The text body (the outbox page shows text); messages stored before HTML existed are single-part."""
        try:
            message = self._maildir.get_message(provider_id)
        except KeyError:
            return None
        part = _text_part(message)
        if part is None:
            return ""
        payload = part.get_payload(decode=True) or b""
        return payload.decode(part.get_content_charset() or "utf-8", errors="replace")

    def read_html(self, provider_id: str) -> str | None:
        """The HTML body ("" for a text-only message), for a preview of the branded layout."""
        try:
            message = self._maildir.get_message(provider_id)
        except KeyError:
            return None
        part = next((p for p in message.walk() if p.get_content_type() == "text/html"), None)
        if part is None:
            return ""
        payload = part.get_payload(decode=True) or b""
        return payload.decode(part.get_content_charset() or "utf-8", errors="replace")


def _text_part(message: Message) -> Message | None:
    return next((part for part in message.walk() if part.get_content_type() == "text/plain"), None)
