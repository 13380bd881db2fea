from __future__ import annotations

from typing import Protocol


class ObjectStore(Protocol):
    """Files (avatars now; portfolios, attachments and invoices later) by key."""

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> tuple[bytes, str]:
        """Return (data, content_type); raise KeyError when missing."""
        ...

    def url(self, key: str) -> str:
        """A URL the browser can fetch the object from."""
        ...
