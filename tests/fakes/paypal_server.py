"""A local fake of the PayPal REST API, so the real `paypal-server-sdk` can be tested offline.

It speaks the parts of PayPal's HTTP API our gateway uses, with PayPal's shapes: OAuth client credentials,
Orders v2 (create, get, authorize), Payments v2 (get authorization, capture, void, refund), Payouts v1,
and webhook signature verification; plus a hosted approval page that stands in for the payer's PayPal login.

What it checks, because the real service does: Basic auth on the token endpoint and the bearer token on every
other call, amount formats (no decimals in JPY/HUF/TWD), order and authorization states, and PayPal-Request-Id
idempotency (a repeated POST with the same id returns the first successful response and changes nothing).

Test controls: `fail_next`, `hang_next`, `decline_next_authorization`, `send_webhook` / `signed_webhook`,
and the recorded `requests` plus counters for assertions.

    with running_fake(webhook_url="http://localhost:3000/api/webhooks/paypal") as fake:
        gateway = PayPalGateway(fake.client_id, fake.client_secret, fake.webhook_id, api_base=fake.url)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import json
import logging
import re
import secrets
import string
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest

from tests.fakes.http_fake import ServedFake

log = logging.getLogger(__name__)

# PayPal refuses decimals in these currencies; every other one takes at most two.
WHOLE_UNIT_CURRENCIES = {"JPY", "HUF", "TWD"}
AUTH_ALGO = "SHA256withRSA"


class PayPalError(Exception):
    """An error answer in PayPal's shape: {"name", "message", "debug_id", "details": [{"issue", ...}]}."""

    def __init__(self, status: int, name: str, message: str, issue: str | None = None, description: str = ""):
        super().__init__(message)
        self.status = status
        self.body = {"name": name, "message": message, "debug_id": secrets.token_hex(6)}
        if issue:
            self.body["details"] = [{"issue": issue, "description": description or message}]


def _unprocessable(issue: str, description: str) -> PayPalError:
    return PayPalError(422, "UNPROCESSABLE_ENTITY",
                       "The requested action could not be performed, semantically incorrect, or failed business "
                       "validation.", issue, description)


def _invalid(issue: str, description: str) -> PayPalError:
    return PayPalError(400, "INVALID_REQUEST",
                       "Request is not well-formed, syntactically incorrect, or violates schema.", issue, description)


def _not_found(description: str) -> PayPalError:
    return PayPalError(404, "RESOURCE_NOT_FOUND", "The specified resource does not exist.", "INVALID_RESOURCE_ID",
                       description)


def _paypal_id() -> str:
    """17 upper-case letters and digits, like PayPal's order, authorization and capture ids."""
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(17))


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _canonical(event: dict) -> bytes:
    """The bytes a webhook is sent and signed as; verification re-serialises the event the same way."""
    return json.dumps(event, sort_keys=True, separators=(",", ":")).encode()


@dataclass
class RecordedRequest:
    method: str
    path: str
    request_id: str | None  # the PayPal-Request-Id header
    body: object = None  # parsed JSON (or form fields for the token call)


@dataclass
class _Injection:
    remaining: int
    path: str | None  # only requests whose path contains this count; None: every API call
    status: int = 500
    seconds: float = 0.0

    def matches(self, path: str) -> bool:
        if self.path is not None:
            return self.path in path
        # By default a failure hits API calls, not the token call or the payer's approval page,
        # so `fail_next(1)` means "the next payment call fails" whatever the token cache holds.
        return not (path.startswith("/v1/oauth2/") or path.startswith("/approve/"))


@dataclass
class _Response:
    status: int
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)
    html: str | None = None
    approve_order: str | None = None  # the payer approved this order: finish in approve(), outside the lock


def _money(amount: dict | None, *, what: str = "amount") -> tuple[str, Decimal]:
    """Validate an amount object the way PayPal does and return (currency, value)."""
    if not isinstance(amount, dict) or not amount.get("currency_code") or amount.get("value") is None:
        raise _invalid("MISSING_REQUIRED_PARAMETER", f"{what} with currency_code and value is required.")
    currency, raw = str(amount["currency_code"]).upper(), str(amount["value"])
    if not re.fullmatch(r"\d{1,10}(\.\d{1,2})?", raw):
        raise _invalid("INVALID_PARAMETER_SYNTAX", f"{what}.value {raw!r} is not a valid amount.")
    if currency in WHOLE_UNIT_CURRENCIES and "." in raw:
        raise _unprocessable("DECIMAL_PRECISION", f"{currency} does not support decimal amounts.")
    try:
        value = Decimal(raw)
    except InvalidOperation:  # pragma: no cover - the regex above already excludes this
        raise _invalid("INVALID_PARAMETER_SYNTAX", f"{what}.value is not a number.") from None
    return currency, value


def _fmt(currency: str, value: Decimal) -> dict:
    places = Decimal(1) if currency in WHOLE_UNIT_CURRENCIES else Decimal("0.01")
    return {"currency_code": currency, "value": str(value.quantize(places))}


def _with_query(url: str, **params: str) -> str:
    """Append query parameters the way PayPal appends `token` and `PayerID` to the return URL."""
    parts = urlsplit(url)
    query = parts.query + ("&" if parts.query else "") + urlencode(params)
    return urlunsplit(parts._replace(query=query))


class FakePayPal(ServedFake):
    """In-memory PayPal. Construct, `start()`, use `url` as the SDK's API base (PAYPAL_API_BASE), `stop()` at the
    end."""

    thread_name = "fake-paypal"

    def __init__(self, client_id: str = "fake-paypal-client", client_secret: str = "fake-paypal-secret",
                 webhook_id: str = "WH-FAKE-0001", *, webhook_url: str | None = None, host: str = "127.0.0.1",
                 port: int = 0):
        self.client_id, self.client_secret, self.webhook_id = client_id, client_secret, webhook_id
        self.webhook_url = webhook_url  # where the approval page delivers CHECKOUT.ORDER.APPROVED
        super().__init__(host, port)
        self._lock = threading.RLock()
        self._signing_key = secrets.token_bytes(32)
        self._tokens: set[str] = set()
        self._replays: dict[tuple[str, str], _Response] = {}  # (path, PayPal-Request-Id) -> first answer
        self._transmissions: dict[str, str] = {}  # transmission id -> signature the fake produced
        self._failures: list[_Injection] = []
        self._hangs: list[_Injection] = []
        self._decline_authorizations = 0
        self.orders: dict[str, dict] = {}
        self.authorizations: dict[str, dict] = {}
        self.captures: dict[str, dict] = {}
        self.refunds: dict[str, dict] = {}
        self.payouts: dict[str, dict] = {}
        self.requests: list[RecordedRequest] = []
        self.webhook_deliveries: list[dict] = []  # {"url", "event_type", "status" or "error"}
        self.authorizations_created = 0
        self.captures_created = 0
        self.refunds_created = 0
        self.payouts_created = 0

    # ------------------------------------------------------------------ lifecycle

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        return type("FakePayPalHandler", (_Handler,), {"fake": self})

    @property
    def cert_url(self) -> str:
        return f"{self.url}/v1/notifications/certs/CERT-fake-{self.webhook_id}"

    def approve_url(self, order_id: str) -> str:
        return f"{self.url}/approve/{order_id}"

    # ------------------------------------------------------------------ test controls

    def fail_next(self, n: int = 1, status: int = 500, *, path: str | None = None) -> None:
        """The next `n` API calls (whose path contains `path`, if given) answer `status` without doing anything."""
        with self._lock:
            self._failures.append(_Injection(n, path, status=status))

    def hang_next(self, n: int = 1, seconds: float = 5.0, *, path: str | None = None) -> None:
        """The next `n` matching calls are carried out, then answered only after `seconds`: the work happened
        but a client with a shorter timeout never hears of it, which is what idempotency keys are for."""
        with self._lock:
            self._hangs.append(_Injection(n, path, seconds=seconds))

    def decline_next_authorization(self, n: int = 1) -> None:
        """The next `n` order authorizations fail with 422 INSTRUMENT_DECLINED (the payer's funding failed)."""
        with self._lock:
            self._decline_authorizations += n

    def approve(self, order_id: str) -> str:
        """What the payer's click on Approve does; returns the return URL the browser is sent to."""
        with self._lock:
            order = self._order(order_id)
            if order["status"] in ("CREATED", "PAYER_ACTION_REQUIRED"):
                order["status"] = "APPROVED"
                order["payer"] = {"payer_id": _paypal_id()[:13], "email_address": "payer@example.com",
                                  "name": {"given_name": "Sandbox", "surname": "Payer"}}
                order["update_time"] = _now()
            approved = order["status"] == "APPROVED"
            event_resource = self._order_view(order)
            location = _with_query(order["return_url"], token=order_id, PayerID=order["payer"]["payer_id"])
        if approved and self.webhook_url:
            self.send_webhook("CHECKOUT.ORDER.APPROVED", event_resource)
        return location

    def signed_webhook(self, event_type: str, resource: dict, *, resource_type: str = "",
                       summary: str = "") -> tuple[bytes, dict[str, str]]:
        """A webhook body and PayPal-style transmission headers signed by this fake (verifiable by it only)."""
        event = {
            "id": f"WH-{_paypal_id()}-{_paypal_id()}",
            "event_version": "1.0",
            "create_time": _now(),
            "resource_type": resource_type or _resource_type(event_type),
            "resource_version": "2.0",
            "event_type": event_type,
            "summary": summary or event_type.replace(".", " ").title(),
            "resource": resource,
            "links": [{"href": f"{self.url}/v1/notifications/webhooks-events/{resource.get('id', '')}",
                       "rel": "self", "method": "GET"}],
        }
        body = _canonical(event)
        transmission_id, transmission_time = str(uuid.uuid1()), _now()
        signature = self._signature(transmission_id, transmission_time, body)
        with self._lock:
            self._transmissions[transmission_id] = signature
        headers = {
            "Content-Type": "application/json",
            "PAYPAL-TRANSMISSION-ID": transmission_id,
            "PAYPAL-TRANSMISSION-TIME": transmission_time,
            "PAYPAL-TRANSMISSION-SIG": signature,
            "PAYPAL-CERT-URL": self.cert_url,
            "PAYPAL-AUTH-ALGO": AUTH_ALGO,
        }
        return body, headers

    def send_webhook(self, event_type: str, resource: dict, *, url: str | None = None) -> int | None:
        """POST a signed event to `url` (default `webhook_url`); returns the HTTP status, None if unreachable.
        Delivery is synchronous so a test knows the app has seen the event before the payer returns."""
        target = url or self.webhook_url
        if not target:
            raise ValueError("no webhook_url set on the fake")
        body, headers = self.signed_webhook(event_type, resource)
        record: dict = {"url": target, "event_type": event_type, "event_id": json.loads(body)["id"]}
        try:
            request = urllib.request.Request(target, data=body, headers=headers, method="POST")
            with urllib.request.urlopen(request, timeout=15) as answer:
                record["status"] = answer.status
        except urllib.error.HTTPError as exc:
            record["status"] = exc.code
        except OSError as exc:  # like PayPal, an unreachable endpoint is recorded, not raised
            record["status"], record["error"] = None, str(exc)
            log.warning("fake PayPal could not deliver %s to %s: %s", event_type, target, exc)
        self.webhook_deliveries.append(record)
        return record["status"]

    def requests_to(self, fragment: str, method: str = "POST") -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and fragment in r.path]

    # ------------------------------------------------------------------ dispatch (called by the handler)

    def handle(self, method: str, path: str, headers, raw: bytes) -> tuple[_Response, float]:
        """Answer one request; returns the response and how long to hold it back."""
        body = _parse_body(headers.get("Content-Type", ""), raw)
        request_id = headers.get("PayPal-Request-Id")
        with self._lock:
            self.requests.append(RecordedRequest(method, path, request_id, body))
            failure = _take(self._failures, path)
            if failure is not None:
                error = PayPalError(failure.status, "INTERNAL_SERVER_ERROR", "An internal server error occurred.")
                return _Response(failure.status, error.body), 0.0
            hang = _take(self._hangs, path)
            response = self._answer(method, path, headers, body, request_id)
        if response.approve_order:
            # Approving may deliver a webhook whose receiver calls back into this fake (to verify it, to
            # authorize), so it must run after the lock is released.
            response.headers["Location"] = self.approve(response.approve_order)
        return response, hang.seconds if hang else 0.0

    def _answer(self, method: str, path: str, headers, body, request_id: str | None) -> _Response:
        replay_key = (path, request_id) if method == "POST" and request_id else None
        if replay_key in self._replays:
            return self._replays[replay_key]
        try:
            route, params = _route(method, path)
            if route is None:
                raise _not_found(f"No route for {method} {path}.")
            if not route.startswith(("_approve", "_token")):
                self._check_bearer(headers)
            response = getattr(self, route)(*params, body=body, headers=headers)
        except PayPalError as exc:
            return _Response(exc.status, exc.body)
        if replay_key and 200 <= response.status < 300:
            self._replays[replay_key] = response
        return response

    def _check_bearer(self, headers) -> None:
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth.removeprefix("Bearer ") not in self._tokens:
            raise PayPalError(401, "AUTHENTICATION_FAILURE",
                              "Authentication failed due to invalid authentication credentials or a missing "
                              "Authorization header.")

    # ------------------------------------------------------------------ OAuth

    def _token(self, *, body, headers) -> _Response:
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if headers.get("Authorization", "") != f"Basic {expected}":
            return _Response(401, {"error": "invalid_client", "error_description": "Client Authentication failed"})
        if (body or {}).get("grant_type") != "client_credentials":
            return _Response(400, {"error": "unsupported_grant_type", "error_description": "Grant Type is NULL"})
        token = f"A21AA{secrets.token_urlsafe(40)}"
        self._tokens.add(token)
        return _Response(200, {"scope": "https://uri.paypal.com/services/payments/payment/authcapture",
                               "access_token": token, "token_type": "Bearer", "app_id": "APP-FAKE",
                               "expires_in": 32400, "nonce": secrets.token_hex(8)})

    # ------------------------------------------------------------------ Orders v2

    def _create_order(self, *, body, headers) -> _Response:
        body = body or {}
        intent = body.get("intent")
        if intent not in ("CAPTURE", "AUTHORIZE"):
            raise _invalid("INVALID_PARAMETER_VALUE", "intent must be CAPTURE or AUTHORIZE.")
        units = body.get("purchase_units") or []
        if len(units) != 1:
            raise _invalid("INVALID_ARRAY_MAX_ITEMS", "This fake supports exactly one purchase unit.")
        unit = units[0]
        currency, value = _money(unit.get("amount"), what="purchase_units[0].amount")
        experience = ((body.get("payment_source") or {}).get("paypal") or {}).get("experience_context")
        context = experience or body.get("application_context") or {}
        if not context.get("return_url") or not context.get("cancel_url"):
            raise _unprocessable("MISSING_REQUIRED_PARAMETER", "return_url and cancel_url are required here.")
        order_id = _paypal_id()
        self.orders[order_id] = {
            "id": order_id, "intent": intent, "currency": currency, "value": value,
            # payment_source.paypal (the current way) answers PAYER_ACTION_REQUIRED + a payer-action link;
            # the legacy application_context answers CREATED + an approve link.
            "status": "PAYER_ACTION_REQUIRED" if experience else "CREATED",
            "approve_rel": "payer-action" if experience else "approve",
            "reference_id": unit.get("reference_id", "default"), "custom_id": unit.get("custom_id"),
            "description": unit.get("description"), "invoice_id": unit.get("invoice_id"),
            "return_url": context["return_url"], "cancel_url": context["cancel_url"],
            "payer": None, "authorization_ids": [], "create_time": _now(), "update_time": _now(),
        }
        return _Response(201, self._order_view(self.orders[order_id]))

    def _get_order(self, order_id: str, *, body, headers) -> _Response:
        return _Response(200, self._order_view(self._order(order_id)))

    def _authorize_order(self, order_id: str, *, body, headers) -> _Response:
        order = self._order(order_id)
        if order["intent"] != "AUTHORIZE":
            raise _unprocessable("ACTION_DOES_NOT_MATCH_INTENT", "Order was created with intent CAPTURE.")
        if order["status"] == "COMPLETED":
            raise _unprocessable("ORDER_ALREADY_AUTHORIZED",
                                 "Order already authorized. If 'intent=AUTHORIZE' only one authorization per "
                                 "order is allowed.")
        if order["status"] != "APPROVED":
            raise _unprocessable("ORDER_NOT_APPROVED", "Payer has not yet approved the Order for payment.")
        if self._decline_authorizations:
            self._decline_authorizations -= 1
            raise _unprocessable("INSTRUMENT_DECLINED",
                                 "The instrument presented was either declined by the processor or bank, or it "
                                 "can't be used for this payment.")
        auth_id = _paypal_id()
        self.authorizations[auth_id] = {
            "id": auth_id, "order_id": order_id, "status": "CREATED", "currency": order["currency"],
            "value": order["value"], "custom_id": order["custom_id"], "capture_ids": [],
            "create_time": _now(), "update_time": _now(),
            "expiration_time": (datetime.now(timezone.utc) + timedelta(days=29)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        order["authorization_ids"].append(auth_id)
        order["status"], order["update_time"] = "COMPLETED", _now()
        self.authorizations_created += 1
        return _Response(201, self._order_view(order))

    # ------------------------------------------------------------------ Payments v2

    def _get_authorization(self, auth_id: str, *, body, headers) -> _Response:
        return _Response(200, self._authorization_view(self._authorization(auth_id)))

    def _capture_authorization(self, auth_id: str, *, body, headers) -> _Response:
        auth = self._authorization(auth_id)
        if auth["status"] == "VOIDED":
            raise _unprocessable("AUTHORIZATION_VOIDED", "A voided authorization cannot be captured or reauthorized.")
        if auth["status"] == "CAPTURED":
            raise _unprocessable("AUTHORIZATION_ALREADY_CAPTURED",
                                 "Authorization has been previously captured and hence cannot be captured again.")
        body = body or {}
        captured = sum((self.captures[c]["value"] for c in auth["capture_ids"]), Decimal(0))
        currency, value = _money(body["amount"]) if "amount" in body else (auth["currency"], auth["value"] - captured)
        if currency != auth["currency"]:
            raise _unprocessable("CURRENCY_MISMATCH", "Currency of capture must be the same as the authorization.")
        if value <= 0 or value > auth["value"] - captured:
            raise _unprocessable("MAX_CAPTURE_AMOUNT_EXCEEDED", "Capture amount exceeds the allowable limit.")
        capture_id = _paypal_id()
        final = bool(body.get("final_capture", False))
        self.captures[capture_id] = {
            "id": capture_id, "authorization_id": auth_id, "order_id": auth["order_id"], "status": "COMPLETED",
            "currency": currency, "value": value, "final_capture": final, "custom_id": auth["custom_id"],
            "refund_ids": [], "create_time": _now(), "update_time": _now(),
        }
        auth["capture_ids"].append(capture_id)
        fully = final or captured + value == auth["value"]
        auth["status"], auth["update_time"] = ("CAPTURED" if fully else "PARTIALLY_CAPTURED"), _now()
        self.captures_created += 1
        return _Response(201, self._capture_view(self.captures[capture_id]))

    def _void_authorization(self, auth_id: str, *, body, headers) -> _Response:
        auth = self._authorization(auth_id)
        if auth["status"] == "VOIDED":
            raise _unprocessable("PREVIOUSLY_VOIDED",
                                 "Authorization has been previously voided and hence cannot be voided again.")
        if auth["status"] == "CAPTURED":
            raise _unprocessable("PREVIOUSLY_CAPTURED",
                                 "Authorization has been previously captured and hence cannot be voided.")
        auth["status"], auth["update_time"] = "VOIDED", _now()
        # PayPal answers 204 unless the caller asked for the representation.
        if "return=representation" in headers.get("Prefer", ""):
            return _Response(200, self._authorization_view(auth))
        return _Response(204)

    def _refund_capture(self, capture_id: str, *, body, headers) -> _Response:
        capture = self.captures.get(capture_id)
        if capture is None:
            raise _not_found(f"Specified resource ID {capture_id} does not exist.")
        body = body or {}
        refunded = sum((self.refunds[r]["value"] for r in capture["refund_ids"]), Decimal(0))
        remaining = capture["value"] - refunded
        currency, value = _money(body["amount"]) if "amount" in body else (capture["currency"], remaining)
        if currency != capture["currency"]:
            raise _unprocessable("REFUND_CURRENCY_MISMATCH", "Refund must be in the currency of the capture.")
        if value <= 0 or value > remaining:
            raise _unprocessable("REFUND_AMOUNT_EXCEEDED",
                                 "The refund amount must be less than or equal to the capture amount that has not "
                                 "yet been refunded.")
        refund_id = _paypal_id()
        self.refunds[refund_id] = {"id": refund_id, "capture_id": capture_id, "status": "COMPLETED",
                                   "currency": currency, "value": value, "custom_id": body.get("custom_id"),
                                   "note_to_payer": body.get("note_to_payer"), "create_time": _now()}
        capture["refund_ids"].append(refund_id)
        capture["status"] = "REFUNDED" if value == remaining else "PARTIALLY_REFUNDED"
        self.refunds_created += 1
        return _Response(201, self._refund_view(self.refunds[refund_id]))

    # ------------------------------------------------------------------ Payouts v1

    def _create_payout(self, *, body, headers) -> _Response:
        body = body or {}
        sender = body.get("sender_batch_header") or {}
        batch_id = sender.get("sender_batch_id")
        items = body.get("items") or []
        if not batch_id or not items:
            raise PayPalError(400, "VALIDATION_ERROR", "Invalid request - see details.", "REQUIRED_FIELD_MISSING",
                              "sender_batch_header.sender_batch_id and items are required.")
        if any(p["sender_batch_id"] == batch_id for p in self.payouts.values()):
            raise PayPalError(400, "USER_BUSINESS_ERROR", "User business error.", "DUPLICATE_REQUEST_ID",
                              "Batch with given sender_batch_id already exists.")
        for item in items:
            _money(_payout_amount(item.get("amount")), what="items[].amount")
            if item.get("recipient_type", "EMAIL") == "EMAIL" and "@" not in str(item.get("receiver", "")):
                raise PayPalError(400, "VALIDATION_ERROR", "Invalid request - see details.", "RECEIVER_INVALID",
                                  "Receiver is invalid or does not match with type.")
        payout_id = _paypal_id()[:13]
        self.payouts[payout_id] = {"id": payout_id, "sender_batch_id": batch_id, "sender_batch_header": sender,
                                   "items": items, "status": "PENDING"}
        self.payouts_created += 1
        return _Response(201, {
            "batch_header": {"payout_batch_id": payout_id, "batch_status": "PENDING",
                             "sender_batch_header": sender},
            "links": [{"href": f"{self.url}/v1/payments/payouts/{payout_id}", "rel": "self", "method": "GET"}],
        })

    # ------------------------------------------------------------------ Webhooks

    def _verify_webhook(self, *, body, headers) -> _Response:
        return _Response(200, {"verification_status": "SUCCESS" if self._signature_valid(body or {}) else "FAILURE"})

    def _signature_valid(self, body: dict) -> bool:
        event = body.get("webhook_event")
        transmission_id = str(body.get("transmission_id", ""))
        issued = self._transmissions.get(transmission_id)
        if not isinstance(event, dict) or issued is None:
            return False  # an event this fake never sent
        if (body.get("webhook_id") != self.webhook_id or body.get("auth_algo") != AUTH_ALGO
                or body.get("cert_url") != self.cert_url):
            return False
        expected = self._signature(transmission_id, str(body.get("transmission_time", "")), _canonical(event))
        return hmac.compare_digest(expected, str(body.get("transmission_sig", ""))) and expected == issued

    def _signature(self, transmission_id: str, transmission_time: str, body: bytes) -> str:
        # PayPal signs "<transmission id>|<time>|<webhook id>|<crc32 of body>" with RSA; an HMAC with a key only
        # this fake holds gives the same property: only the fake can produce a signature the fake accepts.
        message = f"{transmission_id}|{transmission_time}|{self.webhook_id}|{binascii.crc32(body)}"
        digest = hmac.new(self._signing_key, message.encode(), hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    # ------------------------------------------------------------------ hosted approval page

    def _approve_page(self, order_id: str, *, body, headers) -> _Response:
        order = self.orders.get(order_id)
        if order is None:
            return _Response(404, html="<h1>PayPal sandbox</h1><p>This checkout does not exist.</p>")
        amount = _fmt(order["currency"], order["value"])
        page = f"""<!doctype html><html><head><title>PayPal sandbox</title></head><body>
<h1>PayPal sandbox</h1>
<p>{html.escape(order.get("description") or "Payment")}</p>
<p id="amount">{amount["currency_code"]} {amount["value"]}</p>
<form method="post" action="/approve/{order_id}"><button type="submit" id="approve">Approve</button></form>
<p><a id="cancel" href="/approve/{order_id}/cancel">Cancel and return to the merchant</a></p>
</body></html>"""
        return _Response(200, html=page)

    def _approve_submit(self, order_id: str, *, body, headers) -> _Response:
        if order_id not in self.orders:
            return _Response(404, html="<h1>PayPal sandbox</h1><p>This checkout does not exist.</p>")
        return _Response(303, approve_order=order_id)

    def _approve_cancel(self, order_id: str, *, body, headers) -> _Response:
        order = self.orders.get(order_id)
        if order is None:
            return _Response(404, html="<h1>PayPal sandbox</h1><p>This checkout does not exist.</p>")
        return _Response(303, headers={"Location": _with_query(order["cancel_url"], token=order_id)})

    # ------------------------------------------------------------------ representations

    def _order(self, order_id: str) -> dict:
        order = self.orders.get(order_id)
        if order is None:
            raise _not_found(f"Specified resource ID {order_id} does not exist.")
        return order

    def _authorization(self, auth_id: str) -> dict:
        auth = self.authorizations.get(auth_id)
        if auth is None:
            raise _not_found(f"Specified resource ID {auth_id} does not exist.")
        return auth

    def _order_view(self, order: dict) -> dict:
        unit = {"reference_id": order["reference_id"], "amount": _fmt(order["currency"], order["value"]),
                "payee": {"email_address": "merchant@example.com", "merchant_id": "FAKEMERCHANT01"}}
        for key in ("custom_id", "description", "invoice_id"):
            if order.get(key):
                unit[key] = order[key]
        auths = [self.authorizations[a] for a in order["authorization_ids"]]
        if auths:
            captures = [self.captures[c] for a in auths for c in a["capture_ids"]]
            refunds = [self.refunds[r] for c in captures for r in c["refund_ids"]]
            unit["payments"] = {"authorizations": [self._authorization_view(a) for a in auths]}
            if captures:
                unit["payments"]["captures"] = [self._capture_view(c) for c in captures]
            if refunds:
                unit["payments"]["refunds"] = [self._refund_view(r) for r in refunds]
        view = {"id": order["id"], "intent": order["intent"], "status": order["status"], "purchase_units": [unit],
                "create_time": order["create_time"], "update_time": order["update_time"],
                "links": [{"href": f"{self.url}/v2/checkout/orders/{order['id']}", "rel": "self", "method": "GET"}]}
        if order["approve_rel"] == "payer-action":
            view["payment_source"] = {"paypal": {}}
        if order["payer"]:
            view["payer"] = order["payer"]
            view.setdefault("payment_source", {})["paypal"] = {"email_address": order["payer"]["email_address"],
                                                              "account_id": order["payer"]["payer_id"]}
        if order["status"] in ("CREATED", "PAYER_ACTION_REQUIRED"):
            view["links"].append({"href": self.approve_url(order["id"]), "rel": order["approve_rel"],
                                  "method": "GET"})
        if order["status"] == "APPROVED":
            view["links"].append({"href": f"{self.url}/v2/checkout/orders/{order['id']}/authorize",
                                  "rel": "authorize", "method": "POST"})
        return view

    def _authorization_view(self, auth: dict) -> dict:
        base = f"{self.url}/v2/payments/authorizations/{auth['id']}"
        view = {"id": auth["id"], "status": auth["status"], "amount": _fmt(auth["currency"], auth["value"]),
                "expiration_time": auth["expiration_time"], "create_time": auth["create_time"],
                "update_time": auth["update_time"],
                "supplementary_data": {"related_ids": {"order_id": auth["order_id"]}},
                "links": [{"href": base, "rel": "self", "method": "GET"},
                          {"href": f"{base}/capture", "rel": "capture", "method": "POST"},
                          {"href": f"{base}/void", "rel": "void", "method": "POST"},
                          {"href": f"{self.url}/v2/checkout/orders/{auth['order_id']}", "rel": "up",
                           "method": "GET"}]}
        if auth["custom_id"]:
            view["custom_id"] = auth["custom_id"]
        return view

    def _capture_view(self, capture: dict) -> dict:
        base = f"{self.url}/v2/payments/captures/{capture['id']}"
        view = {"id": capture["id"], "status": capture["status"],
                "amount": _fmt(capture["currency"], capture["value"]), "final_capture": capture["final_capture"],
                "create_time": capture["create_time"], "update_time": capture["update_time"],
                "supplementary_data": {"related_ids": {"order_id": capture["order_id"],
                                                       "authorization_id": capture["authorization_id"]}},
                "links": [{"href": base, "rel": "self", "method": "GET"},
                          {"href": f"{base}/refund", "rel": "refund", "method": "POST"},
                          {"href": f"{self.url}/v2/payments/authorizations/{capture['authorization_id']}",
                           "rel": "up", "method": "GET"}]}
        if capture["custom_id"]:
            view["custom_id"] = capture["custom_id"]
        return view

    def _refund_view(self, refund: dict) -> dict:
        view = {"id": refund["id"], "status": refund["status"], "amount": _fmt(refund["currency"], refund["value"]),
                "create_time": refund["create_time"], "update_time": refund["create_time"],
                "links": [{"href": f"{self.url}/v2/payments/refunds/{refund['id']}", "rel": "self", "method": "GET"},
                          {"href": f"{self.url}/v2/payments/captures/{refund['capture_id']}", "rel": "up",
                           "method": "GET"}]}
        for key in ("custom_id", "note_to_payer"):
            if refund.get(key):
                view[key] = refund[key]
        return view


# Routes: (method, pattern, FakePayPal method name). Path parameters become positional arguments.
_ID = r"([A-Za-z0-9_-]+)"
_ROUTES = [
    ("POST", r"/v1/oauth2/token", "_token"),
    ("POST", r"/v2/checkout/orders", "_create_order"),
    ("GET", rf"/v2/checkout/orders/{_ID}", "_get_order"),
    ("POST", rf"/v2/checkout/orders/{_ID}/authorize", "_authorize_order"),
    ("GET", rf"/v2/payments/authorizations/{_ID}", "_get_authorization"),
    ("POST", rf"/v2/payments/authorizations/{_ID}/capture", "_capture_authorization"),
    ("POST", rf"/v2/payments/authorizations/{_ID}/void", "_void_authorization"),
    ("POST", rf"/v2/payments/captures/{_ID}/refund", "_refund_capture"),
    ("POST", r"/v1/payments/payouts", "_create_payout"),
    ("POST", r"/v1/notifications/verify-webhook-signature", "_verify_webhook"),
    ("GET", rf"/approve/{_ID}", "_approve_page"),
    ("POST", rf"/approve/{_ID}", "_approve_submit"),
    ("GET", rf"/approve/{_ID}/cancel", "_approve_cancel"),
]


def _route(method: str, path: str) -> tuple[str | None, tuple[str, ...]]:
    for route_method, pattern, name in _ROUTES:
        match = re.fullmatch(pattern, path)
        if route_method == method and match:
            return name, match.groups()
    return None, ()


def _take(injections: list[_Injection], path: str) -> _Injection | None:
    """Consume one use of the first injection matching `path`."""
    for injection in injections:
        if injection.remaining > 0 and injection.matches(path):
            injection.remaining -= 1
            return injection
    return None


def _parse_body(content_type: str, raw: bytes) -> object:
    if not raw:
        return None
    if "application/x-www-form-urlencoded" in content_type:
        return {k: v[0] for k, v in parse_qs(raw.decode()).items()}
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


def _payout_amount(amount: dict | None) -> dict | None:
    # Payouts v1 spells it {"value", "currency"}; reuse the Orders v2 validation.
    if not isinstance(amount, dict):
        return None
    return {"currency_code": amount.get("currency"), "value": amount.get("value")}


def _resource_type(event_type: str) -> str:
    if event_type.startswith("CHECKOUT.ORDER"):
        return "checkout-order"
    if event_type.startswith("PAYMENT.AUTHORIZATION"):
        return "authorization"
    if event_type == "PAYMENT.CAPTURE.REFUNDED":
        return "refund"
    return "capture"


class _Handler(BaseHTTPRequestHandler):
    fake: FakePayPal  # set by FakePayPal.start on a per-server subclass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def _serve(self, method: str) -> None:
        path = urlsplit(self.path).path.rstrip("/") or "/"
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        response, delay = self.fake.handle(method, path, self.headers, raw)
        if delay:
            time.sleep(delay)
        self._write(response)

    def _write(self, response: _Response) -> None:
        if response.html is not None:
            payload, content_type = response.html.encode(), "text/html; charset=utf-8"
        elif response.body is not None:
            payload, content_type = json.dumps(response.body).encode(), "application/json"
        else:
            payload, content_type = b"", None
        try:
            self.send_response(response.status)
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Paypal-Debug-Id", secrets.token_hex(6))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a hang_next timeout): PayPal does not care either

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - keep pytest output quiet
        log.debug("fake PayPal: " + format, *args)


@contextmanager
def running_fake(**kwargs) -> Iterator[FakePayPal]:
    """A started FakePayPal for the duration of the block (kwargs go to the constructor)."""
    fake = FakePayPal(**kwargs).start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def paypal_fake() -> Iterator[FakePayPal]:
    """A fresh fake PayPal on 127.0.0.1 and a free port; import this fixture into a test module to use it."""
    with running_fake() as fake:
        yield fake
