"""A local stand-in for the Stripe API, its hosted Checkout page, Connect onboarding, and its webhooks.

The official SDK talks to it unchanged (`StripeClient(key, base_addresses={"api": fake.url})`), so tests exercise the
real request encoding, error classes and signature check. It keeps state in memory and behaves like Stripe where our
adapter depends on it:

- form bodies in Stripe's bracket notation (`line_items[0][price_data][currency]=usd`), JSON answers shaped like
  Stripe's objects, errors as `{"error": {"type", "message", "code", "param"}}` (402 card, 400 invalid, 401 key);
- idempotency: a POST that repeats an Idempotency-Key gets the first answer back (header `Idempotent-Replayed`) and
  changes nothing; the same key on another endpoint or with other parameters is a 400 `idempotency_error`;
- manual capture: a completed Checkout Session stays `payment_status=unpaid` and its PaymentIntent waits in
  `requires_capture`; capture, cancel (void), refunds and Connect transfers follow Stripe's state rules;
- webhooks signed with Stripe's scheme (`t=<ts>,v1=<hex HMAC-SHA256(secret, "<ts>.<payload>")>`).

Failure injection: `fail_next` answers before the endpoint runs (a 5xx at Stripe's edge: nothing happened, nothing is
remembered for the key); `hang_next` runs the endpoint, remembers its answer, then holds the response back, which is
the dangerous kind of timeout: the money moved but the caller does not know.

Use: `with FakeStripe() as fake: ...` (or `fake.start()` / `fake.stop()`); `fake.url` is the API base.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import html
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from backend.money import format_money
from tests.fakes.http_fake import ServedFake

API_VERSION = "2026-10-28.endive"
SUCCESS_CARD = "4242424242424242"
# Stripe's test cards that fail, with the message Stripe shows the payer.
DECLINED_CARDS = {
    "4000000000000002": ("card_declined", "generic_decline", "Your card was declined."),
    "4000000000009995": ("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    "4000000000000069": ("expired_card", "expired_card", "Your card has expired."),
}
MINIMUM_AMOUNT = 50  # Stripe refuses charges below 0.50 USD (and the like); we apply it to every currency
CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation", "requires_action", "processing")


# ---------------------------------------------------------------------------------------------------------------
# Form decoding: Stripe's bracket notation -> nested dicts and lists
# ---------------------------------------------------------------------------------------------------------------

_BRACKETED = re.compile(r"\[([^\]]*)\]")


def decode_form(text: str) -> dict[str, Any]:
    """`a[b][0][c]=1&e[]=x&e[]=y` -> {"a": {"b": [{"c": "1"}]}, "e": ["x", "y"]}; values stay strings, as sent."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        head, bracket, rest = key.partition("[")
        parts = [head, *_BRACKETED.findall(bracket + rest)] if bracket else [head]
        node = root
        for part in parts[:-1]:
            node = node.setdefault(_slot(node, part), {})
        node[_slot(node, parts[-1])] = value
    return _listify(root)


def _slot(node: dict[str, Any], part: str) -> str:
    # "[]" appends: give it the next free index so it sorts after the items before it.
    return str(len(node)) if part == "" else part


def _listify(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    items = {key: _listify(child) for key, child in value.items()}
    if items and all(key.isdigit() for key in items):
        return [items[key] for key in sorted(items, key=int)]
    return items


# ---------------------------------------------------------------------------------------------------------------
# Records and errors
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    idempotency_key: str | None
    params: dict[str, Any]


@dataclass(frozen=True)
class WebhookDelivery:
    event_id: str
    event_type: str
    status: int | None  # the receiver's HTTP status; None if it could not be reached
    error: str = ""


@dataclass
class _Injection:
    remaining: int
    match: str | None
    status: int = 500
    seconds: float = 0.0

    def applies_to(self, route: str) -> bool:
        return self.remaining > 0 and (self.match is None or self.match in route)


@dataclass(frozen=True)
class _StoredAnswer:
    fingerprint: str
    status: int
    body: str


class StripeApiError(Exception):
    """Raised by an endpoint to answer with a Stripe-shaped error."""

    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None, decline_code: str | None = None):
        super().__init__(message)
        self.status = status
        self.body = {"error": {k: v for k, v in {
            "type": type_, "message": message, "code": code, "param": param, "decline_code": decline_code,
        }.items() if v is not None}}


def _missing(kind: str, object_id: str, param: str) -> StripeApiError:
    return StripeApiError(404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


def _unexpected_state(message: str) -> StripeApiError:
    return StripeApiError(400, message, code="payment_intent_unexpected_state")


def _int_param(params: dict[str, Any], name: str, *, default: int | None = None) -> int:
    raw = params.get(name)
    if raw is None and default is not None:
        return default
    if raw is None or not str(raw).isdigit():
        raise StripeApiError(400, f"Invalid integer: {raw}", code="parameter_invalid_integer", param=name)
    return int(raw)


def _required(params: dict[str, Any], name: str) -> Any:
    value = params.get(name)
    if value in (None, ""):
        raise StripeApiError(400, f"Missing required param: {name}.", code="parameter_missing", param=name)
    return value


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


# ---------------------------------------------------------------------------------------------------------------
# The fake
# ---------------------------------------------------------------------------------------------------------------

class FakeStripe(ServedFake):
    """In-memory Stripe. Public state (read it in assertions): `sessions`, `payment_intents`, `charges`, `refunds`,
    `transfers`, `accounts`, `events`, `requests`, `webhooks_sent`, `charges_created`."""

    thread_name = "fake-stripe"
    poll_interval = 0.02

    def __init__(self, *, webhook_secret: str = "whsec_fake_stripe", webhook_url: str | None = None,
                 api_key: str | None = None, host: str = "127.0.0.1"):
        self.webhook_secret = webhook_secret
        self.webhook_url = webhook_url  # where hosted pages deliver events; None: events are only recorded
        self.api_key = api_key  # None accepts any "Bearer sk_..." / "Bearer rk_..." key
        super().__init__(host)
        self.sessions: dict[str, dict[str, Any]] = {}
        self.payment_intents: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.transfers: dict[str, dict[str, Any]] = {}
        self.accounts: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.requests: list[RecordedRequest] = []
        self.webhooks_sent: list[WebhookDelivery] = []
        self.charges_created = 0
        self._session_setup: dict[str, dict[str, Any]] = {}  # what the session will put on its PaymentIntent
        self._onboarding_links: dict[str, dict[str, Any]] = {}
        self._answers: dict[str, _StoredAnswer] = {}
        self._failures: list[_Injection] = []
        self._hangs: list[_Injection] = []
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., dict[str, Any]]]] = [
            ("POST", re.compile(r"/v1/checkout/sessions"), self._create_session),
            ("GET", re.compile(r"/v1/checkout/sessions/(?P<sid>[^/]+)"), self._get_session),
            ("GET", re.compile(r"/v1/payment_intents/(?P<pid>[^/]+)"), self._get_intent),
            ("POST", re.compile(r"/v1/payment_intents/(?P<pid>[^/]+)/capture"), self._capture),
            ("POST", re.compile(r"/v1/payment_intents/(?P<pid>[^/]+)/cancel"), self._cancel),
            ("POST", re.compile(r"/v1/refunds"), self._create_refund),
            ("POST", re.compile(r"/v1/transfers"), self._create_transfer),
            ("POST", re.compile(r"/v1/accounts"), self._create_account),
            ("GET", re.compile(r"/v1/accounts/(?P<aid>[^/]+)"), self._get_account),
            ("POST", re.compile(r"/v1/account_links"), self._create_account_link),
        ]

    # -- lifecycle ------------------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    def stop(self) -> None:
        self._stopping.set()  # wakes hanging responses so shutdown does not wait for them
        super().stop()

    # -- failure injection ----------------------------------------------------------------------------------

    def fail_next(self, n: int = 1, status: int = 500, *, match: str | None = None) -> None:
        """The next `n` API requests (those whose "METHOD /path" contains `match`, if given) get `status` without
        running: like an outage in front of Stripe. Nothing is remembered for their idempotency keys.
        5xx answer an `api_error`, 429 a rate limit, 402 a declined card."""
        with self._lock:
            self._failures.append(_Injection(remaining=n, match=match, status=status))

    def hang_next(self, n: int = 1, seconds: float = 5.0, *, match: str | None = None) -> None:
        """The next `n` API requests run and are remembered, but the answer is held back `seconds`: the caller
        times out not knowing that the money moved. A retry with the same key gets the remembered answer."""
        with self._lock:
            self._hangs.append(_Injection(remaining=n, match=match, seconds=seconds))

    def _take(self, injections: list[_Injection], route: str) -> _Injection | None:
        for injection in injections:
            if injection.applies_to(route):
                injection.remaining -= 1
                return injection
        return None

    # -- webhooks -------------------------------------------------------------------------------------------

    def sign(self, payload: str | bytes, *, timestamp: int | None = None, secret: str | None = None) -> str:
        """The Stripe-Signature header for `payload`, built with Stripe's v1 scheme."""
        text = payload.decode() if isinstance(payload, bytes) else payload
        stamp = int(time.time()) if timestamp is None else timestamp
        digest = hmac.new((secret or self.webhook_secret).encode(), f"{stamp}.{text}".encode(), hashlib.sha256)
        return f"t={stamp},v1={digest.hexdigest()}"

    def event(self, event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
        """A Stripe event wrapping a snapshot of `obj`; recorded in `events`."""
        evt = {
            "id": _new_id("evt"), "object": "event", "api_version": API_VERSION, "created": int(time.time()),
            "data": {"object": copy.deepcopy(obj)}, "livemode": False, "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None}, "type": event_type,
        }
        with self._lock:
            self.events.append(evt)
        return evt

    def emit(self, event_type: str, obj: dict[str, Any]) -> WebhookDelivery | None:
        """Build an event and deliver it signed to `webhook_url` (if set). Call without holding the lock: the
        receiver usually calls back into this fake."""
        evt = self.event(event_type, obj)
        return self.deliver(evt) if self.webhook_url else None

    def deliver(self, evt: dict[str, Any]) -> WebhookDelivery:
        payload = json.dumps(evt)
        request = urllib.request.Request(self.webhook_url or "", data=payload.encode(), method="POST", headers={
            "Content-Type": "application/json; charset=utf-8", "Stripe-Signature": self.sign(payload),
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        })
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                delivery = WebhookDelivery(evt["id"], evt["type"], response.status)
        except urllib.error.HTTPError as exc:
            delivery = WebhookDelivery(evt["id"], evt["type"], exc.code, exc.reason)
        except OSError as exc:
            delivery = WebhookDelivery(evt["id"], evt["type"], None, str(exc))
        with self._lock:
            self.webhooks_sent.append(delivery)
        return delivery

    # -- helpers for tests that drive the hosted pages without a browser --------------------------------------

    def pay(self, session_id: str, card: str = SUCCESS_CARD) -> tuple[int, str]:
        """Submit the hosted checkout form as a browser would; returns (status, Location header or page HTML)."""
        return post_form(f"{self.url}/pay/{session_id}", {"card": card})

    def complete_onboarding(self, account_id: str) -> None:
        """What finishing Express onboarding does: the account can receive transfers; sends account.updated."""
        with self._lock:
            account = self.accounts[account_id]
            account.update(details_submitted=True, charges_enabled=True, payouts_enabled=True)
            account["capabilities"] = dict.fromkeys(account["capabilities"], "active")
            snapshot = copy.deepcopy(account)
        self.emit("account.updated", snapshot)

    # -- HTTP dispatch --------------------------------------------------------------------------------------

    def _record(self, method: str, path: str, key: str | None, params: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(RecordedRequest(method, path, key, params))

    def _api(self, method: str, path: str, params: dict[str, Any], headers: Any) -> tuple[int, str, float, bool]:
        """Answer one /v1 request: (status, JSON body, seconds to hold it back, replayed?)."""
        route = f"{method} {path}"
        key = headers.get("Idempotency-Key")
        with self._lock:
            failure = self._take(self._failures, route)
            if failure is not None:
                return failure.status, json.dumps(_outage_body(failure.status)), 0.0, False
            hang = self._take(self._hangs, route)
            delay = hang.seconds if hang else 0.0
            if not self._authorised(headers.get("Authorization", "")):
                return 401, json.dumps(StripeApiError(401, "Invalid API Key provided.").body), delay, False
            fingerprint = json.dumps([route, params], sort_keys=True)
            if method == "POST" and key and key in self._answers:
                stored = self._answers[key]
                if stored.fingerprint != fingerprint:
                    conflict = StripeApiError(400, "Keys for idempotent requests can only be used with the same "
                                                  "parameters they were first used with.", type_="idempotency_error")
                    return 400, json.dumps(conflict.body), delay, False
                return stored.status, stored.body, delay, True
            status, body = self._run(method, path, params)
            # Stripe keeps the answer of every request that ran; a request rejected by validation (400) is not kept.
            if method == "POST" and key and status != 400:
                self._answers[key] = _StoredAnswer(fingerprint, status, body)
            return status, body, delay, False

    def _authorised(self, authorization: str) -> bool:
        scheme, _, key = authorization.partition(" ")
        if scheme != "Bearer" or not key:
            return False
        return key == self.api_key if self.api_key else key.startswith(("sk_", "rk_"))

    def _run(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, str]:
        for route_method, pattern, endpoint in self._routes:
            found = pattern.fullmatch(path)
            if found and route_method == method:
                try:
                    return 200, json.dumps(endpoint(params, **found.groupdict()))
                except StripeApiError as failure:
                    return failure.status, json.dumps(failure.body)
        return 404, json.dumps(StripeApiError(404, f"Unrecognized request URL ({method}: {path}).").body)

    # -- API endpoints (called with the lock held) ----------------------------------------------------------

    def _create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("mode") != "payment":
            raise StripeApiError(400, "This fake supports mode=payment only.", code="parameter_invalid_string",
                                param="mode")
        amount, currency, description = self._line_items_total(params.get("line_items"))
        intent_data = params.get("payment_intent_data") or {}
        capture_method = intent_data.get("capture_method", "automatic")
        if capture_method not in ("automatic", "automatic_async", "manual"):
            raise StripeApiError(400, f"Invalid capture_method: {capture_method}", param="capture_method")
        session_id = _new_id("cs_test")
        now = int(time.time())
        session = {
            "id": session_id, "object": "checkout.session", "amount_subtotal": amount, "amount_total": amount,
            "currency": currency, "customer_email": params.get("customer_email"),
            "client_reference_id": params.get("client_reference_id"), "created": now, "expires_at": now + 86400,
            "livemode": False, "metadata": params.get("metadata") or {}, "mode": "payment", "payment_intent": None,
            "payment_method_types": ["card"], "payment_status": "unpaid", "status": "open",
            "success_url": _required(params, "success_url"), "cancel_url": params.get("cancel_url"),
            "url": f"{self.url}/pay/{session_id}",
        }
        self.sessions[session_id] = session
        self._session_setup[session_id] = {"capture_method": capture_method, "description": description,
                                           "transfer_group": intent_data.get("transfer_group"),
                                           "metadata": intent_data.get("metadata") or {}}
        return session

    def _line_items_total(self, line_items: Any) -> tuple[int, str, str]:
        if not isinstance(line_items, list) or not line_items:
            raise StripeApiError(400, "Missing required param: line_items.", code="parameter_missing",
                                param="line_items")
        total, currencies, names = 0, set(), []
        for index, item in enumerate(line_items):
            price = item.get("price_data") or {}
            if not price:
                raise StripeApiError(400, "This fake supports price_data only.", param=f"line_items[{index}][price]")
            currencies.add(str(_required(price, "currency")).lower())
            names.append(str(_required(price.get("product_data") or {}, "name")))
            total += _int_param(price, "unit_amount") * _int_param(item, "quantity", default=1)
        if len(currencies) != 1:
            raise StripeApiError(400, "All line items must use the same currency.", param="line_items")
        if total < MINIMUM_AMOUNT:
            raise StripeApiError(400, "The Checkout Session's total amount due must add up to at least 0.50.",
                                code="amount_too_small", param="line_items")
        return total, currencies.pop(), ", ".join(names)

    def _get_session(self, params: dict[str, Any], sid: str) -> dict[str, Any]:
        session = self.sessions.get(sid) or _raise(_missing("checkout.session", sid, "session"))
        answer = copy.deepcopy(session)
        if "payment_intent" in (params.get("expand") or []) and session["payment_intent"]:
            answer["payment_intent"] = copy.deepcopy(self.payment_intents[session["payment_intent"]])
        return answer

    def _intent(self, pid: str) -> dict[str, Any]:
        return self.payment_intents.get(pid) or _raise(_missing("payment_intent", pid, "intent"))

    def _get_intent(self, params: dict[str, Any], pid: str) -> dict[str, Any]:
        answer = copy.deepcopy(self._intent(pid))
        if "latest_charge" in (params.get("expand") or []) and answer["latest_charge"]:
            answer["latest_charge"] = copy.deepcopy(self.charges[answer["latest_charge"]])
        return answer

    def _capture(self, params: dict[str, Any], pid: str) -> dict[str, Any]:
        intent = self._intent(pid)
        if intent["status"] != "requires_capture":
            raise _unexpected_state(f"This PaymentIntent could not be captured because it has a status of "
                                    f"{intent['status']}.")
        amount = _int_param(params, "amount_to_capture", default=intent["amount_capturable"])
        if amount > intent["amount_capturable"]:
            raise StripeApiError(400, f"The amount to capture ({amount}) cannot be greater than the amount "
                                     f"capturable ({intent['amount_capturable']}).", code="amount_too_large",
                                param="amount_to_capture")
        intent.update(status="succeeded", amount_received=amount, amount_capturable=0)
        self.charges[intent["latest_charge"]].update(captured=True, amount_captured=amount)
        return copy.deepcopy(intent)

    def _cancel(self, params: dict[str, Any], pid: str) -> dict[str, Any]:
        intent = self._intent(pid)
        if intent["status"] not in CANCELABLE:
            raise _unexpected_state(f"You cannot cancel this PaymentIntent because it has a status of "
                                    f"{intent['status']}. Only a PaymentIntent with one of the following statuses "
                                    f"may be canceled: {', '.join(CANCELABLE)}.")
        intent.update(status="canceled", amount_capturable=0, canceled_at=int(time.time()),
                      cancellation_reason=params.get("cancellation_reason"))
        if intent["latest_charge"]:  # voiding a hold shows on the charge as a full refund of the uncaptured amount
            charge = self.charges[intent["latest_charge"]]
            charge.update(refunded=True, amount_refunded=charge["amount"])
        return copy.deepcopy(intent)

    def _create_refund(self, params: dict[str, Any]) -> dict[str, Any]:
        intent = self._intent(str(_required(params, "payment_intent")))
        if intent["status"] != "succeeded":
            raise _unexpected_state(f"This PaymentIntent cannot be refunded because it has a status of "
                                    f"{intent['status']}.")
        charge = self.charges[intent["latest_charge"]]
        remaining = charge["amount_captured"] - charge["amount_refunded"]
        if remaining <= 0:
            raise StripeApiError(400, f"Charge {charge['id']} has already been refunded.",
                                code="charge_already_refunded")
        amount = _int_param(params, "amount", default=remaining)
        if amount == 0 or amount > remaining:
            raise StripeApiError(400, f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                                     f"({remaining}).", code="amount_too_large", param="amount")
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"]
        refund = {"id": _new_id("re"), "object": "refund", "amount": amount, "charge": charge["id"],
                  "currency": charge["currency"], "payment_intent": intent["id"], "status": "succeeded",
                  "created": int(time.time()), "metadata": params.get("metadata") or {}}
        self.refunds[refund["id"]] = refund
        return copy.deepcopy(refund)

    def _create_transfer(self, params: dict[str, Any]) -> dict[str, Any]:
        amount = _int_param(params, "amount")
        currency = str(_required(params, "currency")).lower()
        destination = self._transfer_destination(str(_required(params, "destination")))
        source = params.get("source_transaction")
        if source:
            self._check_source_charge(source, amount, currency)
        transfer = {"id": _new_id("tr"), "object": "transfer", "amount": amount, "amount_reversed": 0,
                    "currency": currency, "destination": destination["id"], "source_transaction": source,
                    "transfer_group": params.get("transfer_group"), "metadata": params.get("metadata") or {},
                    "created": int(time.time()), "livemode": False, "reversed": False}
        self.transfers[transfer["id"]] = transfer
        return copy.deepcopy(transfer)

    def _transfer_destination(self, account_id: str) -> dict[str, Any]:
        account = self.accounts.get(account_id) or _raise(_missing("destination", account_id, "destination"))
        if account["capabilities"].get("transfers") != "active":
            raise StripeApiError(400, "Your destination account needs to have at least one of the following "
                                     "capabilities enabled: transfers, crypto_transfers, legacy_payments",
                                code="insufficient_capabilities_for_transfer", param="destination")
        return account

    def _check_source_charge(self, charge_id: str, amount: int, currency: str) -> None:
        charge = self.charges.get(charge_id) or _raise(_missing("charge", charge_id, "source_transaction"))
        if not charge["captured"]:
            raise StripeApiError(400, "Cannot create a transfer from an uncaptured charge.",
                                param="source_transaction")
        if charge["currency"] != currency:
            raise StripeApiError(400, f"The currency of source_transaction's balance transaction "
                                     f"({charge['currency']}) must be the same as the transfer currency "
                                     f"({currency}).", param="currency")
        already = sum(t["amount"] for t in self.transfers.values() if t["source_transaction"] == charge_id)
        available = charge["amount_captured"] - charge["amount_refunded"] - already
        if amount > available:
            raise StripeApiError(400, f"Insufficient funds in source transaction: {amount} requested, {available} "
                                     f"available.", code="balance_insufficient", param="amount")

    def _create_account(self, params: dict[str, Any]) -> dict[str, Any]:
        account_type = _required(params, "type")
        requested = params.get("capabilities") or {}
        account = {"id": _new_id("acct"), "object": "account", "type": account_type, "email": params.get("email"),
                   "metadata": params.get("metadata") or {}, "country": params.get("country", "US"),
                   "default_currency": "usd", "charges_enabled": False, "payouts_enabled": False,
                   "details_submitted": False, "created": int(time.time()),
                   "capabilities": {name: "inactive" for name, ask in requested.items()
                                    if ask.get("requested") == "true"}}
        self.accounts[account["id"]] = account
        return copy.deepcopy(account)

    def _get_account(self, params: dict[str, Any], aid: str) -> dict[str, Any]:
        return copy.deepcopy(self.accounts.get(aid) or _raise(_missing("account", aid, "account")))

    def _create_account_link(self, params: dict[str, Any]) -> dict[str, Any]:
        account_id = str(_required(params, "account"))
        if account_id not in self.accounts:
            raise _missing("account", account_id, "account")
        if params.get("type") not in ("account_onboarding", "account_update"):
            raise StripeApiError(400, "Invalid type: must be one of account_onboarding or account_update",
                                param="type")
        token = secrets.token_urlsafe(12)
        now = int(time.time())
        self._onboarding_links[token] = {"account": account_id, "used": False, "expires_at": now + 300,
                                         "return_url": _required(params, "return_url"),
                                         "refresh_url": _required(params, "refresh_url")}
        return {"object": "account_link", "created": now, "expires_at": now + 300,
                "url": f"{self.url}/connect/onboarding/{token}"}

    # -- hosted checkout page ---------------------------------------------------------------------------------

    def _checkout_page(self, method: str, session_id: str, form: dict[str, Any]) -> tuple[int, str, str | None]:
        """(status, HTML, redirect location) for GET/POST /pay/<session_id>."""
        completed_event = None
        with self._lock:
            session = self.sessions.get(session_id)
            if session is None:
                return 404, _page("Checkout", "<p>This checkout link is not valid.</p>"), None
            if session["status"] == "complete":  # a second click on Pay must not charge again
                return 303, "", _success_location(session)
            if method == "GET":
                return 200, _checkout_html(session, ""), None
            card = _digits(str(form.get("card", "")))
            if card in DECLINED_CARDS:
                return 402, _checkout_html(session, DECLINED_CARDS[card][2]), None
            if card != SUCCESS_CARD:
                return 402, _checkout_html(session, "Your card number is incorrect."), None
            self._authorise(session)
            completed_event = copy.deepcopy(session)
        # Outside the lock: the receiver of the webhook calls back into this fake.
        self.emit("checkout.session.completed", completed_event)
        return 303, "", _success_location(completed_event)

    def _authorise(self, session: dict[str, Any]) -> None:
        setup = self._session_setup[session["id"]]
        manual = setup["capture_method"] == "manual"
        now, amount = int(time.time()), session["amount_total"]
        intent_id, charge_id = _new_id("pi"), _new_id("ch")
        self.payment_intents[intent_id] = {
            "id": intent_id, "object": "payment_intent", "amount": amount, "currency": session["currency"],
            "amount_capturable": amount if manual else 0, "amount_received": 0 if manual else amount,
            "capture_method": setup["capture_method"], "status": "requires_capture" if manual else "succeeded",
            "latest_charge": charge_id, "metadata": setup["metadata"], "transfer_group": setup["transfer_group"],
            "description": setup["description"], "created": now, "livemode": False, "canceled_at": None,
            "cancellation_reason": None,
        }
        self.charges[charge_id] = {
            "id": charge_id, "object": "charge", "amount": amount, "amount_captured": 0 if manual else amount,
            "amount_refunded": 0, "captured": not manual, "currency": session["currency"], "paid": True,
            "refunded": False, "status": "succeeded", "payment_intent": intent_id,
            "transfer_group": setup["transfer_group"], "metadata": setup["metadata"], "created": now,
            "livemode": False,
        }
        self.charges_created += 1
        # With manual capture Stripe completes the session but leaves it "unpaid" until the capture.
        session.update(status="complete", payment_intent=intent_id, payment_status="unpaid" if manual else "paid")

    # -- hosted Connect onboarding -----------------------------------------------------------------------------

    def _onboarding_page(self, method: str, token: str) -> tuple[int, str, str | None]:
        with self._lock:
            link = self._onboarding_links.get(token)
            if link is None:
                return 404, _page("Onboarding", "<p>This onboarding link is not valid.</p>"), None
            if link["used"] or link["expires_at"] < time.time():  # Stripe sends stale links to refresh_url
                return 303, "", link["refresh_url"]
            if method == "GET":
                return 200, _onboarding_html(self.accounts[link["account"]]), None
            link["used"] = True
        self.complete_onboarding(link["account"])
        return 303, "", link["return_url"]


# ---------------------------------------------------------------------------------------------------------------
# HTTP plumbing and pages
# ---------------------------------------------------------------------------------------------------------------

def _raise(failure: StripeApiError) -> Any:
    raise failure


def _outage_body(status: int) -> dict[str, Any]:
    if status == 402:
        return StripeApiError(402, "Your card was declined.", type_="card_error", code="card_declined",
                             decline_code="generic_decline").body
    if status == 429:
        return StripeApiError(429, "Too many requests hit the API too quickly.", code="rate_limit").body
    return StripeApiError(status, "An unknown error occurred", type_="api_error").body


def _success_location(session: dict[str, Any]) -> str:
    return str(session["success_url"]).replace("{CHECKOUT_SESSION_ID}", session["id"])


def post_form(url: str, form: dict[str, str]) -> tuple[int, str]:
    """POST a form as a browser would, without following redirects: (status, Location header or page HTML)."""
    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    request = urllib.request.Request(url, data=urlencode(form).encode(), method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        if exc.code in (301, 302, 303, 307):
            return exc.code, exc.headers.get("Location", "")
        return exc.code, exc.read().decode()


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;max-width:28rem;margin:3rem auto}"
            ".badge{background:#fde68a;padding:.1rem .4rem;border-radius:.3rem;font-size:.8rem}"
            ".error{color:#b91c1c}input{width:100%;padding:.4rem;margin:.3rem 0 .8rem}</style></head>"
            f"<body>{body}</body></html>")


def _checkout_html(session: dict[str, Any], error: str) -> str:
    amount = format_money(session["amount_total"], session["currency"])
    error_html = f"<p class='error' role='alert'>{html.escape(error)}</p>" if error else ""
    return _page("Pay with Stripe (fake)", (
        f"<h1>Pay {html.escape(amount)}</h1><p><span class='badge'>Test mode</span></p>"
        f"<p>{html.escape(session.get('customer_email') or '')}</p>{error_html}"
        f"<form method='post' action='/pay/{html.escape(session['id'])}'>"
        "<label for='card'>Card number</label>"
        "<input id='card' name='card' inputmode='numeric' autocomplete='cc-number' value='4242 4242 4242 4242'>"
        "<button type='submit'>Pay</button></form>"
        f"<p><a href='{html.escape(session.get('cancel_url') or '')}'>Cancel</a></p>"))


def _onboarding_html(account: dict[str, Any]) -> str:
    return _page("Stripe Express onboarding (fake)", (
        "<h1>Set up payouts</h1><p><span class='badge'>Test mode</span></p>"
        f"<p>{html.escape(account.get('email') or '')}</p>"
        "<form method='post'><button type='submit'>Complete onboarding</button></form>"))


def _handler_for(fake: FakeStripe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._dispatch()

        def do_POST(self) -> None:
            self._dispatch()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # keep test output clean; `fake.requests` is the log

        def _dispatch(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            params = decode_form(body if self.command == "POST" else url.query)
            fake._record(self.command, url.path, self.headers.get("Idempotency-Key"), params)
            if url.path.startswith("/v1/"):
                self._answer_api(url.path, params)
            elif url.path.startswith("/pay/"):
                self._answer_page(*fake._checkout_page(self.command, url.path.removeprefix("/pay/"), params))
            elif url.path.startswith("/connect/onboarding/"):
                self._answer_page(*fake._onboarding_page(self.command, url.path.rsplit("/", 1)[-1]))
            else:
                self._answer_page(404, _page("Not found", "<p>Not found.</p>"), None)

        def _answer_api(self, path: str, params: dict[str, Any]) -> None:
            status, body, delay, replayed = fake._api(self.command, path, params, self.headers)
            if delay and fake._stopping.wait(delay):
                return
            headers = {"Content-Type": "application/json", "Request-Id": _new_id("req"),
                       "Stripe-Version": API_VERSION}
            if replayed:
                headers["Idempotent-Replayed"] = "true"
            self._send(status, body.encode(), headers)

        def _answer_page(self, status: int, page: str, location: str | None) -> None:
            headers = {"Content-Type": "text/html; charset=utf-8"}
            if location:
                headers["Location"] = location
            self._send(status, page.encode(), headers)

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            try:
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout we injected); the state change already happened

    return Handler

