from __future__ import annotations

import secrets
from typing import Protocol

# Kinds of object that are public by nature (shown to anyone who can see the profile): served by a plain, cacheable
# URL. Every other kind (invoices, chat attachments, request photos, anything added later) is private: served only
# after an authorization check, through a short-lived signed URL. Private is the default for a new kind.
PUBLIC_KINDS = frozenset({"avatars", "portfolio"})


def new_key(tenant_id: int, kind: str, suffix: str = "") -> str:
    """A fresh, unguessable key `t<tenant>/<kind>/<128 random bits><suffix>`."""
    return validate_key(f"t{tenant_id}/{kind}/{secrets.token_urlsafe(16)}{suffix}")


def is_public(key: str) -> bool:
    parts = key.split("/")
    return len(parts) >= 3 and parts[0].startswith("t") and parts[1] in PUBLIC_KINDS


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
    """Files (avatars, portfolios, request photos, chat attachments, invoices) by key.

    Every method raises KeyError for a key that `validate_key` refuses, and StorageError when the store itself fails.
    """

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> tuple[bytes, str]:
        """Return (data, content_type); raise KeyError when missing."""
        ...

    def url(self, key: str) -> str:
        """A lasting URL for a public object (`is_public(key)`); raises KeyError for any other key."""
        ...

    def signed_url(self, key: str) -> str:
        """A URL that opens this one object for a few minutes (SIGNED_URL_SECONDS), for a caller whose right to it
        was just checked.

        Responses to it are `Cache-Control: private, no-store`. Any key may be signed (private or public)."""
        ...

    def open_signed(self, key: str, expires: int, signature: str) -> tuple[bytes, str]:
        """Serve a URL minted by `signed_url` that comes back to the app; raise KeyError when the signature is
        wrong, the URL expired or the object is missing. Stores whose signed URLs bypass the app (S3 presigned
        URLs) refuse everything here."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; deleting a missing key does nothing."""
        ...
