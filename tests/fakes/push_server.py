"""A local stand-in for a browser push service (RFC 8030), and the browser's side of a subscription.

A real push service is unreachable here, so this one does what matters to our sender, independently of the library
that sends (pywebpush): it checks the VAPID authorization (RFC 8292: `Authorization: vapid t=<JWT>,k=<key>`, the
JWT signed ES256 by `k`, `k` the applicationServerKey the subscription was made with, `aud` this service's origin,
`exp` within 24 hours, `sub` a mailto: or https: contact) and DECRYPTS the aes128gcm body (RFC 8188 records,
RFC 8291 keys) with the private key of the browser it made the subscription for, implemented here from the RFCs
with `cryptography` alone. What it decrypted is recorded as it would reach the service worker.

`subscribe(application_server_key)` does what `pushManager.subscribe()` does in a browser: a fresh P-256 key pair
and 16-byte auth secret, and returns `PushSubscription.toJSON()`. Answers: 201 with a Location on success; 404 for
an endpoint it never issued, 410 for one `expire()`d; 401/403 for a bad authorization (as FCM and autopush do);
400 for a body it cannot decrypt; `fail_next(n, status)` answers the next n pushes with `status` (429 with a
Retry-After, or a 5xx) without delivering them.

Use: `with FakePushService() as push: sub = push.subscribe(vapid_public_key); ...; push.messages(sub["endpoint"])`.
"""

from __future__ import annotations

import base64
import json
import secrets
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tests.fakes.http_fake import ServedFake

MAX_CLAIMS_LIFETIME = 24 * 3600


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _point(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


@dataclass
class Browser:
    """One subscribed browser: what it keeps to decrypt its pushes."""
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes
    application_server_key: str  # base64url: the VAPID public key it subscribed with

    @property
    def p256dh(self) -> bytes:
        return _point(self.private_key.public_key())


@dataclass(frozen=True)
class ReceivedPush:
    """A push the service accepted: `plaintext` is what it decrypted."""
    endpoint: str
    plaintext: bytes
    headers: dict[str, str]
    claims: dict[str, Any]

    @property
    def payload(self) -> Any:
        return json.loads(self.plaintext)


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    status: int  # what the fake answered
    reason: str = ""


class PushRefused(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


def decrypt_aes128gcm(body: bytes, browser: Browser) -> bytes:
    """RFC 8291 + RFC 8188, from the browser's side: the header carries the salt, the record size and the sender's
    ephemeral public key; the content key and nonce come from ECDH with it, mixed with the auth secret."""
    if len(body) < 21:
        raise PushRefused(400, "body shorter than an aes128gcm header")
    salt, record_size, id_length = body[:16], struct.unpack("!I", body[16:20])[0], body[20]
    sender_point, ciphertext = body[21:21 + id_length], body[21 + id_length:]
    if id_length != 65 or record_size < 18:
        raise PushRefused(400, "the keyid must be the sender's 65-byte P-256 public key")
    try:
        sender = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sender_point)
    except ValueError:
        raise PushRefused(400, "the keyid is not a P-256 point") from None
    shared = browser.private_key.exchange(ec.ECDH(), sender)
    key_info = b"WebPush: info\x00" + browser.p256dh + sender_point
    ikm = HKDF(hashes.SHA256(), 32, salt=browser.auth_secret, info=key_info).derive(shared)
    content_key = HKDF(hashes.SHA256(), 16, salt=salt, info=b"Content-Encoding: aes128gcm\x00").derive(ikm)
    base_nonce = HKDF(hashes.SHA256(), 12, salt=salt, info=b"Content-Encoding: nonce\x00").derive(ikm)
    records = [ciphertext[i:i + record_size] for i in range(0, len(ciphertext), record_size)] or [b""]
    plaintext = b""
    for sequence, record in enumerate(records):
        nonce = (int.from_bytes(base_nonce, "big") ^ sequence).to_bytes(12, "big")
        try:
            padded = AESGCM(content_key).decrypt(nonce, record, None)
        except InvalidTag:
            raise PushRefused(400, "the body does not decrypt with this subscription's keys") from None
        data = padded.rstrip(b"\x00")
        last = sequence == len(records) - 1
        if not data or data[-1:] != (b"\x02" if last else b"\x01"):
            raise PushRefused(400, "bad record padding delimiter")
        plaintext += data[:-1]
    return plaintext


def verify_vapid(authorization: str, *, expected_key: str, audience: str, now: float) -> dict[str, Any]:
    """RFC 8292: "vapid t=<JWT>, k=<public key>"; returns the claims or raises PushRefused (401 or 403)."""
    scheme, _, params = (authorization or "").partition(" ")
    if scheme.lower() != "vapid":
        raise PushRefused(401, "missing vapid authorization")
    parts = dict(p.strip().split("=", 1) for p in params.split(",") if "=" in p)
    token, key = parts.get("t", ""), parts.get("k", "")
    if key.rstrip("=") != expected_key.rstrip("="):
        raise PushRefused(403, "the VAPID key is not the applicationServerKey of this subscription")
    try:
        header_b64, claims_b64, signature_b64 = token.split(".")
        header = json.loads(b64url_decode(header_b64))
        claims = json.loads(b64url_decode(claims_b64))
        signature = b64url_decode(signature_b64)
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(key))
    except ValueError:
        raise PushRefused(401, "malformed VAPID token") from None
    if header.get("alg") != "ES256" or len(signature) != 64:
        raise PushRefused(401, "the VAPID token must be ES256")
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        public.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise PushRefused(401, "the VAPID signature does not verify") from None
    if claims.get("aud") != audience:
        raise PushRefused(403, f"aud must be {audience}")
    expires = claims.get("exp")
    if not isinstance(expires, int) or not now < expires <= now + MAX_CLAIMS_LIFETIME:
        raise PushRefused(403, "exp must be within the next 24 hours")
    if not str(claims.get("sub", "")).startswith(("mailto:", "https://")):
        raise PushRefused(403, "sub must be a mailto: or https: contact")
    return claims


@dataclass
class _Shared:
    browsers: dict[str, Browser] = field(default_factory=dict)  # token -> browser
    gone: set[str] = field(default_factory=set)
    failures: list[int] = field(default_factory=list)
    received: list[ReceivedPush] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class FakePushService(ServedFake):
    thread_name = "fake-push-service"

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host, port)
        self._state = _Shared()

    # -- the browser's side ------------------------------------------------------------------------------------------

    def subscribe(self, application_server_key: str) -> dict[str, Any]:
        """What `registration.pushManager.subscribe({userVisibleOnly: true, applicationServerKey})` resolves to,
        as `subscription.toJSON()`."""
        browser = Browser(ec.generate_private_key(ec.SECP256R1()), secrets.token_bytes(16), application_server_key)
        token = secrets.token_urlsafe(24)
        with self._state.lock:
            self._state.browsers[token] = browser
        return {"endpoint": f"{self.url}/push/{token}", "expirationTime": None,
                "keys": {"p256dh": b64url(browser.p256dh), "auth": b64url(browser.auth_secret)}}

    # -- failure injection -------------------------------------------------------------------------------------------

    def expire(self, endpoint: str) -> None:
        """The browser dropped this subscription: the service answers 410 Gone from now on."""
        with self._state.lock:
            self._state.gone.add(endpoint.rsplit("/", 1)[-1])

    def fail_next(self, count: int, status: int) -> None:
        with self._state.lock:
            self._state.failures.extend([status] * count)

    # -- what arrived --------------------------------------------------------------------------------------------------

    @property
    def received(self) -> list[ReceivedPush]:
        with self._state.lock:
            return list(self._state.received)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._state.lock:
            return list(self._state.requests)

    def messages(self, endpoint: str) -> list[Any]:
        """The decrypted JSON payloads delivered to one subscription, oldest first."""
        return [r.payload for r in self.received if r.endpoint == endpoint]

    # -- the service ---------------------------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        state, fake = self._state, self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    location = self._accept(body)
                except PushRefused as refused:
                    self._record(refused.status, refused.reason)
                    headers = {"Retry-After": "30"} if refused.status == 429 else {}
                    self._answer(refused.status, refused.reason, headers)
                    return
                self._record(201)
                self._answer(201, "", {"Location": location})

            def _accept(self, body: bytes) -> str:
                path = urlsplit(self.path).path
                token = path.removeprefix("/push/") if path.startswith("/push/") else ""
                with state.lock:
                    browser = state.browsers.get(token)
                    gone = token in state.gone
                    failure = state.failures.pop(0) if state.failures and browser and not gone else None
                if browser is None:
                    raise PushRefused(404, "no such subscription")
                if gone:
                    raise PushRefused(410, "push subscription has unsubscribed or expired")
                if failure is not None:
                    raise PushRefused(failure, "injected failure")
                ttl = self.headers.get("TTL", "")
                if not ttl.isdigit():
                    raise PushRefused(400, "TTL header required")
                if (self.headers.get("Content-Encoding") or "").lower() != "aes128gcm":
                    raise PushRefused(400, "Content-Encoding must be aes128gcm")
                claims = verify_vapid(self.headers.get("Authorization", ""),
                                      expected_key=browser.application_server_key, audience=fake.url,
                                      now=time.time())
                plaintext = decrypt_aes128gcm(body, browser)
                endpoint = f"{fake.url}{path}"
                with state.lock:
                    state.received.append(ReceivedPush(endpoint=endpoint, plaintext=plaintext, claims=claims,
                                                       headers={k.lower(): v for k, v in self.headers.items()}))
                    number = len(state.received)
                return f"{fake.url}/m/{number}"

            def _record(self, status: int, reason: str = "") -> None:
                with state.lock:
                    state.requests.append(RecordedRequest(path=self.path, status=status, reason=reason))

            def _answer(self, status: int, text: str, headers: dict[str, str]) -> None:
                data = text.encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
