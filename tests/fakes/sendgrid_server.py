"""A local stand-in for SendGrid's v3 Mail Send API and its signed Event Webhook.

The official SDK talks to it unchanged (`SendGridAPIClient(key, host=fake.url)`), so tests exercise the real request
body the SDK builds and its error classes. It behaves like SendGrid where our adapter depends on it:

- POST /v3/mail/send with `Authorization: Bearer <key>`; 202 with an empty body and `X-Message-Id` on success;
  errors as `{"errors": [{"message", "field", "help"}]}`: 401 for a missing or wrong key, 400 for a malformed body
  (no personalizations/to, no from, no subject, no content, text/plain not first, a reserved header, a non-string
  header or custom arg, more than 10 categories), 403 for a sender that is not a verified Sender Identity (when
  `verified_senders` is given);
- the Event Webhook: events shaped like SendGrid's (custom args at the top level, `sg_message_id` =
  "<X-Message-Id>.<filter id>"), signed with ECDSA P-256 over timestamp + body (headers
  X-Twilio-Email-Event-Webhook-Signature / -Timestamp); `public_key` is what SendGrid's settings page shows.

Failure injection: `fail_next(n, status)` answers the next requests with an error without sending (nothing recorded
as sent); `hang_next(n, seconds)` accepts the mail (recorded in `sent`) and holds the answer back: the caller times
out not knowing the mail went, which is why the adapter's Message-ID is stable per row.

Use: `with FakeSendGrid() as fake: SendGridEmailSender("SG.key", "from@x", host=fake.url)`.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fakes.http_fake import ServedFake

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
# Headers SendGrid sets itself and refuses in the request (its docs' reserved list).
RESERVED_HEADERS = {"x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type",
                    "content-transfer-encoding", "to", "from", "subject", "reply-to", "cc", "bcc"}
MAX_CATEGORIES = 10
HARD_BOUNCE_REASON = "550 5.1.1 The email account that you tried to reach does not exist."
BLOCKED_REASON = "421 4.7.0 Temporary rate limit: try again later."


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or the raw text when it is not JSON


@dataclass(frozen=True)
class SentMail:
    """A mail SendGrid accepted: `payload` is the v3 JSON body as the SDK sent it."""

    message_id: str
    payload: dict[str, Any]

    @property
    def recipients(self) -> list[str]:
        return [to["email"] for p in self.payload["personalizations"] for to in p.get("to", [])]

    @property
    def sender(self) -> dict[str, str]:
        return self.payload["from"]

    @property
    def subject(self) -> str:
        return self.payload["subject"]

    def content(self, mime_type: str) -> str | None:
        return next((c["value"] for c in self.payload.get("content", []) if c["type"] == mime_type), None)

    @property
    def headers(self) -> dict[str, str]:
        return dict(self.payload.get("headers") or {})

    @property
    def custom_args(self) -> dict[str, str]:
        return dict(self.payload.get("custom_args") or {})

    @property
    def categories(self) -> list[str]:
        return list(self.payload.get("categories") or [])


@dataclass
class _Injection:
    remaining: int
    status: int = 500
    seconds: float = 0.0
    message: str = ""


class SendGridApiError(Exception):
    def __init__(self, status: int, message: str, field_name: str | None = None):
        super().__init__(message)
        self.status = status
        self.body = {"errors": [{"message": message, "field": field_name, "help": None}]}


@dataclass
class _State:
    requests: list[RecordedRequest] = field(default_factory=list)
    sent: list[SentMail] = field(default_factory=list)
    failures: list[_Injection] = field(default_factory=list)
    hangs: list[_Injection] = field(default_factory=list)


class FakeSendGrid(ServedFake):
    """In-memory SendGrid. Read `sent` (accepted mails) and `requests` (every request, failed ones too)."""

    thread_name = "fake-sendgrid"
    poll_interval = 0.02

    def __init__(self, *, api_key: str | None = None, verified_senders: set[str] | None = None,
                 host: str = "127.0.0.1"):
        super().__init__(host)
        self.api_key = api_key  # None accepts any "Bearer <non-empty>"
        self.verified_senders = verified_senders  # None accepts any sender
        self._state = _State()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._signing_key = ec.generate_private_key(ec.SECP256R1())

    # -- lifecycle and records --------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    def stop(self) -> None:
        self._stopping.set()
        super().stop()

    @property
    def sent(self) -> list[SentMail]:
        with self._lock:
            return list(self._state.sent)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._state.requests)

    # -- failure injection ------------------------------------------------------------------------------------

    def fail_next(self, n: int = 1, status: int = 500, *, message: str = "") -> None:
        """The next `n` Mail Send requests get `status` without the mail being taken."""
        with self._lock:
            self._state.failures.append(_Injection(remaining=n, status=status, message=message))

    def hang_next(self, n: int = 1, seconds: float = 5.0) -> None:
        """The next `n` Mail Send requests are taken (recorded as sent) but answered only after `seconds`."""
        with self._lock:
            self._state.hangs.append(_Injection(remaining=n, seconds=seconds))

    @staticmethod
    def _take(injections: list[_Injection]) -> _Injection | None:
        for injection in injections:
            if injection.remaining > 0:
                injection.remaining -= 1
                return injection
        return None

    # -- the API ------------------------------------------------------------------------------------------------

    def _mail_send(self, headers: dict[str, str], raw: bytes) -> tuple[int, bytes, dict[str, str], float]:
        """(status, body, extra headers, delay) for POST /v3/mail/send."""
        body = _parse_json(raw)
        with self._lock:
            self._state.requests.append(RecordedRequest("POST", "/v3/mail/send", headers, body))
            failure = self._take(self._state.failures)
            if failure is not None:
                error = SendGridApiError(failure.status, failure.message or _outage_message(failure.status))
                return error.status, json.dumps(error.body).encode(), {}, 0.0
            try:
                self._authorise(headers.get("authorization", ""))
                payload = self._validate(body)
            except SendGridApiError as error:
                return error.status, json.dumps(error.body).encode(), {}, 0.0
            message_id = secrets.token_urlsafe(16)[:22]
            self._state.sent.append(SentMail(message_id=message_id, payload=payload))
            hang = self._take(self._state.hangs)
        return 202, b"", {"X-Message-Id": message_id}, hang.seconds if hang else 0.0

    def _authorise(self, authorization: str) -> None:
        scheme, _, key = authorization.partition(" ")
        if scheme != "Bearer" or not key:
            raise SendGridApiError(401, "authorization required")
        if self.api_key is not None and key != self.api_key:
            raise SendGridApiError(401, "The provided authorization grant is invalid, expired, or revoked")

    def _validate(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise SendGridApiError(400, "Bad Request")
        self._check_personalizations(body.get("personalizations"))
        sender = body.get("from") or {}
        if not isinstance(sender, dict) or not _is_email(sender.get("email")):
            raise SendGridApiError(400, "The from object must be provided for every email send. It is an object "
                                        "that requires the email parameter, but may also contain a name parameter.",
                                   "from.email")
        if not body.get("subject") and "template_id" not in body:
            raise SendGridApiError(400, "The subject is required. You can get around this requirement if you use a "
                                        "template with a subject defined or if every personalization has a subject "
                                        "defined.", "subject")
        _check_content(body.get("content"))
        _check_strings(body.get("headers"), "headers", reserved=True)
        _check_strings(body.get("custom_args"), "custom_args")
        _check_categories(body.get("categories"))
        if self.verified_senders is not None and sender["email"] not in self.verified_senders:
            raise SendGridApiError(403, "The from address does not match a verified Sender Identity. Mail cannot be "
                                        "sent until this error is resolved.", "from")
        return body

    @staticmethod
    def _check_personalizations(personalizations: Any) -> None:
        if not isinstance(personalizations, list) or not personalizations:
            raise SendGridApiError(400, "The personalizations field is required and must have at least one "
                                        "personalization.", "personalizations")
        for i, personalization in enumerate(personalizations):
            recipients = personalization.get("to") if isinstance(personalization, dict) else None
            if not recipients:
                raise SendGridApiError(400, "The to array is required for all personalization objects, and must "
                                            "have at least one email object with a valid email address.",
                                       f"personalizations.{i}.to")
            for j, to in enumerate(recipients):
                if not _is_email(to.get("email")):
                    raise SendGridApiError(400, "Does not contain a valid address.",
                                           f"personalizations.{i}.to.{j}.email")

    # -- the Event Webhook --------------------------------------------------------------------------------------

    @property
    def public_key(self) -> str:
        """The verification key as SendGrid's Mail Settings show it: base64 of the DER SubjectPublicKeyInfo."""
        der = self._signing_key.public_key().public_bytes(serialization.Encoding.DER,
                                                           serialization.PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode()

    def event(self, mail: SentMail, kind: str, **fields: Any) -> dict[str, Any]:
        """An event about `mail` as SendGrid posts it; `fields` add or override (e.g. type="blocked")."""
        now = int(time.time())
        event: dict[str, Any] = {
            "email": mail.recipients[0], "timestamp": now, "event": kind,
            "smtp-id": f"<{mail.message_id}@ismtpd0001p1iad1.sendgrid.net>",
            "sg_event_id": secrets.token_urlsafe(16),
            "sg_message_id": f"{mail.message_id}.recvd-{secrets.token_hex(5)}-1-{now:x}-0.0",
            **mail.custom_args,  # SendGrid puts custom args at the top level of each event
        }
        if mail.categories:
            event["category"] = mail.categories
        if kind == "bounce":
            hard = fields.get("type", "bounce") == "bounce"
            event.update(type="bounce", reason=HARD_BOUNCE_REASON if hard else BLOCKED_REASON,
                         status="5.1.1" if hard else "4.7.0",
                         bounce_classification="Invalid Address" if hard else "Technical")
        elif kind == "dropped":
            event.update(reason="Bounced Address")
        elif kind == "delivered":
            event.update(response="250 2.0.0 OK", ip="149.72.1.1", tls=1)
        event.update(fields)
        return event

    def sign(self, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        """The two signature headers for `body`, as SendGrid computes them."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self._signing_key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {SIGNATURE_HEADER: base64.b64encode(signature).decode(), TIMESTAMP_HEADER: stamp}

    def signed_request(self, events: list[dict[str, Any]], *,
                       timestamp: int | None = None) -> tuple[dict[str, str], bytes]:
        """(headers, body) of an Event Webhook POST carrying `events`."""
        body = json.dumps(events, separators=(",", ":")).encode()
        return {"Content-Type": "application/json", **self.sign(body, timestamp=timestamp)}, body

    def post_events(self, url: str, events: list[dict[str, Any]], *, timestamp: int | None = None) -> int | None:
        """POST the signed events to `url` like SendGrid does; the receiver's HTTP status (None: unreachable)."""
        headers, body = self.signed_request(events, timestamp=timestamp)
        return post(url, body, headers)


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 10.0) -> int | None:
    """POST `body` and return the HTTP status, None when the receiver cannot be reached."""
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def _parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def _is_email(value: Any) -> bool:
    if not isinstance(value, str) or value.count("@") != 1:
        return False
    local, domain = value.split("@")
    return bool(local) and "." in domain and " " not in value


def _check_content(content: Any) -> None:
    if not isinstance(content, list) or not content:
        raise SendGridApiError(400, "Unless a valid template_id is provided, the content parameter is required. "
                                    "There must be at least one defined content block.", "content")
    types = [block.get("type") for block in content]
    if "text/plain" in types and types[0] != "text/plain":
        raise SendGridApiError(400, "If present, text/plain content must be first, followed by any other content.",
                               "content")
    for i, block in enumerate(content):
        if not isinstance(block.get("value"), str) or not block["value"]:
            raise SendGridApiError(400, "The content value must be a string at least one character in length.",
                                   f"content.{i}.value")


def _check_strings(mapping: Any, field_name: str, *, reserved: bool = False) -> None:
    if mapping is None:
        return
    if not isinstance(mapping, dict):
        raise SendGridApiError(400, f"Invalid type. Expected: object, given: {type(mapping).__name__}.", field_name)
    for key, value in mapping.items():
        if not isinstance(value, str):
            raise SendGridApiError(400, f"Invalid type. Expected: string, given: {type(value).__name__}.",
                                   f"{field_name}.{key}")
        if reserved and key.lower() in RESERVED_HEADERS:
            raise SendGridApiError(400, f"The header {key} is reserved and cannot be set.", f"{field_name}.{key}")


def _check_categories(categories: Any) -> None:
    if categories is None:
        return
    if len(categories) > MAX_CATEGORIES:
        raise SendGridApiError(400, "Too many categories. Only 10 are allowed per email.", "categories")
    for i, category in enumerate(categories):
        if not isinstance(category, str) or not category or len(category) > 255:
            raise SendGridApiError(400, "A category must be a string of 1 to 255 characters.", f"categories.{i}")


def _outage_message(status: int) -> str:
    if status == 429:
        return "too many requests"
    if status >= 500:
        return "The server encountered an unexpected condition which prevented it from fulfilling the request."
    return "Bad Request"


def _handler_for(fake: FakeSendGrid) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.split("?")[0] != "/v3/mail/send":
                self._send(404, json.dumps(SendGridApiError(404, "Not Found").body).encode(), {})
                return
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, body, extra, delay = fake._mail_send(headers, raw)
            if delay and fake._stopping.wait(delay):
                return
            self._send(status, body, extra)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # `fake.requests` is the log

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            try:
                self.send_response(status)
                content_type = {"Content-Type": "application/json"} if body else {}
                for name, value in {**content_type, **headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (an injected hang); the mail was taken anyway

    return Handler
