"""Stripe adapter: hosted Checkout with manual capture, Connect transfers to professionals, signed webhooks.

Flow: the payer authorises on Stripe's hosted Checkout page (no card data touches our servers); the PaymentIntent
waits in `requires_capture` until the order completes; we capture into the platform account and move the
professional's share to their Express account with a Transfer tied to the charge (`source_transaction`), so the
transfer only draws on that order's funds. Refunds void an uncaptured hold or refund part of a capture.

Every POST carries the caller's idempotency key, and the SDK never retries on its own (`max_network_retries=0`):
retries belong to the caller's job queue, which re-sends the same key, so Stripe answers a retry with the first
result instead of moving money twice.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

import stripe

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

MISCONFIGURED = "Payments are not available right now. Please try again later."
REFUSED = "The payment provider refused this request."

# Stripe error codes whose meaning we can tell the user; anything else gets the generic REFUSED.
_SAFE_MESSAGES = {
    "amount_too_small": "The amount is below the payment provider's minimum.",
    "amount_too_large": "The amount is above the payment provider's maximum.",
    "charge_already_refunded": "This payment has already been refunded.",
    "charge_already_captured": "This payment has already been captured.",
    "payment_intent_unexpected_state": "This payment cannot be changed in its current state.",
    "resource_missing": "The payment could not be found at the payment provider.",
    "balance_insufficient": "The platform's balance cannot cover this payout yet.",
}

# Stripe's own placeholder, substituted by Stripe when it redirects the payer back.
_STRIPE_SESSION_PLACEHOLDER = "{CHECKOUT_SESSION_ID}"

_EVENT_KINDS: dict[str, Literal["checkout_completed", "payment_failed", "refunded", "payout_account_updated"]] = {
    "checkout.session.completed": "checkout_completed",
    "payment_intent.payment_failed": "payment_failed",
    "charge.refunded": "refunded",
    "account.updated": "payout_account_updated",
}


@contextmanager
def _mapped_errors(operation: str) -> Iterator[None]:
    """Translate SDK exceptions into the port's domain errors; log the vendor detail, show the user a safe text."""
    try:
        yield
    except stripe.CardError as exc:
        # Card messages ("Your card was declined.") are written by Stripe to be shown to the payer.
        raise PaymentDeclined(exc.user_message or "Your card was declined.") from exc
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
        # Timeouts, refused connections, 5xx, 429: the request may or may not have run; a retry with the same
        # idempotency key is safe either way.
        log.warning("stripe %s unavailable: %s (request %s)", operation, exc, exc.request_id)
        raise PaymentUnavailable(UNAVAILABLE) from exc
    except (stripe.AuthenticationError, stripe.PermissionError) as exc:
        log.error("stripe %s refused our credentials: %s", operation, exc)
        raise PaymentUnavailable(MISCONFIGURED) from exc
    except stripe.IdempotencyError as exc:
        # The same key was sent with different parameters: a bug on our side, never the payer's doing.
        log.error("stripe %s idempotency conflict: %s", operation, exc)
        raise PaymentDeclined(REFUSED) from exc
    except stripe.InvalidRequestError as exc:
        log.warning("stripe %s invalid request: %s (code %s, request %s)", operation, exc, exc.code, exc.request_id)
        raise PaymentDeclined(_SAFE_MESSAGES.get(exc.code or "", REFUSED)) from exc
    except stripe.StripeError as exc:
        log.error("stripe %s failed: %s", operation, exc)
        raise PaymentUnavailable(UNAVAILABLE) from exc


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def _int_or_none(value: Any) -> int | None:
    text = str(value) if value is not None else ""
    return int(text) if text.isdigit() else None


def _object_id(value: Any) -> str:
    """An id whether Stripe sent it bare or expanded into an object."""
    if isinstance(value, Mapping):
        return str(value.get("id") or "")
    return str(value or "")


def _event_details(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The fields that depend on which Stripe object the event carries."""
    if kind == "checkout_completed":  # a Checkout Session
        return {"session_id": obj["id"], "reference": _object_id(obj.get("payment_intent")),
                "amount_minor": obj.get("amount_total") or 0}
    if kind == "payment_failed":  # a PaymentIntent
        return {"reference": obj["id"], "amount_minor": obj.get("amount") or 0}
    if kind == "refunded":  # a Charge; amount_refunded is the running total, not this refund alone
        return {"reference": _object_id(obj.get("payment_intent")), "amount_minor": obj.get("amount_refunded") or 0}
    return {"reference": obj["id"]}  # payout_account_updated: an Account


class StripeGateway:
    name = "stripe"

    def __init__(self, api_key: str, webhook_secret: str, *, api_base: str | None = None, timeout: float = 10.0):
        self._webhook_secret = webhook_secret
        base = api_base.rstrip("/") if api_base else None
        self._client = stripe.StripeClient(
            api_key,
            # "connect" and "files" too, so a local fake serves every call the SDK might route elsewhere.
            base_addresses={"api": base, "connect": base, "files": base} if base else None,
            max_network_retries=0,
            # A short timeout: a payer waits on this; the default 80 s would hold a web worker far too long.
            http_client=stripe.RequestsClient(timeout=timeout),
        )

    # -- checkout -------------------------------------------------------------------------------------------

    def start_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        order_meta = {"tenant_id": str(request.tenant_id), "order_id": str(request.order_id)}
        params = {
            "mode": "payment",
            "line_items": [{
                "quantity": 1,
                "price_data": {
                    "currency": request.currency.lower(),
                    "unit_amount": request.amount_minor,
                    "product_data": {"name": request.description or f"Order {request.order_id}"},
                },
            }],
            "payment_intent_data": {
                "capture_method": "manual",  # hold now, capture when the order completes
                "transfer_group": f"order-{request.tenant_id}-{request.order_id}",
                "metadata": order_meta,
            },
            "metadata": order_meta,
            "client_reference_id": f"{request.tenant_id}-{request.order_id}",
            "customer_email": request.customer_email or None,  # None is left out; Stripe rejects ""
            "success_url": request.success_url.replace(SESSION_PLACEHOLDER, _STRIPE_SESSION_PLACEHOLDER),
            "cancel_url": request.cancel_url,
        }
        with _mapped_errors("start_checkout"):
            session = self._client.v1.checkout.sessions.create(
                params, options={"idempotency_key": request.idempotency_key})
        return CheckoutSession(session_id=session.id, redirect_url=session.url or "")

    def confirm_checkout(self, session_id: str, *, idempotency_key: str) -> Authorization | None:
        # A read only (GET): nothing to make idempotent, so the key is not sent; asking twice answers the same.
        with _mapped_errors("confirm_checkout"):
            session = self._client.v1.checkout.sessions.retrieve(session_id, {"expand": ["payment_intent"]})
        intent = session.payment_intent
        # With manual capture a completed session stays payment_status "unpaid"; the PaymentIntent tells the truth.
        if session.status != "complete" or not isinstance(intent, stripe.PaymentIntent):
            return None
        if intent.status != "requires_capture":
            return None
        return Authorization(reference=intent.id, amount_minor=intent.amount, currency=intent.currency.upper())

    # -- money movements ------------------------------------------------------------------------------------

    def capture(self, *, reference: str, amount_minor: int, idempotency_key: str) -> None:
        with _mapped_errors("capture"):
            self._client.v1.payment_intents.capture(
                reference, {"amount_to_capture": amount_minor}, options={"idempotency_key": idempotency_key})

    def transfer(self, *, reference: str, payee_account: str, amount_minor: int, transfer_group: str,
                 idempotency_key: str) -> str:
        with _mapped_errors("transfer"):
            intent = self._client.v1.payment_intents.retrieve(reference)
            charge_id = _object_id(intent.latest_charge)
            if not charge_id:
                raise PaymentDeclined("This payment has no captured funds to pay out.")
            transfer = self._client.v1.transfers.create({
                "amount": amount_minor,
                "currency": intent.currency,
                "destination": payee_account,
                "transfer_group": transfer_group,
                # Ties the transfer to this charge: it waits for those funds instead of draining the balance.
                "source_transaction": charge_id,
                "metadata": intent.metadata.to_dict() if intent.metadata else {},  # tenant/order, for reconciling
            }, options={"idempotency_key": idempotency_key})
        return transfer.id

    def refund(self, *, reference: str, amount_minor: int, captured: bool, idempotency_key: str) -> str:
        options = {"idempotency_key": idempotency_key}
        with _mapped_errors("refund"):
            if not captured:
                # Voiding a hold releases the whole authorisation; nothing was taken, so there is no partial void.
                intent = self._client.v1.payment_intents.cancel(
                    reference, {"cancellation_reason": "requested_by_customer"}, options=options)
                return intent.id
            refund = self._client.v1.refunds.create(
                {"payment_intent": reference, "amount": amount_minor}, options=options)
        return refund.id

    # -- webhooks -------------------------------------------------------------------------------------------

    def parse_webhook(self, payload: bytes, headers: dict[str, str]) -> PaymentEvent:
        try:
            event = stripe.Webhook.construct_event(payload, _header(headers, "Stripe-Signature"),
                                                   self._webhook_secret)
        except (stripe.SignatureVerificationError, ValueError) as exc:  # ValueError: not UTF-8 / not JSON
            raise WebhookInvalid("Invalid webhook signature or payload.") from exc
        body = event.to_dict()
        try:
            return self._normalise(body["id"], body["type"], body["data"]["object"])
        except (KeyError, TypeError, AttributeError) as exc:
            raise WebhookInvalid("Invalid webhook payload.") from exc

    def _normalise(self, event_id: str, event_type: str, obj: dict[str, Any]) -> PaymentEvent:
        kind = _EVENT_KINDS.get(event_type)
        if kind is None:
            return PaymentEvent(provider=self.name, event_id=event_id, kind="ignored")
        metadata = obj.get("metadata") or {}  # tenant/order ride along on the session, PaymentIntent and charge
        return PaymentEvent(
            provider=self.name, event_id=event_id, kind=kind,
            tenant_id=_int_or_none(metadata.get("tenant_id")), order_id=_int_or_none(metadata.get("order_id")),
            currency=str(obj.get("currency") or "").upper(), **_event_details(kind, obj))

    # -- Connect onboarding ---------------------------------------------------------------------------------

    def payout_account(self, *, pro_id: int, email: str, existing: str, return_url: str,
                       refresh_url: str) -> PayoutAccount:
        with _mapped_errors("payout_account"):
            account_id = existing or self._create_account(pro_id, email, return_url)
            # A fresh key per link: links are single-use and expire within minutes, so a replayed one is useless.
            link = self._client.v1.account_links.create({
                "account": account_id,
                "type": "account_onboarding",
                "return_url": return_url,
                "refresh_url": refresh_url,
            }, options={"idempotency_key": f"account-link-{account_id}-{uuid.uuid4().hex}"})
        return PayoutAccount(account_id=account_id, onboarding_url=link.url)

    def _create_account(self, pro_id: int, email: str, return_url: str) -> str:
        # No caller key here, so derive one: a double click must not open two accounts. The return URL names the
        # deployment, so two deployments sharing one Stripe account never collide on a pro id.
        fingerprint = hashlib.sha256(f"{email}|{return_url}".encode()).hexdigest()[:16]
        account = self._client.v1.accounts.create({
            "type": "express",
            "email": email or None,
            "capabilities": {"transfers": {"requested": True}},
            "metadata": {"pro_id": str(pro_id)},
        }, options={"idempotency_key": f"payout-account-{pro_id}-{fingerprint}"})
        return account.id
