"""The email channel through SendGrid's v3 Mail Send API, with the official `sendgrid` SDK.

Each message carries our reference twice: as the custom arg "ref" (SendGrid echoes custom args in every Event Webhook
event, so a bounce finds its row) and in the Message-ID (a retry after a timeout, when SendGrid may have taken the
first attempt, then carries the same Message-ID, by which receivers such as Gmail drop the duplicate).

Errors are sorted for the delivery job: a 4xx other than 429 is the provider refusing this message for good
(PermanentDeliveryError with SendGrid's own reason), anything else that fails (429, 5xx, timeout, connection) is
transient (DeliveryError: retried with backoff).
"""

from __future__ import annotations

import hashlib
import http.client
import json

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Category, Content, CustomArg, From, Header, Mail, MimeType, To

from backend.notifications.ports import DeliveryError, OutgoingEmail, PermanentDeliveryError

SENDGRID_API = "https://api.sendgrid.com"
REFERENCE_ARG = "ref"  # the custom arg holding our reference; parse_sendgrid_events reads it back
TOO_MANY_REQUESTS = 429
MAX_REASON = 500  # a provider's reason is shown to admins and stored with the row: keep it readable


class SendGridEmailSender:
    """`api_key` is a SendGrid API key with Mail Send permission; `sender_email` a verified sender (single sender or
    an authenticated domain's address). `host` points the SDK elsewhere (tests: the local fake)."""

    def __init__(self, api_key: str, sender_email: str, *, host: str | None = None, timeout: float = 10.0):
        if not api_key:
            raise ValueError("SendGrid needs an API key (SENDGRID_API_KEY).")
        if "@" not in sender_email:
            raise ValueError(f"SendGrid needs a sender email address, got {sender_email!r}.")
        if timeout <= 0:
            raise ValueError("The SendGrid timeout must be positive.")
        self._sender = sender_email
        # Distinguishes deployments sharing a sender domain (staging and production both have a row t1-n1); from the
        # key, so it is stable across restarts, and hashed, so it reveals nothing of it.
        self._deployment = hashlib.sha256(api_key.encode()).hexdigest()[:10]
        self._client = SendGridAPIClient(api_key, host=(host or SENDGRID_API).rstrip("/"))
        # The SDK sets no timeout: without one a hung connection holds the worker forever. python_http_client copies
        # the root client's `timeout` into each per-call client it builds.
        self._client.client.timeout = timeout

    def send(self, email: OutgoingEmail) -> str:
        """Returns SendGrid's X-Message-Id (the prefix of `sg_message_id` in its events)."""
        mail = self._mail(email)
        try:
            response = self._client.send(mail)
        except HTTPError as exc:
            raise _classify(exc) from exc
        except (OSError, http.client.HTTPException) as exc:
            # OSError covers urllib's URLError (refused, DNS), TimeoutError (= socket.timeout), ConnectionError
            # (reset, closed early) and TLS errors; HTTPException a garbled answer.
            raise DeliveryError(f"SendGrid could not be reached: {_describe(exc)}") from exc
        return _header(response.headers, "X-Message-Id")

    def _mail(self, email: OutgoingEmail) -> Mail:
        mail = Mail(from_email=From(self._sender, email.sender_name or None), to_emails=To(email.recipient),
                    subject=email.subject)
        # SendGrid requires text/plain before text/html; a message without HTML goes as text only.
        mail.add_content(Content(MimeType.text, email.text))
        if email.html:
            mail.add_content(Content(MimeType.html, email.html))
        mail.add_header(Header("Message-ID", message_id(email.reference, self._deployment, self._sender)))
        for name, value in email.headers.items():
            mail.add_header(Header(name, value))
        mail.add_custom_arg(CustomArg(REFERENCE_ARG, email.reference))
        if email.category:
            mail.add_category(Category(email.category))
        return mail


def message_id(reference: str, deployment: str, sender_email: str) -> str:
    """Message-ID in the sender's domain, the same for every attempt at a row: "<t3-n42.<deployment>@example.com>"."""
    return f"<{reference}.{deployment}@{sender_email.rpartition('@')[2]}>"


def _classify(exc: HTTPError) -> Exception:
    status = int(exc.status_code)
    reason = _reason(exc.body) or f"HTTP {status} {exc.reason}".strip()
    if 400 <= status < 500 and status != TOO_MANY_REQUESTS:
        return PermanentDeliveryError(f"SendGrid refused the message: {reason}"[:MAX_REASON])
    return DeliveryError(f"SendGrid answered {status}: {reason}"[:MAX_REASON])


def _reason(body: bytes | str | None) -> str:
    """SendGrid's error body: {"errors": [{"message": ..., "field": ..., "help": ...}]} -> "message (field); ..."."""
    try:
        errors = json.loads(body or b"").get("errors") or []
    except (ValueError, AttributeError):
        return ""
    parts = []
    for error in errors:
        if isinstance(error, dict) and error.get("message"):
            field = error.get("field")
            parts.append(f"{error['message']} ({field})" if field else str(error["message"]))
    return "; ".join(parts)


def _header(headers: object, name: str) -> str:
    getter = getattr(headers, "get", None)
    return str(getter(name) or "") if getter else ""


def _describe(exc: Exception) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason or exc) or type(exc).__name__
