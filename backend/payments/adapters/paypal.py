"""PayPal gateway on PayPal's current server SDK (`paypal-server-sdk`; `paypalrestsdk` is deprecated by PayPal).

Flow: Orders v2 with intent AUTHORIZE -> the payer approves on PayPal's hosted page -> we authorize the order
(funds held) -> capture the authorization at completion -> pay the professional with a Payouts batch.
`Authorization.reference` is always the PayPal *authorization* id; everything later is looked up from it.

Every money-moving POST carries the caller's idempotency key as `PayPal-Request-Id`, so a retry after a timeout
or a 5xx replays PayPal's first answer instead of charging, capturing or paying out twice.
The SDK has no Payouts or webhook-verification controller; those two calls go over plain HTTPS with the bearer
token the SDK's own OAuth manager obtained.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from apimatic_core.exceptions.auth_validation_exception import AuthValidationException
from paypalserversdk.api_helper import APIHelper
from paypalserversdk.configuration import Environment, Server
from paypalserversdk.exceptions.api_exception import ApiException
from paypalserversdk.http.auth.o_auth_2 import ClientCredentialsAuthCredentials
from paypalserversdk.models.amount_with_breakdown import AmountWithBreakdown
from paypalserversdk.models.capture_request import CaptureRequest
from paypalserversdk.models.checkout_payment_intent import CheckoutPaymentIntent
from paypalserversdk.models.money import Money
from paypalserversdk.models.order_request import OrderRequest
from paypalserversdk.models.payment_source import PaymentSource
from paypalserversdk.models.paypal_experience_user_action import PaypalExperienceUserAction
from paypalserversdk.models.paypal_wallet import PaypalWallet
from paypalserversdk.models.paypal_wallet_context_shipping_preference import (
    PaypalWalletContextShippingPreference,
)
from paypalserversdk.models.paypal_wallet_experience_context import PaypalWalletExperienceContext
from paypalserversdk.models.purchase_unit_request import PurchaseUnitRequest
from paypalserversdk.models.refund_request import RefundRequest
from paypalserversdk.paypal_serversdk_client import PaypalServersdkClient

from backend.money import minor_unit_exponent
from backend.payments.ports import (
    SESSION_PLACEHOLDER,
    UNAVAILABLE,
    Authorization,
    CheckoutRequest,
    CheckoutSession,
    PaymentDeclined,
    PaymentEvent,
    PaymentUnavailable,
    PayoutAccount,
    WebhookInvalid,
)

log = logging.getLogger(__name__)

# ISO gives these two decimals, but PayPal accepts only whole amounts in them (JPY has none under ISO either).
_PAYPAL_WHOLE_UNITS = {"HUF", "TWD"}

# PayPal error `issue` -> what the user may read. Anything else gets a generic message (and a log line).
_ISSUE_MESSAGES = {
    "INSTRUMENT_DECLINED": "PayPal declined the payment method you chose. Please pay with another one.",
    "PAYER_ACTION_REQUIRED": "Please finish the payment in PayPal first.",
    "ORDER_NOT_APPROVED": "Please finish the payment in PayPal first.",
    "AUTHORIZATION_VOIDED": "This PayPal payment was cancelled.",
    "PREVIOUSLY_VOIDED": "This PayPal payment was already cancelled.",
    "AUTHORIZATION_EXPIRED": "This PayPal payment hold has expired.",
    "AUTHORIZATION_ALREADY_CAPTURED": "This PayPal payment was already collected.",
    "PREVIOUSLY_CAPTURED": "This PayPal payment was already collected, so it can only be refunded.",
    "MAX_CAPTURE_AMOUNT_EXCEEDED": "The amount is more than the PayPal payment holds.",
    "REFUND_AMOUNT_EXCEEDED": "The refund is more than what is left on this PayPal payment.",
    "CURRENCY_NOT_SUPPORTED": "PayPal does not accept payments in this currency.",
    "DECIMAL_PRECISION": "PayPal does not accept this amount in this currency.",
    "RECEIVER_INVALID": "The professional's PayPal email address is not valid.",
    "RECEIVER_UNREGISTERED": "The professional's PayPal email address has no PayPal account.",
}
_GENERIC_REFUSAL = "PayPal could not process this payment."

_EVENT_KINDS = {
    "CHECKOUT.ORDER.APPROVED": "checkout_completed",
    "PAYMENT.AUTHORIZATION.VOIDED": "refunded",
    "PAYMENT.CAPTURE.REFUNDED": "refunded",
    "PAYMENT.CAPTURE.DENIED": "payment_failed",
}

# PayPal sends these with every webhook; verification needs all of them.
_TRANSMISSION_HEADERS = {
    "transmission_id": "paypal-transmission-id",
    "transmission_time": "paypal-transmission-time",
    "transmission_sig": "paypal-transmission-sig",
    "cert_url": "paypal-cert-url",
    "auth_algo": "paypal-auth-algo",
}


class _HttpError(Exception):
    """A non-2xx answer to one of our direct (non-SDK) calls, shaped like the SDK's ApiException."""

    def __init__(self, status: int, text: str):
        super().__init__(f"HTTP {status}")
        self.status, self.text = status, text


class PayPalGateway:
    name = "paypal"

    def __init__(self, client_id: str, client_secret: str, webhook_id: str, *, environment: str = "sandbox",
                 api_base: str | None = None, timeout: float = 30.0):
        self._webhook_id = webhook_id
        self._timeout = timeout
        self._token = None  # the SDK's current OAuthToken, kept for the direct calls
        env = Environment.PRODUCTION if environment.lower() in ("live", "production") else Environment.SANDBOX
        credentials = ClientCredentialsAuthCredentials(
            o_auth_client_id=client_id, o_auth_client_secret=client_secret,
            o_auth_token_provider=self._fetch_token, o_auth_clock_skew=60)
        # No SDK retries: the caller retries with the same idempotency key, which is what makes retries safe.
        self._client = PaypalServersdkClient(client_credentials_auth_credentials=credentials, environment=env,
                                             timeout=timeout, max_retries=0)
        if api_base:
            # The SDK resolves every URL (the token call included) through `config.environments`; an
            # instance-level copy points this client, and only this one, at another server.
            self._client.config.environments = {env: {Server.DEFAULT: api_base.rstrip("/")}}
        self._base_url = self._client.config.get_base_uri()
        self._http = requests.Session()

    # ------------------------------------------------------------------ checkout

    def start_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        if request.amount_minor <= 0:
            raise PaymentDeclined("There is nothing to pay.")
        body = OrderRequest(
            intent=CheckoutPaymentIntent.AUTHORIZE,
            purchase_units=[PurchaseUnitRequest(
                reference_id=f"order-{request.order_id}",
                amount=AmountWithBreakdown(currency_code=request.currency.upper(),
                                           value=_to_value(request.amount_minor, request.currency)),
                custom_id=f"{request.tenant_id}:{request.order_id}",  # comes back in webhooks and on the payments
                description=request.description[:127],
            )],
            payment_source=PaymentSource(paypal=PaypalWallet(
                email_address=request.customer_email or APIHelper.SKIP,
                experience_context=PaypalWalletExperienceContext(
                    return_url=_return_url(request.success_url),
                    cancel_url=request.cancel_url.replace(SESSION_PLACEHOLDER, ""),
                    shipping_preference=PaypalWalletContextShippingPreference.NO_SHIPPING,  # services, not goods
                    user_action=PaypalExperienceUserAction.PAY_NOW,  # the amount is final; we authorize on return
                ),
            )),
        )
        with _provider_errors("start checkout"):
            order = self._client.orders.create_order({
                "body": body, "paypal_request_id": request.idempotency_key, "prefer": "return=representation",
            }).body
        approve = next((link.href for link in _get(order, "links", [])
                        if link.rel in ("payer-action", "approve")), None)
        if approve is None:
            log.error("PayPal order %s came back without an approval link", _get(order, "id"))
            raise PaymentUnavailable(UNAVAILABLE)
        return CheckoutSession(session_id=order.id, redirect_url=approve)

    def confirm_checkout(self, session_id: str, *, idempotency_key: str) -> Authorization | None:
        with _provider_errors("confirm checkout"):
            order = self._client.orders.get_order({"id": session_id}).body
            if _get(order, "status") == "APPROVED":
                order = self._authorize(session_id, idempotency_key)
        status = _get(order, "status")
        if status in ("CREATED", "SAVED", "PAYER_ACTION_REQUIRED", "APPROVED"):
            return None  # the payer has not approved yet (or is still in PayPal)
        if status == "VOIDED":
            raise PaymentDeclined("This PayPal checkout was cancelled.")
        # COMPLETED: authorized now or by an earlier call; either way the same authorization is returned.
        return _authorization_of(order)

    def _authorize(self, order_id: str, idempotency_key: str):
        try:
            return self._client.orders.authorize_order({
                "id": order_id, "paypal_request_id": idempotency_key, "prefer": "return=representation",
            }).body
        except ApiException as exc:
            # A concurrent confirm (the return page and the webhook) with another key authorized it first,
            # or the approval lapsed: read the order back and let its status decide.
            if _issue(_error_body(exc.response.text)) not in ("ORDER_ALREADY_AUTHORIZED", "ORDER_NOT_APPROVED"):
                raise
            return self._client.orders.get_order({"id": order_id}).body

    # ------------------------------------------------------------------ after checkout

    def capture(self, *, reference: str, amount_minor: int, idempotency_key: str) -> None:
        with _provider_errors("capture"):
            authorization = self._get_authorization(reference)
            currency = authorization.amount.currency_code
            self._client.payments.capture_authorized_payment({
                "authorization_id": reference,
                "paypal_request_id": idempotency_key,
                "prefer": "return=minimal",
                # final_capture: one capture per order, and PayPal releases whatever of the hold is left.
                "body": CaptureRequest(amount=Money(currency_code=currency,
                                                    value=_to_value(amount_minor, currency)),
                                       final_capture=True),
            })

    def transfer(self, *, reference: str, payee_account: str, amount_minor: int, transfer_group: str,
                 idempotency_key: str) -> str:
        """PayPal has no transfer between accounts in this flow: the platform pays the professional out."""
        if "@" not in payee_account:
            raise PaymentDeclined("The professional has no PayPal email address for payouts.")
        with _provider_errors("payout"):
            currency = self._get_authorization(reference).amount.currency_code
            batch = self._post("/v1/payments/payouts", idempotency_key, {
                # sender_batch_id is PayPal's own duplicate guard for payouts (unique for 30 days).
                "sender_batch_header": {"sender_batch_id": idempotency_key,
                                        "email_subject": "You have received a payout",
                                        "email_message": "Your earnings for a completed order have been sent."},
                "items": [{"recipient_type": "EMAIL", "receiver": payee_account,
                           "amount": {"value": _to_value(amount_minor, currency), "currency": currency},
                           "sender_item_id": transfer_group[:63],  # PayPal's length limit
                           "note": f"Payout for {transfer_group}"}],
            })
        return batch["batch_header"]["payout_batch_id"]

    def refund(self, *, reference: str, amount_minor: int, captured: bool, idempotency_key: str) -> str:
        with _provider_errors("refund"):
            if not captured:
                # A hold is cancelled whole (void); PayPal has no partial release of an authorization.
                self._client.payments.void_payment({
                    "authorization_id": reference, "paypal_request_id": idempotency_key,
                    "prefer": "return=representation",
                })
                return reference
            authorization = self._get_authorization(reference)
            currency = authorization.amount.currency_code
            capture_id = self._capture_id(authorization)
            refund = self._client.payments.refund_captured_payment({
                "capture_id": capture_id,
                "paypal_request_id": idempotency_key,
                "prefer": "return=representation",
                "body": RefundRequest(amount=Money(currency_code=currency, value=_to_value(amount_minor, currency)),
                                      # so the PAYMENT.CAPTURE.REFUNDED webhook names tenant and order
                                      custom_id=_get(authorization, "custom_id") or APIHelper.SKIP),
            }).body
        return refund.id

    def _get_authorization(self, authorization_id: str):
        return self._client.payments.get_authorized_payment({"authorization_id": authorization_id}).body

    def _capture_id(self, authorization) -> str:
        """The capture of an authorization. PayPal's authorization resource does not list its captures, but the
        order does, and each capture's `up` link names the authorization it came from."""
        order_id = _get(_get(_get(authorization, "supplementary_data"), "related_ids"), "order_id")
        if not order_id:
            raise PaymentDeclined(_GENERIC_REFUSAL)
        order = self._client.orders.get_order({"id": order_id}).body
        captures = _get(_get(_first_unit(order), "payments"), "captures", [])
        suffix = f"/authorizations/{authorization.id}"
        for capture in captures:
            if any(link.rel == "up" and link.href.endswith(suffix) for link in _get(capture, "links", [])):
                return capture.id
        if len(captures) == 1:  # one authorization per order, so its only capture is ours
            return captures[0].id
        raise PaymentDeclined("This PayPal payment has not been collected yet, so there is nothing to refund.")

    # ------------------------------------------------------------------ webhooks

    def parse_webhook(self, payload: bytes, headers: dict[str, str]) -> PaymentEvent:
        """Verified by PayPal's verify-webhook-signature API (PayPal signs with certificates it rotates; asking
        PayPal is the documented check). If PayPal cannot be asked, PaymentUnavailable: answer 5xx so PayPal
        delivers the event again later."""
        lowered = {k.lower(): v for k, v in headers.items()}
        transmission = {field: lowered.get(header, "") for field, header in _TRANSMISSION_HEADERS.items()}
        if not all(transmission.values()):
            raise WebhookInvalid("Missing PayPal signature headers.")
        try:
            event = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            raise WebhookInvalid("The webhook body is not JSON.") from None
        if not isinstance(event, dict) or not event.get("id") or not event.get("event_type"):
            raise WebhookInvalid("The webhook body is not a PayPal event.")
        with _provider_errors("verify webhook"):
            # No PayPal-Request-Id here on purpose: the check changes nothing, and a replayed SUCCESS for a
            # reused transmission id with a different body would let a tampered event through.
            answer = self._post("/v1/notifications/verify-webhook-signature", None,
                                {**transmission, "webhook_id": self._webhook_id, "webhook_event": event})
        if answer.get("verification_status") != "SUCCESS":
            raise WebhookInvalid("The PayPal webhook signature is not valid.")
        return _payment_event(event)

    # ------------------------------------------------------------------ payout accounts

    def payout_account(self, *, pro_id: int, email: str, existing: str, return_url: str,
                       refresh_url: str) -> PayoutAccount:
        """PayPal needs no onboarding: payouts go to the professional's PayPal email address."""
        account = existing or email
        if "@" not in account:
            raise PaymentDeclined("Enter the email address of your PayPal account to receive payouts.")
        return PayoutAccount(account_id=account, onboarding_url="")

    # ------------------------------------------------------------------ plumbing

    def _fetch_token(self, _last_token, auth_manager):
        """Token provider for the SDK's OAuth manager: the manager caches the token and calls this when it is
        missing or about to expire. Kept here so token failures surface instead of being swallowed."""
        try:
            self._token = auth_manager.fetch_token()
        except ApiException as exc:
            log.error("PayPal refused the client credentials (HTTP %s): check PAYPAL_CLIENT_ID/SECRET",
                      exc.response_code)
            raise PaymentUnavailable(UNAVAILABLE) from exc
        return self._token

    def _bearer(self) -> str:
        if not self._client.oauth_2.is_valid():  # fetches or refreshes through _fetch_token
            raise PaymentUnavailable(UNAVAILABLE)
        return self._token.access_token

    def _post(self, path: str, request_id: str | None, body: dict) -> dict:
        """A POST the SDK has no controller for, authenticated like the SDK's own calls."""
        headers = {"Authorization": f"Bearer {self._bearer()}", "Content-Type": "application/json",
                   "Accept": "application/json"}
        if request_id:
            headers["PayPal-Request-Id"] = request_id
        response = self._http.post(f"{self._base_url}{path}", json=body, headers=headers, timeout=self._timeout)
        if not response.ok:
            raise _HttpError(response.status_code, response.text)
        return response.json()


# ---------------------------------------------------------------------- error mapping


@contextmanager
def _provider_errors(action: str) -> Iterator[None]:
    """Turn whatever PayPal or the network says into PaymentDeclined / PaymentUnavailable."""
    try:
        yield
    except ApiException as exc:
        raise _domain_error(action, exc.response_code, exc.response.text) from exc
    except _HttpError as exc:
        raise _domain_error(action, exc.status, exc.text) from exc
    except (requests.RequestException, AuthValidationException) as exc:
        # Connection refused, timeout, or an answer we cannot read: the outcome is unknown, so the caller
        # must retry with the same idempotency key.
        log.warning("PayPal %s failed: %r", action, exc)
        raise PaymentUnavailable(UNAVAILABLE) from exc


def _domain_error(action: str, status: int, text: str) -> PaymentDeclined | PaymentUnavailable:
    if status >= 500 or status in (408, 429):
        log.warning("PayPal %s answered HTTP %s", action, status)
        return PaymentUnavailable(UNAVAILABLE)
    body = _error_body(text)
    issue = _issue(body)
    if issue in _ISSUE_MESSAGES:
        return PaymentDeclined(_ISSUE_MESSAGES[issue])
    # Not the payer's doing (bad request, permissions...): keep PayPal's words in the log, not on the screen.
    log.error("PayPal %s refused: HTTP %s %s %s (debug_id %s)", action, status, body.get("name"), issue,
              body.get("debug_id"))
    return PaymentDeclined(_GENERIC_REFUSAL)


def _error_body(text: str | None) -> dict:
    try:
        body = json.loads(text or "")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _issue(body: dict) -> str:
    details = body.get("details") or [{}]
    return str(details[0].get("issue") or body.get("name") or "")


# ---------------------------------------------------------------------- money and shapes


def _to_value(amount_minor: int, currency: str) -> str:
    """Minor units -> PayPal's decimal string: 1234 USD -> "12.34", 1234 JPY -> "1234", 123400 HUF -> "1234"."""
    code = currency.upper()
    exponent = minor_unit_exponent(code)
    if code in _PAYPAL_WHOLE_UNITS:
        if amount_minor % 10**exponent:
            raise PaymentDeclined(f"PayPal accepts only whole amounts in {code}.")
        return str(amount_minor // 10**exponent)
    return f"{Decimal(amount_minor).scaleb(-exponent):.{exponent}f}"


def _to_minor(amount) -> tuple[int, str]:
    """A PayPal amount (SDK model or webhook dict) -> (minor units, currency); (0, "") when absent."""
    currency = _get(amount, "currency_code") or ""
    value = _get(amount, "value")
    if not currency or value is None:
        return 0, ""
    try:
        return int(Decimal(str(value)).scaleb(minor_unit_exponent(currency))), currency
    except InvalidOperation:
        return 0, currency


def _get(obj, name: str, default=None):
    """Attribute or key access that tolerates the SDK's habit of leaving absent fields unset."""
    if obj is None:
        return default
    value = obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name, default)
    return default if value is None else value


def _first_unit(order):
    units = _get(order, "purchase_units", [])
    return units[0] if units else None


def _authorization_of(order) -> Authorization:
    authorizations = _get(_get(_first_unit(order), "payments"), "authorizations", [])
    if not authorizations:
        raise PaymentDeclined(_GENERIC_REFUSAL)
    authorization = authorizations[0]
    if _get(authorization, "status") == "DENIED":
        raise PaymentDeclined(_ISSUE_MESSAGES["INSTRUMENT_DECLINED"])
    amount_minor, currency = _to_minor(authorization.amount)
    return Authorization(reference=authorization.id, amount_minor=amount_minor, currency=currency)


def _return_url(success_url: str) -> str:
    """PayPal cannot put its order id into our URL: the order does not exist yet when the URL is sent. It appends
    `token=<order id>` (and `PayerID`) itself on the way back, so the parameter that would carry "{SESSION_ID}"
    is dropped and the return page reads `token` instead."""
    parts = urlsplit(success_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if SESSION_PLACEHOLDER not in v]
    return urlunsplit(parts._replace(query=urlencode(query))).replace(SESSION_PLACEHOLDER, "")


def _tenant_and_order(custom_id: str | None) -> tuple[int | None, int | None]:
    tenant, _, order = (custom_id or "").partition(":")
    if tenant.isdigit() and order.isdigit():
        return int(tenant), int(order)
    return None, None


def _payment_event(event: dict) -> PaymentEvent:
    """A verified PayPal event in our vocabulary."""
    event_type = event["event_type"]
    resource = event.get("resource") if isinstance(event.get("resource"), dict) else {}
    if event_type.startswith("CHECKOUT.ORDER."):
        session_id, reference, custom_id, amount = _order_event_fields(resource)
    else:
        session_id, reference, custom_id, amount = _payment_event_fields(event_type, resource)
    tenant_id, order_id = _tenant_and_order(custom_id)
    amount_minor, currency = _to_minor(amount)
    return PaymentEvent(provider="paypal", event_id=str(event["id"]), kind=_EVENT_KINDS.get(event_type, "ignored"),
                        session_id=session_id, reference=reference, tenant_id=tenant_id, order_id=order_id,
                        amount_minor=amount_minor, currency=currency)


def _order_event_fields(order: dict) -> tuple[str, str, str | None, dict | None]:
    """(session id, reference, custom_id, amount) of an order resource: the session is the order itself."""
    unit = _first_unit(order) or {}
    return str(order.get("id", "")), "", _get(unit, "custom_id"), _get(unit, "amount")


def _payment_event_fields(event_type: str, resource: dict) -> tuple[str, str, str | None, dict | None]:
    """(session id, reference, custom_id, amount) of an authorization, capture or refund resource. `reference`
    is the authorization id whenever the event names one, as in Authorization.reference; a refund resource
    does not, so it is the refund's own id there."""
    related = _get(_get(resource, "supplementary_data"), "related_ids", {})
    if event_type.startswith("PAYMENT.AUTHORIZATION."):
        reference = resource.get("id", "")
    else:
        reference = _get(related, "authorization_id") or resource.get("id", "")
    return str(_get(related, "order_id", "")), str(reference), resource.get("custom_id"), resource.get("amount")
