"""Chat tables (metadata only: the messages themselves are in the message store) and view rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field

from backend.db import TenantOwned, utcnow


class ConversationKind(StrEnum):
    JOB = "job"  # a client and one professional, about one service request (and later its order)
    SUPPORT = "support"  # one user and the tenant's admins


class Conversation(TenantOwned, table=True):
    __tablename__ = "conversation"
    __table_args__ = (
        # One job conversation per (request, professional). Support rows have NULL request/pro,
        # and NULLs never collide in a unique constraint, so they are kept unique by the index below.
        sa.UniqueConstraint("tenant_id", "request_id", "pro_id", name="uq_conversation_job"),
        sa.Index("uq_conversation_support_user", "tenant_id", "client_id", unique=True,
                 postgresql_where=sa.text("kind = 'support'"), sqlite_where=sa.text("kind = 'support'")),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)
    request_id: int | None = Field(default=None, foreign_key="service_request.id", index=True)
    # job: the client; support: the user who asked for help (client or professional)
    client_id: int = Field(foreign_key="user_account.id", index=True)
    pro_id: int | None = Field(default=None, foreign_key="user_account.id", index=True)  # None for support
    order_id: int | None = Field(default=None, foreign_key="service_order.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    last_message_at: datetime | None = None


class ConversationRead(TenantOwned, table=True):
    """How far one participant has read one conversation (unread = messages from others after this)."""

    __tablename__ = "conversation_read"

    conversation_id: int = Field(foreign_key="conversation.id", primary_key=True)
    user_id: int = Field(foreign_key="user_account.id", primary_key=True)
    last_read_at: datetime = Field(default_factory=utcnow)


# ---------------------------------------------------------------- views (what the web layer gets)


@dataclass(frozen=True)
class AttachmentView:
    key: str
    name: str  # the uploader's file name, cleaned; display as text only
    content_type: str  # decided from the content, never from the name
    size: int
    url: str
    is_image: bool


@dataclass(frozen=True)
class MessageView:
    id: str
    conversation_id: int
    sender_id: int
    sender_name: str
    body: str  # exactly as written: data, never markup; render as text
    attachments: list[AttachmentView] = field(default_factory=list)
    created_at: str = ""  # ISO 8601, UTC
    mine: bool = False


@dataclass(frozen=True)
class ConversationRow:
    id: int
    kind: str
    title: str
    other_name: str
    other_id: int | None  # None: the tenant's support team (seen from the user's side)
    unread: int
    last_message_at: str  # ISO 8601, or "" before the first message
    order_id: int | None
    request_id: int | None
