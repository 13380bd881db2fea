from __future__ import annotations

from typing import Protocol


class StorageError(Exception):
    """The object store failed for a reason other than a missing key (outage, permissions, misconfiguration).

    `message` is safe to show to the user; the vendor error is chained as `__cause__` for the logs.
    """

    def __init__(self, message: str = "File storage is unavailable right now. Please try again later."):
        super().__init__(message)
        self.message = message


def validate_key(key: str) -> str:
    """Return `key` if every adapter can store it unambiguously; raise KeyError otherwise.

    Keys are relative, '/'-separated paths such as `t1/avatars/u7-ab12.jpg`. Refused: the empty key, a leading
    '/', empty, '.' or '..' segments (path traversal on disk, aliasing on S3), backslashes and control characters.
    """
    if not isinstance(key, str) or not key or key.startswith("/"):
        raise KeyError(key)
    if "\\" in key or any(ord(ch) < 32 or ord(ch) == 127 for ch in key):
        raise KeyError(key)
    if any(segment in ("", ".", "..") for segment in key.split("/")):
        raise KeyError(key)
    return key


class ObjectStore(Protocol):
    """Files (avatars now; portfolios, attachments and invoices later) by key.

    Every method raises KeyError for a key that `validate_key` refuses, and StorageError when the store itself fails.
    """

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> tuple[bytes, str]:
        """Return (data, content_type); raise KeyError when missing."""
        ...

    def url(self, key: str) -> str:
        """A URL the browser can fetch the object from."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; deleting a missing key does nothing."""
        ...
