"""Web push: what a browser hands us when a user turns notifications on for a device, checked at the boundary, and
the message the service worker shows.

A subscription is `PushSubscription.toJSON()` from the browser: {"endpoint": <the push service URL for this
device>, "keys": {"p256dh": <P-256 public key>, "auth": <16-byte secret>}, "expirationTime": ...}. We later POST
to that endpoint from the server, so the endpoint is where a request forgery would aim: in production it must be
https on one of the browsers' push services (`PUSH_SERVICES`), never an address of ours; outside production a local
push service on the loopback interface (the tests' fake) is accepted too.

The payload is the shape the service worker (assets/sw.js) reads, and nothing else:
{"title", "body", "url", "tag"}: `showNotification(title, {body, tag, data: {url}})`, and a click opens `url`.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec

from backend.errors import ValidationFailed

MAX_ENDPOINT = 2000
MAX_LABEL = 80
MAX_DEVICES = 10  # per user: subscribing an 11th device drops the one that went longest without a message
P256_POINT_BYTES = 65  # an uncompressed P-256 point: 0x04 || x || y
AUTH_SECRET_BYTES = 16
# The push services of the browsers (host, or parent domain after a dot): Chrome, Edge, Opera, Samsung Internet
# (Firebase Cloud Messaging), Firefox (Mozilla autopush), Edge on Windows (WNS), Safari (Apple).
PUSH_SERVICES = ("fcm.googleapis.com", "android.googleapis.com", "push.services.mozilla.com",
                 "notify.windows.com", "push.apple.com")
_LOOPBACK_NAMES = ("localhost",)
PAYLOAD_KEYS = ("title", "body", "url", "tag")


@dataclass(frozen=True)
class ParsedSubscription:
    endpoint: str
    p256dh: str  # base64url, no padding
    auth: str  # base64url, no padding


@dataclass(frozen=True)
class PushDevice:
    """A device on which the user turned notifications on, as their account page lists it."""
    id: int
    label: str
    created_at: str  # ISO 8601, UTC
    last_used_at: str  # ISO 8601, UTC; "" = nothing sent to it yet
    endpoint: str  # lets the page tell which row is the browser it runs in (the user's own data)


def parse_subscription(data: Any, *, allow_loopback: bool) -> ParsedSubscription:
    """The browser's subscription, or ValidationFailed naming each bad field ("subscription", "endpoint",
    "p256dh", "auth"). `allow_loopback`: also accept http(s)://127.0.0.1, ::1 or localhost (development and tests)."""
    if not isinstance(data, Mapping):
        raise ValidationFailed({"subscription": "The browser sent no push subscription."})
    errors: dict[str, str] = {}
    endpoint = data.get("endpoint")
    endpoint_error = _endpoint_error(endpoint, allow_loopback=allow_loopback)
    if endpoint_error:
        errors["endpoint"] = endpoint_error
    keys = data.get("keys")
    keys = keys if isinstance(keys, Mapping) else {}
    p256dh, p256dh_error = _key(keys.get("p256dh"), "p256dh", P256_POINT_BYTES)
    if not p256dh_error:
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _b64decode(p256dh))
        except ValueError:
            p256dh_error = "The browser's p256dh key is not a point on the P-256 curve."
    if p256dh_error:
        errors["p256dh"] = p256dh_error
    auth, auth_error = _key(keys.get("auth"), "auth", AUTH_SECRET_BYTES)
    if auth_error:
        errors["auth"] = auth_error
    if errors:
        raise ValidationFailed(errors)
    return ParsedSubscription(endpoint=endpoint, p256dh=p256dh, auth=auth)


def _endpoint_error(endpoint: Any, *, allow_loopback: bool) -> str:
    if not isinstance(endpoint, str) or not endpoint:
        return "The subscription has no endpoint."
    if len(endpoint) > MAX_ENDPOINT:
        return f"The endpoint is longer than {MAX_ENDPOINT} characters."
    if any(c.isspace() or ord(c) < 32 for c in endpoint):
        return "The endpoint is not a valid URL."
    try:
        parts = urlsplit(endpoint)
        port = parts.port
    except ValueError:
        return "The endpoint is not a valid URL."
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.username is not None or parts.password is not None or parts.fragment or not host:
        return "The endpoint is not a valid push service URL."
    if allow_loopback and _is_loopback(host) and parts.scheme in ("http", "https"):
        return ""
    if parts.scheme != "https":
        return "The endpoint must be an https URL."
    if port not in (None, 443) or not any(host == s or host.endswith("." + s) for s in PUSH_SERVICES):
        return (f"{host} is not a browser push service we send to. Turn notifications on in Chrome, Edge, "
                "Firefox or Safari.")
    return ""


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _key(value: Any, name: str, size: int) -> tuple[str, str]:
    """(the key as unpadded base64url, "") or ("", what is wrong with it)."""
    if not isinstance(value, str) or not value.strip():
        return "", f"The subscription has no {name} key."
    text = value.strip().rstrip("=")
    if len(text) > 2 * size or any(c not in _B64URL for c in text):
        return "", f"The {name} key must be base64url."
    try:
        raw = _b64decode(text)
    except (binascii.Error, ValueError):
        return "", f"The {name} key must be base64url."
    if len(raw) != size:
        return "", f"The {name} key must be {size} bytes, not {len(raw)}."
    return text, ""


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def clean_label(label: str) -> str:
    """The device's name as the account page shows it ("Chrome on Android"): one line, at most 80 characters."""
    text = " ".join("".join(c if c.isprintable() else " " for c in (label or "")).split())
    return text[:MAX_LABEL] or "This browser"


def push_payload(*, title: str, body: str, url: str, tag: str) -> bytes:
    """The JSON the service worker reads: exactly {"title", "body", "url", "tag"}."""
    return json.dumps({"title": title, "body": body, "url": url, "tag": tag}, ensure_ascii=False,
                      separators=(",", ":")).encode()
