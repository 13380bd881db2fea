"""Embedded email delivery (development only): a local Maildir under ./data/outbox, read by the dev outbox page.

Nothing leaves the machine, yet the message is really built (RFC 5322) and stored, so
what an admin reads in the outbox is exactly what SendGrid would have been given.
"""

from __future__ import annotations

import mailbox
from email.message import EmailMessage
from pathlib import Path


class MaildirEmailSender:
    def __init__(self, directory: Path, sender: str = "no-reply@marketplace.localhost"):
        directory.parent.mkdir(parents=True, exist_ok=True)
        self._maildir = mailbox.Maildir(directory, create=True)
        self._sender = sender

    def send(self, *, recipient: str, subject: str, body: str, message_id: str) -> str:
        msg = EmailMessage()
        msg["From"] = self._sender
        msg["To"] = recipient
        msg["Subject"] = subject
        msg["Message-ID"] = f"<{message_id}@marketplace.localhost>"
        msg.set_content(body)
        return self._maildir.add(msg)

    def read(self, provider_id: str) -> str | None:
        try:
            message = self._maildir.get_message(provider_id)
        except KeyError:
            return None
        return message.get_payload(decode=True).decode(message.get_content_charset() or "utf-8")
