"""Notification service: queue a message in the caller's transaction, deliver it in a job."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from sqlmodel import Session, select

from backend.identity import Caller, Role
from backend.crypto import SecretBox
from backend.db import Database, utcnow
from backend.errors import PermissionDenied
from backend.notifications.models import (ONE_TIME_TOKEN, SENT_TOKEN_TEXT, Channel, DeliveryStatus,
                                          Notification)
from backend.notifications.ports import DeliveryError, DevMailbox, EmailSender

# Rows queued before one-time tokens were sealed (migration 0006) still carry `?token=<raw>` in their body: once
# such a message is sent, its token is redacted like the sealed ones.
_LEGACY_TOKEN_IN_LINK = re.compile(r"([?&]token=)[A-Za-z0-9_-]{20,}")

DEV_OUTBOX_ONLY = ("The dev outbox is a development tool: it exists only with ENVIRONMENT=development. "
                   "In production, emails go to their recipients only.")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutboxRow:
    id: int
    recipient: str
    subject: str
    body: str
    status: str
    attempts: int
    created_at: str


class NotificationService:
    """`dev_mailbox` is the embedded email channel's store (development only); without it there is no outbox page."""

    def __init__(self, db: Database, email: EmailSender, secrets: SecretBox, *,
                 dev_mailbox: DevMailbox | None = None):
        self.db = db
        self.email = email
        self.secrets = secrets
        self.dev_mailbox = dev_mailbox

    def queue_email(self, session: Session, *, recipient: str, subject: str, body: str,
                    user_id: int | None = None, one_time_token: str = "") -> Notification:
        """Add the message inside the caller's transaction (the outbox pattern).
        The caller enqueues delivery after commit, so a rolled-back use case sends nothing.

        A message carrying a one-time token (a verification or reset link) writes ONE_TIME_TOKEN in its body where
        the token goes and passes the token here: it is stored sealed and erased once the email channel took it."""
        if one_time_token and ONE_TIME_TOKEN not in body:
            raise ValueError("the body must show where the one-time token goes")
        note = Notification(user_id=user_id, recipient=recipient, subject=subject, body=body,
                            sealed_token=self.secrets.seal(one_time_token) if one_time_token else "")
        session.add(note)
        session.flush()
        return note

    def deliver(self, tenant_id: int, notification_id: int) -> str:
        """Idempotent: a message already sent is not sent again. Raises DeliveryError
        (after recording the failed attempt) so that the job retries."""
        failure: DeliveryError | None = None
        with self.db.tenant_session(tenant_id) as session:
            note = session.exec(
                select(Notification).where(Notification.id == notification_id).with_for_update()
            ).first()
            if note is None:
                log.warning("notification %s not found in tenant %s", notification_id, tenant_id)
                return "missing"
            if note.status == DeliveryStatus.SENT:
                return "already-sent"
            note.attempts += 1
            try:
                note.provider_id = self.email.send(
                    recipient=note.recipient, subject=note.subject, body=self._body_to_send(note),
                    message_id=f"t{tenant_id}-n{note.id}",
                )
                note.status = DeliveryStatus.SENT
                note.sent_at = utcnow()
                note.sealed_token = ""  # handed over: nothing usable stays at rest
                note.body = _LEGACY_TOKEN_IN_LINK.sub(rf"\1{SENT_TOKEN_TEXT}", note.body)
            except DeliveryError as exc:
                note.last_error = str(exc)[:500]
                note.status = DeliveryStatus.FAILED
                failure = exc
        if failure is not None:
            raise failure
        return "sent"

    def _body_to_send(self, note: Notification) -> str:
        if not note.sealed_token:
            return note.body
        token = self.secrets.open(note.sealed_token)
        if token is None:  # SECRET_KEY changed since it was queued: the link could never work, so don't send it
            raise DeliveryError("The one-time link in this message can no longer be opened (was SECRET_KEY "
                                "changed?); the user has to ask for a new one.")
        return note.body.replace(ONE_TIME_TOKEN, token)

    def in_app(self, tenant_id: int, user_id: int, text: str) -> None:
        """An in-app notification (e.g. a chat message while the recipient was away)."""
        with self.db.tenant_session(tenant_id) as session:
            session.add(Notification(user_id=user_id, channel=Channel.IN_APP, recipient=f"user:{user_id}",
                                     subject="New message", body=text[:2000], status=DeliveryStatus.SENT,
                                     sent_at=utcnow()))

    def recent_in_app(self, actor: Caller, *, limit: int = 10) -> list[OutboxRow]:
        if actor is None or actor.tenant_id is None:
            raise PermissionDenied("Please log in first.")
        with self.db.tenant_session(actor.tenant_id) as session:
            rows = session.exec(select(Notification).where(Notification.user_id == actor.id,
                                                           Notification.channel == Channel.IN_APP)
                                .order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit)).all()
            return [OutboxRow(id=n.id, recipient=n.recipient, subject=n.subject, body=n.body, status=n.status,
                              attempts=n.attempts, created_at=n.created_at.strftime("%Y-%m-%d %H:%M"))
                    for n in rows]

    def outbox(self, actor: Caller, *, limit: int = 100) -> list[OutboxRow]:
        """Development only: this marketplace's emails as the embedded channel delivered them (links included), so
        a developer can follow them. Nowhere else does a page show other users' email bodies."""
        if self.dev_mailbox is None:
            raise PermissionDenied(DEV_OUTBOX_ONLY)
        if actor is None or actor.role != Role.ADMIN:
            raise PermissionDenied("Only the marketplace admin can read the outbox.")
        with self.db.tenant_session(actor.tenant_id) as session:
            rows = session.exec(
                select(Notification).where(Notification.channel != Channel.IN_APP)
                .order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit)
            ).all()
            return [
                OutboxRow(id=n.id, recipient=n.recipient, subject=n.subject, body=self._outbox_body(n),
                          status=n.status, attempts=n.attempts, created_at=n.created_at.strftime("%Y-%m-%d %H:%M"))
                for n in rows
            ]

    def _outbox_body(self, note: Notification) -> str:
        delivered = self.dev_mailbox.read(note.provider_id) if note.provider_id else None
        if delivered is not None:
            return delivered
        return note.body.replace(ONE_TIME_TOKEN, SENT_TOKEN_TEXT if note.status == DeliveryStatus.SENT
                                 else "[one-time link, added when sent]")
