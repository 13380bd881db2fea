"""Notification service: queue a message in the caller's transaction, deliver it in a job."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlmodel import Session, select

from backend.accounts.models import Actor, Role
from backend.db import Database, utcnow
from backend.errors import PermissionDenied
from backend.notifications.models import Channel, DeliveryStatus, Notification
from backend.notifications.ports import DeliveryError, EmailSender

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
    def __init__(self, db: Database, email: EmailSender):
        self.db = db
        self.email = email

    @staticmethod
    def queue_email(session: Session, *, recipient: str, subject: str, body: str,
                    user_id: int | None = None) -> Notification:
        """Add the message inside the caller's transaction (the outbox pattern).
        The caller enqueues delivery after commit, so a rolled-back use case sends nothing."""
        note = Notification(user_id=user_id, recipient=recipient, subject=subject, body=body)
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
                    recipient=note.recipient, subject=note.subject, body=note.body,
                    message_id=f"t{tenant_id}-n{note.id}",
                )
                note.status = DeliveryStatus.SENT
                note.sent_at = utcnow()
            except DeliveryError as exc:
                note.last_error = str(exc)[:500]
                note.status = DeliveryStatus.FAILED
                failure = exc
        if failure is not None:
            raise failure
        return "sent"

    def in_app(self, tenant_id: int, user_id: int, text: str) -> None:
        """An in-app notification (e.g. a chat message while the recipient was away)."""
        with self.db.tenant_session(tenant_id) as session:
            session.add(Notification(user_id=user_id, channel=Channel.IN_APP, recipient=f"user:{user_id}",
                                     subject="New message", body=text[:2000], status=DeliveryStatus.SENT,
                                     sent_at=utcnow()))

    def recent_in_app(self, actor: Actor, *, limit: int = 10) -> list[OutboxRow]:
        if actor is None or actor.tenant_id is None:
            raise PermissionDenied("Please log in first.")
        with self.db.tenant_session(actor.tenant_id) as session:
            rows = session.exec(select(Notification).where(Notification.user_id == actor.id,
                                                           Notification.channel == Channel.IN_APP)
                                .order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit)).all()
            return [OutboxRow(id=n.id, recipient=n.recipient, subject=n.subject, body=n.body, status=n.status,
                              attempts=n.attempts, created_at=n.created_at.strftime("%Y-%m-%d %H:%M"))
                    for n in rows]

    def outbox(self, actor: Actor, *, limit: int = 100) -> list[OutboxRow]:
        if actor.role != Role.ADMIN:
            raise PermissionDenied("Only the marketplace admin can read the outbox.")
        with self.db.tenant_session(actor.tenant_id) as session:
            rows = session.exec(
                select(Notification).where(Notification.channel != Channel.IN_APP)
                .order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit)
            ).all()
            return [
                OutboxRow(id=n.id, recipient=n.recipient, subject=n.subject, body=n.body, status=n.status,
                          attempts=n.attempts, created_at=n.created_at.strftime("%Y-%m-%d %H:%M"))
                for n in rows
            ]
