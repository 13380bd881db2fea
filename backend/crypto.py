"""Authenticated encryption for short secrets the app must hold for a moment (Fernet: AES-128-CBC + HMAC-SHA256).

Each use has its own key, derived from SECRET_KEY and a purpose label, so a value sealed for one purpose never opens
for another. Rotating SECRET_KEY makes every sealed value unreadable, which is the safe failure.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken


def derive_key(secret: str, purpose: str) -> bytes:
    """A 256-bit key for one purpose, derived from SECRET_KEY: signed file URLs, login tickets, sealed email tokens
    and the row-level-security tenant binding each get their own, so none can stand in for another."""
    if not secret or not purpose:
        raise ValueError("a secret and a purpose are required")
    return hmac.new(secret.encode(), f"marketplace/{purpose}/v1".encode(), hashlib.sha256).digest()


class SecretBox:
    def __init__(self, secret: str, purpose: str):
        self._fernet = Fernet(base64.urlsafe_b64encode(derive_key(secret, purpose)))

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, sealed: str, *, max_age_seconds: int | None = None) -> str | None:
        """The plaintext, or None when the value was tampered with, sealed for another purpose or key, or is
        older than `max_age_seconds`."""
        try:
            return self._fernet.decrypt(sealed.encode(), ttl=max_age_seconds).decode()
        except (InvalidToken, ValueError, TypeError):
            return None
