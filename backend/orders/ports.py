"""What orders need from services above them, as ports that bootstrap fills in (orders never import those)."""

from __future__ import annotations

from typing import Protocol

from sqlmodel import Session


class Conversations(Protocol):
    """Job conversations (chat), opened and carried over inside the quote's own transaction: a quote that rolls
    back leaves no conversation behind. Implemented by backend.chat.service.JobConversations."""

    def ensure_job_conversation(self, session: Session, tenant_id: int, *, client_id: int, pro_id: int,
                                request_id: int) -> int:
        """The job conversation of (request, professional), created if missing; returns its id."""
        ...

    def attach_order(self, session: Session, tenant_id: int, *, request_id: int, order_id: int) -> int:
        """Carry the accepted professional's conversation over to the new order; returns its id."""
        ...
