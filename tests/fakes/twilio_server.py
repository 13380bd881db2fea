"""A local stand-in for Twilio's Programmable Messaging API and its signed status callbacks.

The official SDK talks to it through a custom HTTP client that sends api.twilio.com requests here (the SDK has no
host setting), so tests exercise the SDK's real form encoding and error classes. It behaves like Twilio where our
adapter depends on it:

- POST /2010-04-01/Accounts/{AccountSid}/Messages.json with HTTP Basic auth (account SID : auth token), a form body
  (To, Body, From or MessagingServiceSid, StatusCallback); 201 with the message resource (sid "SM" + 32 hex, status
  "queued", or "accepted" through a Messaging Service); errors as `{"code", "message", "more_info", "status"}`:
  20003 (401) bad credentials, 21604 no To, 21211 invalid To, 21602 no Body, 21617 body over 1600 characters,
  21603 no sender, 21212 invalid From, 21606 a From not on the account (when `from_numbers` is given), 21701 a
  malformed Messaging Service SID. Twilio's magic test numbers: +15005550001 invalid (21211), +15005550009 not a
  mobile (21614), +15005550004 opted out with STOP (21610).
- status callbacks: form POSTs to the message's StatusCallback (MessageSid, MessageStatus, To, From, ErrorCode...)
  signed with X-Twilio-Signature = base64 HMAC-SHA1(auth token, URL + sorted params), computed with the SDK's own
  `RequestValidator.compute_signature`, as Twilio does.

Failure injection: `fail_next(n, status)` answers the next requests with an error without sending; `hang_next(n,
seconds)` takes the message (recorded) and holds the answer back (the caller times out).

Use: `with FakeTwilio() as fake: TwilioSmsSender(fake.account_sid, fake.auth_token, from_number=...,
base_url=fake.url)`.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlencode

from twilio.request_validator import RequestValidator

from tests.fakes.http_fake import ServedFake
from tests.fakes.sendgrid_server import post

API_VERSION = "2010-04-01"
MAX_BODY = 1600
E164 = re.compile(r"\+[1-9][0-9]{6,14}")
ALPHANUMERIC_SENDER = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")
MESSAGING_SERVICE_SID = re.compile(r"MG[0-9a-f]{32}")
# Twilio's magic numbers for test credentials: what Twilio answers for each.
MAGIC_TO = {
    "+15005550001": (21211, "Invalid 'To' Phone Number: +15005550001"),
    "+15005550009": (21614, "'To' number is not a valid mobile number"),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
}
DELIVERY_ERRORS = {"undelivered": "30003", "failed": "30008"}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    params: dict[str, str]


@dataclass(frozen=True)
class StatusCallback:
    """A signed status callback, as Twilio would POST it."""

    url: str
    params: dict[str, str]
    signature: str

    @property
    def body(self) -> bytes:
        return urlencode(self.params).encode()

    @property
    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": self.signature}


@dataclass
class _Injection:
    remaining: int
    status: int = 500
    seconds: float = 0.0
    code: int | None = None
    message: str = ""


class TwilioApiError(Exception):
    def __init__(self, status: int, code: int, message: str):
        super().__init__(message)
        self.status = status
        self.body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                     "status": status}


@dataclass
class _State:
    requests: list[RecordedRequest] = field(default_factory=list)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # sid -> resource (+ status_callback)
    failures: list[_Injection] = field(default_factory=list)
    hangs: list[_Injection] = field(default_factory=list)


class FakeTwilio(ServedFake):
    """In-memory Twilio Messaging. Read `messages` (accepted, oldest first) and `requests` (every API request)."""

    thread_name = "fake-twilio"
    poll_interval = 0.02

    def __init__(self, *, account_sid: str | None = None, auth_token: str | None = None,
                 from_numbers: set[str] | None = None, host: str = "127.0.0.1"):
        super().__init__(host)
        self.account_sid = account_sid or "AC" + secrets.token_hex(16)
        self.auth_token = auth_token or secrets.token_hex(16)
        self.from_numbers = from_numbers  # None accepts any valid sender
        self._state = _State()
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    def stop(self) -> None:
        self._stopping.set()
        super().stop()

    @property
    def messages(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(message) for message in self._state.messages.values()]

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._state.requests)

    # -- failure injection ------------------------------------------------------------------------------------

    def fail_next(self, n: int = 1, status: int = 500, *, code: int | None = None, message: str = "") -> None:
        """The next `n` API requests get `status` without sending: 5xx as Twilio's 20500/20503, 429 as 20429, a 4xx
        with the given Twilio error `code` and `message`."""
        with self._lock:
            self._state.failures.append(_Injection(remaining=n, status=status, code=code, message=message))

    def hang_next(self, n: int = 1, seconds: float = 5.0) -> None:
        """The next `n` messages are taken (recorded) but answered only after `seconds`."""
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

    def _api(self, path: str, headers: dict[str, str], params: dict[str, str]) -> tuple[int, dict[str, Any], float]:
        """(status, JSON body, delay) for a POST to `path`."""
        with self._lock:
            self._state.requests.append(RecordedRequest("POST", path, headers, params))
            failure = self._take(self._state.failures)
            if failure is not None:
                error = _outage(failure)
                return error.status, error.body, 0.0
            try:
                self._authorise(path, headers.get("authorization", ""))
                message = self._create_message(params)
            except TwilioApiError as error:
                return error.status, error.body, 0.0
            hang = self._take(self._state.hangs)
        public = {key: value for key, value in message.items() if key != "status_callback"}
        return 201, public, hang.seconds if hang else 0.0

    def _authorise(self, path: str, authorization: str) -> None:
        expected = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages.json"
        scheme, _, encoded = authorization.partition(" ")
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            user = password = ""
        if scheme != "Basic" or user != self.account_sid or password != self.auth_token:
            raise TwilioApiError(401, 20003, "Authenticate")
        if path != expected:
            raise TwilioApiError(404, 20404, f"The requested resource {path} was not found")

    def _create_message(self, params: dict[str, str]) -> dict[str, Any]:
        to, body = params.get("To", ""), params.get("Body", "")
        sender, service = params.get("From", ""), params.get("MessagingServiceSid", "")
        _check_to(to)
        if not body:
            raise TwilioApiError(400, 21602, "Message body is required.")
        if len(body) > MAX_BODY:
            raise TwilioApiError(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        self._check_sender(sender, service)
        sid = "SM" + secrets.token_hex(16)
        message = {
            "sid": sid, "account_sid": self.account_sid, "api_version": API_VERSION, "body": body, "to": to,
            "from": sender or None, "messaging_service_sid": service or None,
            "status": "accepted" if service and not sender else "queued", "direction": "outbound-api",
            "num_segments": str(_segments(body)), "num_media": "0", "error_code": None, "error_message": None,
            "price": None, "price_unit": "USD", "date_created": formatdate(usegmt=True),
            "date_updated": formatdate(usegmt=True), "date_sent": None,
            "uri": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{sid}.json", "subresource_uris": {},
            "status_callback": params.get("StatusCallback", ""),
        }
        self._state.messages[sid] = message
        return message

    def _check_sender(self, sender: str, service: str) -> None:
        if not sender and not service:
            raise TwilioApiError(400, 21603, "A 'From' phone number is required.")
        if service and not MESSAGING_SERVICE_SID.fullmatch(service):
            raise TwilioApiError(400, 21701, f"The Messaging Service Sid {service} is invalid.")
        if sender and not (E164.fullmatch(sender) or ALPHANUMERIC_SENDER.fullmatch(sender)):
            raise TwilioApiError(400, 21212, f"Invalid From Number (caller ID): {sender}")
        if sender and self.from_numbers is not None and sender not in self.from_numbers:
            raise TwilioApiError(400, 21606, f"The From phone number {sender} is not a valid, SMS-capable inbound "
                                             "phone number or short code for your account.")

    # -- status callbacks -------------------------------------------------------------------------------------------

    def status_callback(self, sid: str, status: str, *, error_code: str | None = None,
                        url: str | None = None) -> StatusCallback:
        """The signed callback Twilio would POST when message `sid` reaches `status` ("sent", "delivered",
        "undelivered", "failed"); failures carry an ErrorCode (30003 unreachable handset by default)."""
        with self._lock:
            message = self._state.messages[sid]
            message["status"] = status
        params = {"AccountSid": self.account_sid, "ApiVersion": API_VERSION, "MessageSid": sid, "SmsSid": sid,
                  "MessageStatus": status, "SmsStatus": status, "To": message["to"],
                  "From": message["from"] or "+15017122661"}
        if message["messaging_service_sid"]:
            params["MessagingServiceSid"] = message["messaging_service_sid"]
        if status in DELIVERY_ERRORS:
            params["ErrorCode"] = error_code or DELIVERY_ERRORS[status]
        target = url or message["status_callback"]
        if not target:
            raise ValueError(f"message {sid} has no status callback URL")
        signature = RequestValidator(self.auth_token).compute_signature(target, params)
        return StatusCallback(url=target, params=params, signature=signature)

    def send_status(self, sid: str, status: str, *, error_code: str | None = None) -> int | None:
        """POST the signed status callback to the message's StatusCallback; the receiver's HTTP status."""
        callback = self.status_callback(sid, status, error_code=error_code)
        return post(callback.url, callback.body, callback.headers)


def _check_to(to: str) -> None:
    if not to:
        raise TwilioApiError(400, 21604, "A 'To' phone number is required.")
    if to in MAGIC_TO:
        code, message = MAGIC_TO[to]
        raise TwilioApiError(400, code, message)
    if not E164.fullmatch(to):
        raise TwilioApiError(400, 21211, f"Invalid 'To' Phone Number: {to}")


def _segments(body: str) -> int:
    # GSM-7 fits 160 characters in one segment (153 when split), anything else 70 (67); close enough for a fake.
    single, multi = (160, 153) if body.isascii() else (70, 67)
    return 1 if len(body) <= single else -(-len(body) // multi)


def _outage(failure: _Injection) -> TwilioApiError:
    status = failure.status
    if failure.code is not None:
        return TwilioApiError(status, failure.code, failure.message or "Request refused")
    if status == 429:
        return TwilioApiError(429, 20429, failure.message or "Too Many Requests")
    if status == 503:
        return TwilioApiError(503, 20503, failure.message or "Service Unavailable")
    if status >= 500:
        return TwilioApiError(status, 20500, failure.message or "Internal Server Error")
    return TwilioApiError(status, 20001, failure.message or "Request refused")


def _handler_for(fake: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            params = dict(parse_qsl(raw, keep_blank_values=True))
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, body, delay = fake._api(self.path.split("?")[0], headers, params)
            if delay and fake._stopping.wait(delay):
                return
            self._send(status, json.dumps(body).encode())

        def do_GET(self) -> None:
            self._send(405, json.dumps(TwilioApiError(405, 20004, "Method not allowed").body).encode())

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # `fake.requests` is the log

        def _send(self, status: int, body: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Twilio-Request-Id", "RQ" + secrets.token_hex(16))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (an injected hang); the message was taken anyway

    return Handler
