"""Short-lived signed URLs for objects the app serves itself (the embedded store).

The signature is an HMAC-SHA256 over the key and the expiry time, with a key derived from SECRET_KEY for this one
purpose (so a signature can never be replayed as another kind of token). Changing SECRET_KEY invalidates every URL.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote, urlencode

from backend.crypto import derive_key


class UrlSigner:
    def __init__(self, secret: str, *, prefix: str = "/api/v1/files"):
        self._key = derive_key(secret, "object-url")
        self.prefix = prefix

    def _mac(self, key: str, expires: int) -> str:
        return hmac.new(self._key, f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def sign(self, key: str, seconds: int, *, now: float | None = None) -> str:
        # Rounded up to the minute: a page that lists an object twice (or re-renders) gets the same URL, so the
        # browser does not fetch it again; the lifetime is `seconds` plus at most a minute.
        expires = -(-(int(now if now is not None else time.time()) + seconds) // 60) * 60
        query = urlencode({"expires": expires, "signature": self._mac(key, expires)})
        return f"{self.prefix}/{quote(key)}?{query}"

    def valid(self, key: str, expires: int, signature: str, *, now: float | None = None) -> bool:
        if expires < (now if now is not None else time.time()):
            return False
        return hmac.compare_digest(self._mac(key, expires), signature or "")
