"""Provider status webhooks: signature checks and parsing, as pure functions (the web layer reads the request, these
decide; `NotificationService.apply_status` applies the result).

- SendGrid's Event Webhook signs `timestamp + body` with ECDSA P-256 / SHA-256 (headers
  X-Twilio-Email-Event-Webhook-Signature, base64 DER, and X-Twilio-Email-Event-Webhook-Timestamp); the verification
  key is the base64 public key shown in SendGrid's Mail Settings. A stale timestamp is refused too: a captured
  request cannot be replayed later.
- Twilio signs its status callbacks with X-Twilio-Signature: HMAC-SHA1 (auth token) over the full callback URL and
  the sorted form parameters; `twilio.request_validator` checks it.

Everything parsed here comes from outside: references that do not look like ours are dropped to "" (then the
provider's id decides), unknown events are ignored.
"""

from __future__ import annotations

import binascii
import json
import time
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sendgrid.helpers.eventwebhook import EventWebhook
from twilio.request_validator import RequestValidator

from backend.notifications.ports import StatusKind, StatusUpdate, parse_reference

# Where the providers post (marketplace_app/api.py serves them; one URL for every marketplace: the reference
# names the tenant)
SENDGRID_EVENTS_PATH = "/api/notifications/sendgrid/events"
TWILIO_STATUS_PATH = "/api/notifications/twilio/status"
SENDGRID_SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
TWILIO_SIGNATURE_HEADER = "X-Twilio-Signature"
SIGNATURE_TOLERANCE_SECONDS = 600  # SendGrid posts within seconds; 10 minutes allows for clock skew and retries
REFERENCE_ARG = "ref"  # the custom arg the SendGrid adapter sets
MAX_REASON = 500

# The recipient replied STOP to our sender: the carrier blocks our texts to that number until they text START.
# Twilio answers a send with it (HTTP 400) or reports it in a status callback.
TWILIO_OPTED_OUT = "21610"
# Twilio's delivery error codes most often seen on status callbacks, so an admin reads words, not numbers.
TWILIO_ERRORS = {
    TWILIO_OPTED_OUT: "the recipient replied STOP (unsubscribed)",
    "30003": "unreachable destination handset",
    "30004": "message blocked",
    "30005": "unknown destination handset",
    "30006": "landline or unreachable carrier",
    "30007": "filtered by the carrier",
    "30008": "unknown error",
}


# ---------------------------------------------------------------------------------------------------------------
# SendGrid
# ---------------------------------------------------------------------------------------------------------------

def verify_sendgrid_signature(public_key: str, payload: bytes, signature: str, timestamp: str, *,
                              now: float | None = None) -> bool:
    """True when `signature` is SendGrid's ECDSA signature of `timestamp + payload` (the raw body, unparsed) under
    `public_key` and the timestamp is within 10 minutes of `now`. A public key that cannot be read is a configuration
    mistake: ValueError, not False."""
    key = _sendgrid_key(public_key)
    if not signature or not (timestamp.isascii() and timestamp.isdigit()):
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > SIGNATURE_TOLERANCE_SECONDS:
        return False
    try:
        # What EventWebhook.verify_signature does, but over the raw bytes: the SDK's version takes text and
        # re-encodes it, which a body that is not valid UTF-8 would break.
        signed = timestamp.encode("ascii") + payload
        key.verify(binascii.a2b_base64(signature.encode("ascii")), signed, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):  # a2b_base64's binascii.Error is a ValueError
        return False
    return True


def _sendgrid_key(public_key: str) -> ec.EllipticCurvePublicKey:
    text = (public_key or "").strip()
    if not text:
        raise ValueError("The SendGrid Event Webhook verification key is empty (SENDGRID_WEBHOOK_PUBLIC_KEY).")
    try:
        # SendGrid shows the key as bare base64 DER; the SDK wraps it in PEM. Accept a full PEM as well.
        key = (load_pem_public_key(text.encode()) if text.startswith("-----BEGIN")
               else EventWebhook().convert_public_key_to_ecdsa(text))
    except ValueError as exc:
        raise ValueError(f"The SendGrid Event Webhook verification key cannot be read: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("The SendGrid Event Webhook verification key is not an elliptic-curve key.")
    return key


def parse_sendgrid_events(payload: bytes) -> list[StatusUpdate]:
    """The status changes in an Event Webhook body (a JSON list of events): delivered; bounce (type "bounce" is hard,
    "blocked" soft); dropped. processed, deferred, open, click and the rest change nothing and are left out.
    ValueError when the body is not a JSON list."""
    events = json.loads(payload)
    if not isinstance(events, list):
        raise ValueError("A SendGrid Event Webhook body is a JSON list of events.")
    updates = [_sendgrid_update(event) for event in events if isinstance(event, dict)]
    return [update for update in updates if update is not None]


def _sendgrid_update(event: Mapping[str, Any]) -> StatusUpdate | None:
    kind = event.get("event")
    if kind == "delivered":
        return _sendgrid_status(event, StatusKind.DELIVERED)
    if kind == "bounce":
        hard = event.get("type", "bounce") == "bounce"  # "blocked" is a soft bounce: the address may work later
        reason = _text(event.get("reason")) or ("bounced" if hard else "blocked")
        return _sendgrid_status(event, StatusKind.BOUNCED, reason=reason, hard_bounce=hard)
    if kind == "dropped":
        return _sendgrid_status(event, StatusKind.FAILED, reason=_text(event.get("reason")) or "dropped")
    return None


def _sendgrid_status(event: Mapping[str, Any], kind: StatusKind, *, reason: str = "",
                     hard_bounce: bool = False) -> StatusUpdate:
    # sg_message_id is "<X-Message-Id of the send>.<filter and counters>": the prefix is what the adapter stored.
    provider_id = _text(event.get("sg_message_id")).split(".", 1)[0]
    return StatusUpdate(reference=_our_reference(event.get(REFERENCE_ARG)), provider_id=provider_id, kind=kind,
                        reason=reason[:MAX_REASON], hard_bounce=hard_bounce, recipient=_text(event.get("email")))


# ---------------------------------------------------------------------------------------------------------------
# Twilio
# ---------------------------------------------------------------------------------------------------------------

def verify_twilio_signature(auth_token: str, url: str, params: Mapping[str, str], signature: str) -> bool:
    """True when `signature` (the X-Twilio-Signature header) signs `url` (exactly as Twilio requested it, query
    included) and the posted form `params`. An empty auth token is a configuration mistake: ValueError."""
    if not auth_token:
        raise ValueError("The Twilio auth token is empty (TWILIO_AUTH_TOKEN): status callbacks cannot be verified.")
    if not signature:
        return False
    return bool(RequestValidator(auth_token).validate(url, dict(params), signature))


def parse_twilio_status(params: Mapping[str, str], reference: str) -> StatusUpdate | None:
    """A status callback's change: delivered; undelivered or failed (with Twilio's ErrorCode; 21610, the recipient
    replied STOP, is `opted_out`). queued, sending, sent and the rest are steps on the way: None. `reference` is what
    our callback URL carried (untrusted: "" if it is not ours)."""
    status = params.get("MessageStatus") or params.get("SmsStatus") or ""
    provider_id = params.get("MessageSid") or params.get("SmsSid") or ""
    ours = _our_reference(reference)
    if status == "delivered":
        return StatusUpdate(reference=ours, provider_id=provider_id, kind=StatusKind.DELIVERED,
                            recipient=params.get("To", ""))
    if status in ("undelivered", "failed"):
        code = params.get("ErrorCode", "").strip()
        return StatusUpdate(reference=ours, provider_id=provider_id, kind=StatusKind.FAILED,
                            reason=_twilio_reason(status, code, params.get("ErrorMessage", "")),
                            recipient=params.get("To", ""), opted_out=code == TWILIO_OPTED_OUT)
    return None


def _twilio_reason(status: str, code: str, message: str) -> str:
    if not code:
        return f"Twilio: {status}"
    words = message or TWILIO_ERRORS.get(code, "see https://www.twilio.com/docs/api/errors/" + code)
    return f"Twilio {status}: error {code}, {words}"[:MAX_REASON]


# ---------------------------------------------------------------------------------------------------------------

def _our_reference(value: object) -> str:
    text = _text(value)
    return text if parse_reference(text) is not None else ""


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
