"""The notification channels through the official SDKs against local fakes (tests/fakes/sendgrid_server.py,
tests/fakes/twilio_server.py): what reaches the provider, how its answers are sorted (4xx: never retried, with the
provider's reason; 429/5xx/timeouts: retried), and the signed status webhooks (valid ones accepted, forged,
tampered or stale ones refused). Also the development channels (Maildir, dev SMS outbox). No database needed.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import json
import mailbox
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from backend.notifications.adapters.dev_sms import DevSmsOutbox
from backend.notifications.adapters.maildir import MaildirEmailSender
from backend.notifications.adapters.sendgrid_email import SendGridEmailSender
from backend.notifications.adapters.twilio_sms import TwilioSmsSender
from backend.notifications.adapters.unconfigured import UnconfiguredEmailSender
from backend.notifications.ports import (
    DeliveryError,
    OutgoingEmail,
    OutgoingSms,
    PermanentDeliveryError,
    StatusKind,
    StatusUpdate,
    format_reference,
    parse_reference,
)
from backend.notifications.webhooks import (
    parse_sendgrid_events,
    parse_twilio_status,
    verify_sendgrid_signature,
    verify_twilio_signature,
)
from tests.fakes.sendgrid_server import SIGNATURE_HEADER, TIMESTAMP_HEADER, FakeSendGrid, SentMail
from tests.fakes.twilio_server import FakeTwilio

API_KEY = "SG.test-key.secret"
SENDER = "hello@sparkle.example"
FROM_NUMBER = "+15017122661"
SERVICE_SID = "MG" + "0" * 31 + "1"
UNSUBSCRIBE = {"List-Unsubscribe": "<https://sparkle.example/unsubscribe?token=abc>",
               "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
SHORT_TIMEOUT = 0.4  # the injected hangs last 3 s: a test that waited them out would show in the timing assertions


def outgoing_email(**overrides: object) -> OutgoingEmail:
    fields = {"recipient": "pro@example.com", "subject": "New quote for Deep clean", "text": "You got a quote.\n",
              "html": "<p>You got a <b>quote</b>.</p>", "reference": "t3-n42", "headers": UNSUBSCRIBE,
              "sender_name": "Sparkle Homes", "category": "quote_received"}
    return OutgoingEmail(**{**fields, **overrides})  # type: ignore[arg-type]


def outgoing_sms(**overrides: object) -> OutgoingSms:
    fields = {"to": "+14155550123", "body": "Sparkle: new lead near you. Open the app to reply.",
              "reference": "t3-n43", "status_callback": ""}
    return OutgoingSms(**{**fields, **overrides})  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------------
# A receiver standing in for the app's webhook endpoints
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Received:
    url: str  # rebuilt from Host and the request line, as the endpoint will have to
    headers: dict[str, str]
    body: bytes


@pytest.fixture
def inbox() -> Iterator[tuple[str, list[Received]]]:
    """(base URL, requests received) of a local HTTP server answering 200 to every POST."""
    received: list[Received] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append(Received(f"http://{self.headers['Host']}{self.path}", dict(self.headers.items()), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------------------------------------------------
# SendGrid: sending
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture
def sendgrid() -> Iterator[FakeSendGrid]:
    with FakeSendGrid(api_key=API_KEY, verified_senders={SENDER}) as fake:
        yield fake


@pytest.fixture
def email_sender(sendgrid: FakeSendGrid) -> SendGridEmailSender:
    return SendGridEmailSender(API_KEY, SENDER, host=sendgrid.url, timeout=SHORT_TIMEOUT)


def test_sendgrid_gets_text_and_html_headers_reference_and_the_marketplace_name(
        sendgrid: FakeSendGrid, email_sender: SendGridEmailSender) -> None:
    provider_id = email_sender.send(outgoing_email())

    [mail] = sendgrid.sent
    assert provider_id == mail.message_id and provider_id
    assert mail.recipients == ["pro@example.com"]
    assert mail.sender == {"email": SENDER, "name": "Sparkle Homes"}
    assert mail.subject == "New quote for Deep clean"
    assert [c["type"] for c in mail.payload["content"]] == ["text/plain", "text/html"]
    assert mail.content("text/plain") == "You got a quote.\n"
    assert mail.content("text/html") == "<p>You got a <b>quote</b>.</p>"
    deployment = hashlib.sha256(API_KEY.encode()).hexdigest()[:10]
    assert mail.headers == {**UNSUBSCRIBE, "Message-ID": f"<t3-n42.{deployment}@sparkle.example>"}
    assert mail.custom_args == {"ref": "t3-n42"}
    assert mail.categories == ["quote_received"]
    assert sendgrid.requests[0].headers["authorization"] == f"Bearer {API_KEY}"


def test_sendgrid_text_only_message_without_name_or_category(sendgrid: FakeSendGrid,
                                                             email_sender: SendGridEmailSender) -> None:
    email_sender.send(outgoing_email(html="", sender_name="", category="", headers={}))

    [mail] = sendgrid.sent
    assert [c["type"] for c in mail.payload["content"]] == ["text/plain"]
    assert mail.sender == {"email": SENDER}
    assert mail.categories == []
    assert list(mail.headers) == ["Message-ID"]


@pytest.mark.parametrize(("sender", "key", "expected"), [
    ("someone@else.example", API_KEY, "does not match a verified Sender Identity. Mail cannot be sent"),
    (SENDER, "SG.revoked", "The provided authorization grant is invalid, expired, or revoked"),
])
def test_sendgrid_refusal_is_permanent_with_its_reason(sendgrid: FakeSendGrid, sender: str, key: str,
                                                       expected: str) -> None:
    adapter = SendGridEmailSender(key, sender, host=sendgrid.url, timeout=SHORT_TIMEOUT)

    with pytest.raises(PermanentDeliveryError, match="SendGrid refused the message") as refused:
        adapter.send(outgoing_email())

    assert expected in str(refused.value)
    assert sendgrid.sent == []


def test_sendgrid_bad_request_reason_names_the_field(sendgrid: FakeSendGrid,
                                                     email_sender: SendGridEmailSender) -> None:
    # A header SendGrid reserves for itself: the 400 names it, and retrying would not help.
    with pytest.raises(PermanentDeliveryError) as refused:
        email_sender.send(outgoing_email(headers={"Reply-To": "x@example.com"}))

    assert str(refused.value) == ("SendGrid refused the message: The header Reply-To is reserved and cannot be set. "
                                  "(headers.Reply-To)")


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_sendgrid_rate_limit_and_outage_are_transient(sendgrid: FakeSendGrid, email_sender: SendGridEmailSender,
                                                      status: int) -> None:
    sendgrid.fail_next(1, status)

    with pytest.raises(DeliveryError, match=f"SendGrid answered {status}"):
        email_sender.send(outgoing_email())
    assert sendgrid.sent == []

    email_sender.send(outgoing_email())  # the job's retry goes through once the provider is back
    assert len(sendgrid.sent) == 1


def test_sendgrid_timeout_is_transient(sendgrid: FakeSendGrid, email_sender: SendGridEmailSender) -> None:
    sendgrid.hang_next(1, seconds=3)
    started = time.monotonic()

    with pytest.raises(DeliveryError, match="SendGrid could not be reached"):
        email_sender.send(outgoing_email())

    assert time.monotonic() - started < 2
    # SendGrid may have taken it: the retry carries the same Message-ID, which lets the receiver drop the copy.
    email_sender.send(outgoing_email())
    first, second = sendgrid.sent
    assert first.headers["Message-ID"] == second.headers["Message-ID"]


def test_sendgrid_unreachable_is_transient() -> None:
    adapter = SendGridEmailSender(API_KEY, SENDER, host=f"http://127.0.0.1:{closed_port()}", timeout=SHORT_TIMEOUT)

    with pytest.raises(DeliveryError, match="SendGrid could not be reached"):
        adapter.send(outgoing_email())


@pytest.mark.parametrize(("key", "sender", "timeout"), [("", SENDER, 1.0), (API_KEY, "not-an-address", 1.0),
                                                        (API_KEY, SENDER, 0.0)])
def test_sendgrid_configuration_is_checked(key: str, sender: str, timeout: float) -> None:
    with pytest.raises(ValueError):
        SendGridEmailSender(key, sender, timeout=timeout)


# ---------------------------------------------------------------------------------------------------------------
# SendGrid: the Event Webhook
# ---------------------------------------------------------------------------------------------------------------

def sent_mail(sendgrid: FakeSendGrid, email_sender: SendGridEmailSender, **overrides: object) -> SentMail:
    email_sender.send(outgoing_email(**overrides))
    return sendgrid.sent[-1]


def test_signed_sendgrid_events_are_accepted_and_parsed(sendgrid: FakeSendGrid, email_sender: SendGridEmailSender,
                                                        inbox: tuple[str, list[Received]]) -> None:
    delivered = sent_mail(sendgrid, email_sender, reference="t3-n42")
    bounced = sent_mail(sendgrid, email_sender, reference="t3-n44", recipient="nobody@example.com")
    events = [sendgrid.event(delivered, "processed"), sendgrid.event(delivered, "delivered"),
              sendgrid.event(bounced, "bounce"), sendgrid.event(delivered, "open")]
    base, received = inbox

    assert sendgrid.post_events(f"{base}/api/webhooks/sendgrid", events) == 200

    [request] = received
    assert verify_sendgrid_signature(sendgrid.public_key, request.body, request.headers[SIGNATURE_HEADER],
                                     request.headers[TIMESTAMP_HEADER])
    assert parse_sendgrid_events(request.body) == [
        StatusUpdate(reference="t3-n42", provider_id=delivered.message_id, kind=StatusKind.DELIVERED,
                     recipient="pro@example.com"),
        StatusUpdate(reference="t3-n44", provider_id=bounced.message_id, kind=StatusKind.BOUNCED,
                     reason="550 5.1.1 The email account that you tried to reach does not exist.",
                     hard_bounce=True, recipient="nobody@example.com"),
    ]


def test_forged_tampered_and_stale_sendgrid_events_are_refused(sendgrid: FakeSendGrid,
                                                               email_sender: SendGridEmailSender) -> None:
    mail = sent_mail(sendgrid, email_sender)
    events = [sendgrid.event(mail, "bounce")]
    headers, body = sendgrid.signed_request(events)
    signature, timestamp = headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER]
    assert verify_sendgrid_signature(sendgrid.public_key, body, signature, timestamp)

    with FakeSendGrid() as impostor:  # its own key pair: a signature anyone could make
        forged_headers, _ = impostor.signed_request(events)
    assert not verify_sendgrid_signature(sendgrid.public_key, body, forged_headers[SIGNATURE_HEADER], timestamp)

    tampered = body.replace(b'"bounce"', b'"delivered"', 1)
    assert tampered != body
    assert not verify_sendgrid_signature(sendgrid.public_key, tampered, signature, timestamp)
    assert not verify_sendgrid_signature(sendgrid.public_key, body, signature, str(int(timestamp) + 1))
    assert not verify_sendgrid_signature(sendgrid.public_key, body, "", timestamp)
    assert not verify_sendgrid_signature(sendgrid.public_key, body, "%%%not base64", timestamp)
    assert not verify_sendgrid_signature(sendgrid.public_key, body, "c2hvcnQ=", timestamp)  # not a DER signature
    assert not verify_sendgrid_signature(sendgrid.public_key, body, signature, "yesterday")


def test_sendgrid_signature_older_than_ten_minutes_is_refused(sendgrid: FakeSendGrid) -> None:
    signed_at = 1_800_000_000
    headers, body = sendgrid.signed_request([{"event": "delivered"}], timestamp=signed_at)
    signature, timestamp = headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER]

    assert verify_sendgrid_signature(sendgrid.public_key, body, signature, timestamp, now=signed_at + 599)
    assert not verify_sendgrid_signature(sendgrid.public_key, body, signature, timestamp, now=signed_at + 601)
    assert not verify_sendgrid_signature(sendgrid.public_key, body, signature, timestamp, now=signed_at - 601)


def test_sendgrid_key_as_pem_is_accepted_and_a_broken_key_is_a_configuration_error(sendgrid: FakeSendGrid) -> None:
    headers, body = sendgrid.signed_request([{"event": "delivered"}])
    pem = "-----BEGIN PUBLIC KEY-----\n" + sendgrid.public_key + "\n-----END PUBLIC KEY-----\n"

    assert verify_sendgrid_signature(pem, body, headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER])
    for broken in ("", "bm90IGEga2V5"):
        with pytest.raises(ValueError, match="SendGrid Event Webhook verification key"):
            verify_sendgrid_signature(broken, body, headers[SIGNATURE_HEADER], headers[TIMESTAMP_HEADER])


def test_sendgrid_events_parse_to_status_changes() -> None:
    base = {"email": "a@example.com", "timestamp": 1, "sg_message_id": "abc123.filter0001.1.0", "ref": "t9-n7"}
    payload = json.dumps([
        {**base, "event": "processed"},
        {**base, "event": "deferred", "response": "400 try again"},
        {**base, "event": "delivered"},
        {**base, "event": "bounce", "type": "blocked", "reason": "421 greylisted"},
        {**base, "event": "bounce", "type": "bounce", "reason": "550 no such user"},
        {**base, "event": "dropped", "reason": "Bounced Address"},
        {**base, "event": "click", "url": "https://x"},
        {**base, "event": "delivered", "ref": "t9-n7; DROP TABLE"},  # not our reference: the message id decides
        {**base, "event": "delivered", "ref": None, "sg_message_id": None},
        "not an event",
    ]).encode()

    assert parse_sendgrid_events(payload) == [
        StatusUpdate("t9-n7", "abc123", StatusKind.DELIVERED, recipient="a@example.com"),
        StatusUpdate("t9-n7", "abc123", StatusKind.BOUNCED, reason="421 greylisted", recipient="a@example.com"),
        StatusUpdate("t9-n7", "abc123", StatusKind.BOUNCED, reason="550 no such user", hard_bounce=True,
                     recipient="a@example.com"),
        StatusUpdate("t9-n7", "abc123", StatusKind.FAILED, reason="Bounced Address", recipient="a@example.com"),
        StatusUpdate("", "abc123", StatusKind.DELIVERED, recipient="a@example.com"),
        StatusUpdate("", "", StatusKind.DELIVERED, recipient="a@example.com"),
    ]
    with pytest.raises(ValueError):
        parse_sendgrid_events(b'{"event": "delivered"}')
    with pytest.raises(ValueError):
        parse_sendgrid_events(b"not json")


# ---------------------------------------------------------------------------------------------------------------
# Twilio: sending
# ---------------------------------------------------------------------------------------------------------------

@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio(from_numbers={FROM_NUMBER}) as fake:
        yield fake


@pytest.fixture
def sms_sender(twilio: FakeTwilio) -> TwilioSmsSender:
    return TwilioSmsSender(twilio.account_sid, twilio.auth_token, from_number=FROM_NUMBER, base_url=twilio.url,
                           timeout=SHORT_TIMEOUT)


def test_twilio_gets_the_text_from_the_number_with_the_status_callback(twilio: FakeTwilio,
                                                                       sms_sender: TwilioSmsSender) -> None:
    callback = "https://sparkle.example/api/webhooks/twilio?ref=t3-n43"

    sid = sms_sender.send(outgoing_sms(status_callback=callback))

    [request] = twilio.requests
    assert request.path == f"/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    assert request.params == {"To": "+14155550123", "Body": "Sparkle: new lead near you. Open the app to reply.",
                              "From": FROM_NUMBER, "StatusCallback": callback}
    [message] = twilio.messages
    assert sid == message["sid"] and sid.startswith("SM") and len(sid) == 34
    assert message["status"] == "queued"


def test_twilio_through_a_messaging_service_without_callback(twilio: FakeTwilio) -> None:
    adapter = TwilioSmsSender(twilio.account_sid, twilio.auth_token, messaging_service_sid=SERVICE_SID,
                              base_url=twilio.url, timeout=SHORT_TIMEOUT)

    adapter.send(outgoing_sms())

    [request] = twilio.requests
    assert request.params == {"To": "+14155550123", "Body": "Sparkle: new lead near you. Open the app to reply.",
                              "MessagingServiceSid": SERVICE_SID}
    assert twilio.messages[0]["status"] == "accepted"


def test_twilio_needs_a_sender_and_credentials() -> None:
    with pytest.raises(ValueError, match="needs a sender"):
        TwilioSmsSender("AC123", "token")
    with pytest.raises(ValueError, match="account SID and an auth token"):
        TwilioSmsSender("AC123", "", from_number=FROM_NUMBER)


@pytest.mark.parametrize(("to", "reason"), [
    ("+15005550001", "21211: Invalid 'To' Phone Number: +15005550001"),
    ("+15005550009", "21614: 'To' number is not a valid mobile number"),
    ("+15005550004", "21610: Attempt to send to unsubscribed recipient"),
    ("0123", "21211: Invalid 'To' Phone Number: 0123"),
])
def test_twilio_refusal_is_permanent_with_code_and_message(twilio: FakeTwilio, sms_sender: TwilioSmsSender,
                                                           to: str, reason: str) -> None:
    with pytest.raises(PermanentDeliveryError) as refused:
        sms_sender.send(outgoing_sms(to=to))

    assert str(refused.value) == reason
    assert twilio.messages == []


def test_twilio_wrong_sender_or_credentials_are_permanent(twilio: FakeTwilio) -> None:
    unknown_sender = TwilioSmsSender(twilio.account_sid, twilio.auth_token, from_number="+15550001111",
                                     base_url=twilio.url, timeout=SHORT_TIMEOUT)
    wrong_token = TwilioSmsSender(twilio.account_sid, "not-the-token", from_number=FROM_NUMBER,
                                  base_url=twilio.url, timeout=SHORT_TIMEOUT)

    with pytest.raises(PermanentDeliveryError, match="^21606: The From phone number"):
        unknown_sender.send(outgoing_sms())
    with pytest.raises(PermanentDeliveryError, match="^20003: Authenticate$"):
        wrong_token.send(outgoing_sms())


@pytest.mark.parametrize("status", [429, 500, 503])
def test_twilio_rate_limit_and_outage_are_transient(twilio: FakeTwilio, sms_sender: TwilioSmsSender,
                                                    status: int) -> None:
    twilio.fail_next(1, status)

    with pytest.raises(DeliveryError, match=f"Twilio answered {status}"):
        sms_sender.send(outgoing_sms())
    assert twilio.messages == []

    sms_sender.send(outgoing_sms())
    assert len(twilio.messages) == 1


def test_twilio_injected_client_error_is_permanent(twilio: FakeTwilio, sms_sender: TwilioSmsSender) -> None:
    twilio.fail_next(1, 400, code=21408, message="Permission to send an SMS has not been enabled for the region")

    with pytest.raises(PermanentDeliveryError) as refused:
        sms_sender.send(outgoing_sms())

    assert str(refused.value) == "21408: Permission to send an SMS has not been enabled for the region"


def test_twilio_timeout_and_unreachable_are_transient(twilio: FakeTwilio, sms_sender: TwilioSmsSender) -> None:
    twilio.hang_next(1, seconds=3)
    started = time.monotonic()
    with pytest.raises(DeliveryError, match="Twilio could not be reached"):
        sms_sender.send(outgoing_sms())
    assert time.monotonic() - started < 2

    gone = TwilioSmsSender(twilio.account_sid, twilio.auth_token, from_number=FROM_NUMBER,
                           base_url=f"http://127.0.0.1:{closed_port()}", timeout=SHORT_TIMEOUT)
    with pytest.raises(DeliveryError, match="Twilio could not be reached"):
        gone.send(outgoing_sms())


# ---------------------------------------------------------------------------------------------------------------
# Twilio: status callbacks
# ---------------------------------------------------------------------------------------------------------------

def test_signed_twilio_status_callback_is_accepted_and_parsed(twilio: FakeTwilio, sms_sender: TwilioSmsSender,
                                                              inbox: tuple[str, list[Received]]) -> None:
    base, received = inbox
    sid = sms_sender.send(outgoing_sms(status_callback=f"{base}/api/webhooks/twilio?ref=t3-n43"))

    assert twilio.send_status(sid, "sent") == 200
    assert twilio.send_status(sid, "delivered") == 200

    updates = []
    for request in received:
        params = dict(parse_qsl(request.body.decode()))
        assert verify_twilio_signature(twilio.auth_token, request.url, params, request.headers["X-Twilio-Signature"])
        updates.append(parse_twilio_status(params, request.url.rpartition("ref=")[2]))
    assert updates == [None, StatusUpdate(reference="t3-n43", provider_id=sid, kind=StatusKind.DELIVERED,
                                          recipient="+14155550123")]


def test_forged_and_tampered_twilio_callbacks_are_refused(twilio: FakeTwilio, sms_sender: TwilioSmsSender) -> None:
    url = "https://sparkle.example/api/webhooks/twilio?ref=t3-n43"
    sid = sms_sender.send(outgoing_sms(status_callback=url))
    callback = twilio.status_callback(sid, "undelivered")
    assert verify_twilio_signature(twilio.auth_token, url, callback.params, callback.signature)

    assert not verify_twilio_signature("another-accounts-token", url, callback.params, callback.signature)
    assert not verify_twilio_signature(twilio.auth_token, url, {**callback.params, "MessageStatus": "delivered"},
                                       callback.signature)
    assert not verify_twilio_signature(twilio.auth_token, url.replace("t3-n43", "t3-n44"), callback.params,
                                       callback.signature)
    assert not verify_twilio_signature(twilio.auth_token, url, callback.params, "")
    with pytest.raises(ValueError, match="auth token is empty"):
        verify_twilio_signature("", url, callback.params, callback.signature)


def test_twilio_statuses_parse_to_status_changes() -> None:
    params = {"MessageSid": "SM1", "To": "+14155550123", "AccountSid": "AC1"}

    assert parse_twilio_status({**params, "MessageStatus": "delivered"}, "t1-n2") == StatusUpdate(
        "t1-n2", "SM1", StatusKind.DELIVERED, recipient="+14155550123")
    assert parse_twilio_status({**params, "MessageStatus": "undelivered", "ErrorCode": "30003"}, "t1-n2") == \
        StatusUpdate("t1-n2", "SM1", StatusKind.FAILED,
                     reason="Twilio undelivered: error 30003, unreachable destination handset",
                     recipient="+14155550123")
    assert parse_twilio_status({**params, "MessageStatus": "failed", "ErrorCode": "30410"}, "t1-n2") == \
        StatusUpdate("t1-n2", "SM1", StatusKind.FAILED,
                     reason="Twilio failed: error 30410, see https://www.twilio.com/docs/api/errors/30410",
                     recipient="+14155550123")
    foreign = parse_twilio_status({**params, "MessageStatus": "failed"}, "t1-n2&ref=t9-n9")
    assert foreign is not None and foreign.reference == ""  # not our reference: the sid decides
    for step in ("accepted", "queued", "sending", "sent", ""):
        assert parse_twilio_status({**params, "MessageStatus": step}, "t1-n2") is None


# ---------------------------------------------------------------------------------------------------------------
# References
# ---------------------------------------------------------------------------------------------------------------

def test_references_round_trip_and_strangers_are_refused() -> None:
    assert format_reference(3, 42) == "t3-n42"
    assert parse_reference("t3-n42") == (3, 42)
    for stranger in ("", "t3-n", "t0-n1", "t3-n42x", " t3-n42", "t-1-n2", "t3_n42", "T3-N42", "t3-n" + "9" * 30):
        assert parse_reference(stranger) is None


# ---------------------------------------------------------------------------------------------------------------
# Development channels and the unconfigured ones
# ---------------------------------------------------------------------------------------------------------------

def test_maildir_stores_a_multipart_message_and_reads_back_the_text(tmp_path: Path) -> None:
    outbox = MaildirEmailSender(tmp_path / "outbox")

    key = outbox.send(outgoing_email(text="Hello Ana,\nyou got a quote: 120 €.\n"))

    raw = (tmp_path / "outbox" / "new" / key).read_bytes()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert str(message["From"]) == "Sparkle Homes <no-reply@marketplace.localhost>"
    assert message["To"] == "pro@example.com"
    assert message["Message-ID"] == "<t3-n42@marketplace.localhost>"
    assert message["List-Unsubscribe"] == UNSUBSCRIBE["List-Unsubscribe"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert outbox.read(key) == "Hello Ana,\nyou got a quote: 120 €.\n"
    assert outbox.read_html(key) == "<p>You got a <b>quote</b>.</p>\n"
    assert outbox.read("no-such-key") is None


def test_maildir_reads_messages_stored_before_html_existed(tmp_path: Path) -> None:
    legacy = EmailMessage()
    legacy["Subject"] = "Verify your email"
    legacy.set_content("Open this link.\n")
    key = mailbox.Maildir(tmp_path / "outbox", create=True).add(legacy)

    outbox = MaildirEmailSender(tmp_path / "outbox")
    assert outbox.read(key) == "Open this link.\n"
    assert outbox.read_html(key) == ""


def test_dev_sms_outbox_round_trip_newest_first(tmp_path: Path) -> None:
    outbox = DevSmsOutbox(tmp_path / "sms")
    first = outbox.send(outgoing_sms(to="+14155550100", body="Your code is 123456"))
    second = outbox.send(outgoing_sms(to="+14155550199", body="New lead: Deep clean — 2 km away"))
    third = outbox.send(outgoing_sms(to="+14155550100", body="Your code is 654321"))

    assert first.startswith("dev-") and len({first, second, third}) == 3
    assert [m.provider_id for m in outbox.messages()] == [third, second, first]
    assert [m.body for m in outbox.messages(to="+14155550100")] == ["Your code is 654321", "Your code is 123456"]
    assert [m.provider_id for m in outbox.messages(limit=1)] == [third]
    assert outbox.messages(limit=0) == []
    assert outbox.messages()[1].body == "New lead: Deep clean — 2 km away"
    assert outbox.messages()[0].created_at.endswith("+00:00")
    assert DevSmsOutbox(tmp_path / "empty").messages() == []


def test_dev_sms_outbox_concurrent_appends_lose_nothing(tmp_path: Path) -> None:
    outbox = DevSmsOutbox(tmp_path / "sms")
    body = "x" * 3000  # long lines, written from many threads at once: none may interleave with another

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(lambda i: outbox.send(outgoing_sms(body=f"{i}:{body}")), range(200)))

    stored = outbox.messages(limit=1000)
    assert sorted(m.provider_id for m in stored) == sorted(ids)
    assert all(m.body.endswith(body) for m in stored)


def test_dev_sms_outbox_skips_a_torn_line(tmp_path: Path) -> None:
    outbox = DevSmsOutbox(tmp_path / "sms")
    kept = outbox.send(outgoing_sms())
    with (tmp_path / "sms" / "messages.jsonl").open("ab") as file:
        file.write(b'{"provider_id": "dev-torn", "to": "+1')  # a crash mid-write

    assert [m.provider_id for m in outbox.messages()] == [kept]


def test_unconfigured_email_fails_transiently_with_a_clear_message() -> None:
    # (without an SMS provider the SMS channel is simply off: bootstrap passes no sender)
    with pytest.raises(DeliveryError, match="No email provider is configured"):
        UnconfiguredEmailSender().send(outgoing_email())
