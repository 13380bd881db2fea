"""What the chat service needs from the outside: a message store and a presence service."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from backend.errors import DomainError

UNAVAILABLE_MESSAGE = "Messages can't be saved right now. Please try again."


class StoreUnavailable(DomainError):
    """The message store cannot be reached (or refused the operation). Safe to show to the user;
    the vendor error is chained as `__cause__` for the logs."""

    def __init__(self, message: str = UNAVAILABLE_MESSAGE):
        super().__init__(message)


class MessageStore(Protocol):
    """Message history. Documents are plain dicts:
    {id: str, tenant_id, conversation_id, sender_id, body, attachments: [{key, name, content_type, size}],
     created_at: aware UTC datetime}.

    Every query names the tenant; every method raises StoreUnavailable when the store fails.
    Order is (created_at, id): ids break ties between messages created in the same millisecond.
    """

    def insert(self, doc: dict[str, Any]) -> str:
        """Persist one message; return its id. Raises StoreUnavailable when it was not persisted."""
        ...

    def get(self, tenant_id: int, conversation_id: int, message_id: str) -> dict[str, Any] | None:
        """One message of that conversation, or None (unknown or malformed id, other conversation/tenant)."""
        ...

    def latest(self, tenant_id: int, conversation_id: int, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` messages, oldest first."""
        ...

    def before(self, tenant_id: int, conversation_id: int, before_created_at: datetime, before_id: str,
               limit: int) -> list[dict[str, Any]]:
        """The newest `limit` messages strictly older than (before_created_at, before_id), oldest first."""
        ...

    def count_after(self, tenant_id: int, conversation_id: int, after: datetime | None,
                    exclude_sender: int) -> int:
        """Messages newer than `after` (all when None) not sent by `exclude_sender`."""
        ...

    def first_after(self, tenant_id: int, conversation_id: int, after: datetime | None,
                    exclude_sender: int) -> dict[str, Any] | None:
        """The oldest message newer than `after` (any when None) not sent by `exclude_sender`, or None: the first
        one a participant has not seen (a message digest is keyed by when it came)."""
        ...

    def delete(self, tenant_id: int, message_id: str) -> None:
        """Remove one message (moderation, tests); a missing id does nothing."""
        ...

    def ping(self) -> bool:
        """True when the store answers (health checks); never raises."""
        ...


class Presence(Protocol):
    """Short-lived facts: who is online, who is typing, how fast someone is sending.

    Best effort by contract: an implementation whose backend is down returns the safe default
    (nobody online, nobody typing, message allowed) instead of raising, so chat keeps working.
    """

    def touch(self, tenant_id: int, user_id: int) -> None:
        """Mark the user online for about 30 seconds (clients call this on a heartbeat)."""
        ...

    def online(self, tenant_id: int, user_ids: Iterable[int]) -> set[int]:
        """The subset of `user_ids` seen in the last ~30 seconds."""
        ...

    def set_typing(self, tenant_id: int, conversation_id: int, user_id: int) -> None:
        """The user is typing in the conversation, for about 5 seconds."""
        ...

    def typing(self, tenant_id: int, conversation_id: int) -> set[int]:
        """Users typing in the conversation now."""
        ...

    def allow_message(self, tenant_id: int, user_id: int, limit: int = 20, window_s: int = 10) -> bool:
        """Count one message attempt; False when the user sent more than `limit` in the window
        (a fixed window that starts with the first message of a burst)."""
        ...
