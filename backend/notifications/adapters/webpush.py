"""The web push channel with `pywebpush`: VAPID (RFC 8292) to say who sends, the payload encrypted to the browser's
keys (RFC 8291, aes128gcm), POSTed to the device's push service (RFC 8030).

Errors are sorted for the delivery job: 404/410 mean the browser dropped the subscription (SubscriptionGone: the
device is removed), 429 and 5xx, timeouts and unreachable services are transient (DeliveryError: retried with
backoff), any other answer is a refusal of this message (PermanentDeliveryError with the service's reason).
Redirects are not followed: a push service answers, it does not send us elsewhere.
"""

from __future__ import annotations

import base64
import re
import time
from urllib.parse import urlsplit

import requests
from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid
from pywebpush import WebPusher, WebPushException

from backend.notifications.ports import DeliveryError, PermanentDeliveryError, PushMessage, SubscriptionGone

TOO_MANY_REQUESTS = 429
GONE = (404, 410)
ACCEPTED = (200, 201, 202)
MAX_REASON = 500
CLAIMS_LIFETIME = 12 * 3600  # the JWT's exp: push services refuse more than 24 hours
_SUBJECT = re.compile(r"^(mailto:[^@\s]+@[^@\s]+|https://[^\s]+)$")
_TOPIC = re.compile(r"^[A-Za-z0-9_-]{1,32}$")  # RFC 8030: the URL-safe base64 alphabet, at most 32 characters


class WebPushSender:
    """`private_key`: the VAPID private key, base64url of the raw 32-byte P-256 scalar (what `web-push
    generate-vapid-keys` and `vapid --gen` print) or of its DER. `public_key`, when given, must be its public half
    (a mismatch would have every browser subscribe with a key our messages are not signed with). `subject`: a
    mailto: or https: contact the push services may use to reach the operator."""

    def __init__(self, private_key: str, subject: str, *, public_key: str = "", timeout: float = 10.0):
        if not private_key:
            raise ValueError("Web push needs a VAPID private key (VAPID_PRIVATE_KEY).")
        try:
            self._vapid = Vapid.from_string(private_key.strip())
        except Exception as exc:  # noqa: BLE001 - py_vapid raises whatever its decoder does
            raise ValueError("VAPID_PRIVATE_KEY is not a P-256 private key (base64url, raw 32 bytes or DER).") \
                from exc
        point = self._vapid.public_key.public_bytes(serialization.Encoding.X962,
                                                    serialization.PublicFormat.UncompressedPoint)
        self._public_key = base64.urlsafe_b64encode(point).decode().rstrip("=")
        if public_key and public_key.strip().rstrip("=") != self._public_key:
            raise ValueError("VAPID_PUBLIC_KEY is not the public half of VAPID_PRIVATE_KEY.")
        if not _SUBJECT.match(subject or ""):
            raise ValueError(f"VAPID_SUBJECT must be a mailto: address or an https: URL, not {subject!r}.")
        if timeout <= 0:
            raise ValueError("The web push timeout must be positive.")
        self._subject = subject
        self._timeout = timeout
        self._http = requests.Session()
        self._http.max_redirects = 0

    @property
    def public_key(self) -> str:
        return self._public_key

    def send(self, message: PushMessage) -> str:
        """Returns the push service's Location for the message ("" if it gave none)."""
        parts = urlsplit(message.endpoint)
        claims = {"sub": self._subject, "aud": f"{parts.scheme}://{parts.netloc}",
                  "exp": int(time.time()) + CLAIMS_LIFETIME}
        headers = {**self._vapid.sign(claims), "Urgency": "normal"}
        if _TOPIC.match(message.reference):
            headers["Topic"] = message.reference
        subscription = {"endpoint": message.endpoint, "keys": {"p256dh": message.p256dh, "auth": message.auth}}
        try:
            response = WebPusher(subscription, requests_session=self._http).send(
                message.payload, headers, ttl=message.ttl, content_encoding="aes128gcm", timeout=self._timeout)
        except WebPushException as exc:  # the subscription's keys could not be used
            raise PermanentDeliveryError(f"The push could not be encrypted: {exc.message}"[:MAX_REASON]) from exc
        except requests.TooManyRedirects as exc:
            raise PermanentDeliveryError("The push service redirected the message; redirects are not followed.") \
                from exc
        except requests.RequestException as exc:  # refused, DNS, TLS, timeout
            raise DeliveryError(f"The push service could not be reached: {type(exc).__name__}: {exc}"[:MAX_REASON]) \
                from exc
        status = response.status_code
        if status in ACCEPTED:
            return response.headers.get("Location", "")
        reason = f"{status} {response.reason or ''}".strip() + (f": {_text(response)}" if _text(response) else "")
        if status in GONE:
            raise SubscriptionGone(f"The push service answered {reason}: this device's subscription expired or was "
                                   f"revoked."[:MAX_REASON])
        if status == TOO_MANY_REQUESTS or status >= 500:
            raise DeliveryError(f"The push service answered {reason}"[:MAX_REASON])
        raise PermanentDeliveryError(f"The push service refused the message: {reason}"[:MAX_REASON])

    def close(self) -> None:
        self._http.close()


def _text(response: requests.Response) -> str:
    return " ".join((response.text or "").split())[:300]


def generate_keys() -> tuple[str, str]:
    """A new VAPID key pair: (private key as base64url of the raw 32 bytes, public key as base64url of the
    uncompressed point). Bootstrap makes one for development; `make`-free for operators:
    `python -c "from backend.notifications.adapters.webpush import generate_keys; print(generate_keys())"`."""
    vapid = Vapid()
    vapid.generate_keys()
    scalar = vapid.private_key.private_numbers().private_value.to_bytes(32, "big")
    point = vapid.public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return (base64.urlsafe_b64encode(scalar).decode().rstrip("="),
            base64.urlsafe_b64encode(point).decode().rstrip("="))
