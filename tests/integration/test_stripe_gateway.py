"""The Stripe adapter through the official SDK against the local fake Stripe (tests/fakes/stripe_server.py).

The SDK does the real request encoding, error classification and webhook signature check; the fake plays Stripe's
side, including idempotency keys and injected outages, so these tests show what a retry after a 5xx or a timeout
does to money: nothing twice.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from backend.payments.adapters.stripe import MISCONFIGURED, UNAVAILABLE, StripeGateway
from backend.payments.ports import (
    Authorization,
    CheckoutRequest,
    PaymentDeclined,
    PaymentUnavailable,
    WebhookInvalid,
)
from tests.fakes.stripe_server import FakeStripe, decode_form, post_form

WEBHOOK_SECRET = "whsec_test_secret"
TENANT_ID, ORDER_ID = 7, 42
TRANSFER_GROUP = f"order-{TENANT_ID}-{ORDER_ID}"


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe(webhook_secret=WEBHOOK_SECRET) as server:
        yield server


@pytest.fixture
def gateway(fake: FakeStripe) -> StripeGateway:
    # A 1 s timeout keeps the injected-hang tests fast; production uses the 10 s default.
    return StripeGateway("sk_test_fake", WEBHOOK_SECRET, api_base=fake.url, timeout=1.0)


class _Inbox(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def webhook_inbox(fake: FakeStripe) -> Iterator[list[tuple[dict[str, str], bytes]]]:
    """Stands in for the app's /api/webhooks/stripe: records what the fake's hosted page delivers."""
    received: list[tuple[dict[str, str], bytes]] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Inbox", (_Inbox,), {"received": received}))
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    fake.webhook_url = f"http://127.0.0.1:{server.server_address[1]}/api/webhooks/stripe"
    yield received
    server.shutdown()
    server.server_close()


def checkout_request(**overrides: object) -> CheckoutRequest:
    fields = {"tenant_id": TENANT_ID, "order_id": ORDER_ID, "amount_minor": 12_500, "currency": "USD",
              "description": "Deep clean, 3 rooms", "customer_email": "client@example.com",
              "success_url": "http://shop.test/orders/42/paid?session={SESSION_ID}",
              "cancel_url": "http://shop.test/orders/42", "idempotency_key": "order-7-42-checkout"}
    return CheckoutRequest(**{**fields, **overrides})  # type: ignore[arg-type]


def authorise(gateway: StripeGateway, fake: FakeStripe) -> Authorization:
    session = gateway.start_checkout(checkout_request())
    status, _ = fake.pay(session.session_id)
    assert status == 303
    held = gateway.confirm_checkout(session.session_id, idempotency_key="order-7-42-confirm")
    assert held is not None
    return held


def onboarded_account(gateway: StripeGateway, fake: FakeStripe) -> str:
    account = gateway.payout_account(pro_id=5, email="pro@example.com", existing="",
                                     return_url="http://shop.test/pro/payouts",
                                     refresh_url="http://shop.test/pro/payouts/refresh")
    fake.complete_onboarding(account.account_id)
    return account.account_id


def api_posts(fake: FakeStripe, path_prefix: str = "/v1/") -> list:
    return [r for r in fake.requests if r.method == "POST" and r.path.startswith(path_prefix)]


# -- checkout -------------------------------------------------------------------------------------------------

def test_checkout_session_holds_the_order_amount_for_manual_capture(gateway, fake):
    session = gateway.start_checkout(checkout_request())

    assert session.redirect_url == f"{fake.url}/pay/{session.session_id}"
    [sent] = api_posts(fake, "/v1/checkout/sessions")
    assert sent.idempotency_key == "order-7-42-checkout"
    line = sent.params["line_items"][0]
    assert line["price_data"] == {"currency": "usd", "unit_amount": "12500",
                                  "product_data": {"name": "Deep clean, 3 rooms"}}
    assert sent.params["payment_intent_data"] == {
        "capture_method": "manual", "transfer_group": TRANSFER_GROUP,
        "metadata": {"tenant_id": "7", "order_id": "42"}}
    assert sent.params["metadata"] == {"tenant_id": "7", "order_id": "42"}
    assert sent.params["customer_email"] == "client@example.com"
    # Stripe fills in its own placeholder on the way back.
    assert sent.params["success_url"] == "http://shop.test/orders/42/paid?session={CHECKOUT_SESSION_ID}"
    stored = fake.sessions[session.session_id]
    assert (stored["amount_total"], stored["currency"], stored["status"]) == (12_500, "usd", "open")


def test_hosted_page_shows_the_amount_and_the_test_card(gateway, fake):
    session = gateway.start_checkout(checkout_request())

    with urllib.request.urlopen(session.redirect_url, timeout=5) as response:
        page = response.read().decode()

    for expected in ("$125.00", "Test mode", "4242 4242 4242 4242", ">Pay<", "http://shop.test/orders/42"):
        assert expected in page


def test_paying_on_the_hosted_page_authorises_and_confirm_returns_the_hold(gateway, fake):
    session = gateway.start_checkout(checkout_request())
    assert gateway.confirm_checkout(session.session_id, idempotency_key="k") is None  # not paid yet

    status, location = fake.pay(session.session_id)

    assert (status, location) == (303, f"http://shop.test/orders/42/paid?session={session.session_id}")
    held = gateway.confirm_checkout(session.session_id, idempotency_key="order-7-42-confirm")
    intent = fake.payment_intents[held.reference]
    assert held == Authorization(reference=intent["id"], amount_minor=12_500, currency="USD")
    assert intent["status"] == "requires_capture"
    assert intent["transfer_group"] == TRANSFER_GROUP
    # Manual capture: Stripe completes the session but leaves it unpaid until we capture.
    assert fake.sessions[session.session_id]["payment_status"] == "unpaid"
    # Asking again, or the payer pressing Pay twice, changes nothing.
    assert gateway.confirm_checkout(session.session_id, idempotency_key="order-7-42-confirm") == held
    assert fake.pay(session.session_id)[0] == 303
    assert fake.charges_created == 1


def test_declined_card_shows_the_error_and_changes_nothing(gateway, fake, webhook_inbox):
    session = gateway.start_checkout(checkout_request())

    status, page = fake.pay(session.session_id, card="4000 0000 0000 0002")

    assert status == 402
    assert "Your card was declined." in page
    assert fake.sessions[session.session_id]["status"] == "open"
    assert fake.charges_created == 0
    assert not fake.payment_intents
    assert not webhook_inbox
    assert gateway.confirm_checkout(session.session_id, idempotency_key="k") is None


def test_card_error_from_the_api_maps_to_payment_declined(gateway, fake):
    held = authorise(gateway, fake)
    fake.fail_next(1, status=402, match="/capture")

    with pytest.raises(PaymentDeclined) as declined:
        gateway.capture(reference=held.reference, amount_minor=held.amount_minor, idempotency_key="cap")

    assert declined.value.message == "Your card was declined."


def test_checkout_below_stripe_minimum_is_declined_with_a_safe_message(gateway):
    with pytest.raises(PaymentDeclined) as declined:
        gateway.start_checkout(checkout_request(amount_minor=20))

    assert declined.value.message == "The amount is below the payment provider's minimum."


# -- capture, transfer, refund ---------------------------------------------------------------------------------

def test_capture_then_transfer_then_partial_refund(gateway, fake):
    held = authorise(gateway, fake)
    account_id = onboarded_account(gateway, fake)

    gateway.capture(reference=held.reference, amount_minor=12_500, idempotency_key="order-7-42-capture")
    transfer_id = gateway.transfer(reference=held.reference, payee_account=account_id, amount_minor=10_000,
                                   transfer_group=TRANSFER_GROUP, idempotency_key="order-7-42-release")
    refund_id = gateway.refund(reference=held.reference, amount_minor=2_500, captured=True,
                               idempotency_key="order-7-42-refund")

    intent = fake.payment_intents[held.reference]
    charge = fake.charges[intent["latest_charge"]]
    assert intent["status"] == "succeeded"
    assert charge["amount_captured"] == 12_500
    transfer = fake.transfers[transfer_id]
    assert (transfer["amount"], transfer["currency"], transfer["destination"]) == (10_000, "usd", account_id)
    assert transfer["source_transaction"] == charge["id"]
    assert transfer["transfer_group"] == TRANSFER_GROUP
    assert fake.refunds[refund_id]["amount"] == 2_500
    assert charge["amount_refunded"] == 2_500
    assert fake.charges_created == 1
    keys = {r.path: r.idempotency_key for r in api_posts(fake)}
    assert keys[f"/v1/payment_intents/{held.reference}/capture"] == "order-7-42-capture"
    assert keys["/v1/transfers"] == "order-7-42-release"
    assert keys["/v1/refunds"] == "order-7-42-refund"


def test_every_api_post_carries_an_idempotency_key(gateway, fake):
    held = authorise(gateway, fake)
    account_id = onboarded_account(gateway, fake)
    gateway.capture(reference=held.reference, amount_minor=12_500, idempotency_key="c")
    gateway.transfer(reference=held.reference, payee_account=account_id, amount_minor=100,
                    transfer_group=TRANSFER_GROUP, idempotency_key="r")
    gateway.refund(reference=held.reference, amount_minor=100, captured=True, idempotency_key="f")

    posts = api_posts(fake)
    assert len(posts) == 6  # session, account, account link, capture, transfer, refund
    assert all(r.idempotency_key for r in posts)


def test_refund_before_capture_voids_the_hold(gateway, fake):
    held = authorise(gateway, fake)

    voided = gateway.refund(reference=held.reference, amount_minor=held.amount_minor, captured=False,
                            idempotency_key="order-7-42-void")

    assert voided == held.reference
    assert fake.payment_intents[held.reference]["status"] == "canceled"
    assert not fake.refunds
    [cancel] = api_posts(fake, f"/v1/payment_intents/{held.reference}/cancel")
    assert cancel.idempotency_key == "order-7-42-void"


def test_capturing_twice_with_a_new_key_is_declined_with_a_safe_message(gateway, fake):
    held = authorise(gateway, fake)
    gateway.capture(reference=held.reference, amount_minor=12_500, idempotency_key="first")

    with pytest.raises(PaymentDeclined) as declined:
        gateway.capture(reference=held.reference, amount_minor=12_500, idempotency_key="second")

    assert declined.value.message == "This payment cannot be changed in its current state."


def test_refund_larger_than_what_is_left_is_declined(gateway, fake):
    held = authorise(gateway, fake)
    gateway.capture(reference=held.reference, amount_minor=12_500, idempotency_key="c")

    with pytest.raises(PaymentDeclined):
        gateway.refund(reference=held.reference, amount_minor=20_000, captured=True, idempotency_key="f")
    assert not fake.refunds


def test_transfer_to_an_account_that_has_not_finished_onboarding_is_declined(gateway, fake):
    held = authorise(gateway, fake)
    gateway.capture(reference=held.reference, amount_minor=12_500, idempotency_key="c")
    account = gateway.payout_account(pro_id=5, email="pro@example.com", existing="",
                                     return_url="http://shop.test/r", refresh_url="http://shop.test/f")

    with pytest.raises(PaymentDeclined):
        gateway.transfer(reference=held.reference, payee_account=account.account_id, amount_minor=1_000,
                        transfer_group=TRANSFER_GROUP, idempotency_key="r")
    assert not fake.transfers


def test_same_key_with_other_parameters_is_refused(gateway, fake):
    held = authorise(gateway, fake)
    gateway.capture(reference=held.reference, amount_minor=12_000, idempotency_key="cap")

    with pytest.raises(PaymentDeclined):
        gateway.capture(reference=held.reference, amount_minor=12_500, idempotency_key="cap")
    assert fake.payment_intents[held.reference]["amount_received"] == 12_000


# -- outages and retries --------------------------------------------------------------------------------------

def test_retry_after_a_5xx_captures_once(gateway, fake):
    held = authorise(gateway, fake)
    fake.fail_next(1, status=500, match="/capture")

    with pytest.raises(PaymentUnavailable) as unavailable:
        gateway.capture(reference=held.reference, amount_minor=12_500, idempotency_key="order-7-42-capture")
    assert unavailable.value.message == UNAVAILABLE
    assert fake.payment_intents[held.reference]["status"] == "requires_capture"

    gateway.capture(reference=held.reference, amount_minor=12_500, idempotency_key="order-7-42-capture")

    assert fake.payment_intents[held.reference]["amount_received"] == 12_500
    assert fake.charges_created == 1


def test_retry_after_a_timeout_returns_the_first_transfer(gateway, fake):
    held = authorise(gateway, fake)
    account_id = onboarded_account(gateway, fake)
    gateway.capture(reference=held.reference, amount_minor=12_500, idempotency_key="c")
    fake.hang_next(1, seconds=3, match="POST /v1/transfers")
    transfer = {"reference": held.reference, "payee_account": account_id, "amount_minor": 10_000,
                "transfer_group": TRANSFER_GROUP, "idempotency_key": "order-7-42-release"}

    with pytest.raises(PaymentUnavailable):
        gateway.transfer(**transfer)
    [moved] = fake.transfers  # the dangerous case: the transfer happened, the caller could not know

    assert gateway.transfer(**transfer) == moved
    assert len(fake.transfers) == 1
    assert fake.charges_created == 1
    assert [r.idempotency_key for r in api_posts(fake, "/v1/transfers")] == ["order-7-42-release"] * 2


def test_retry_after_a_timeout_reuses_the_checkout_session(gateway, fake):
    fake.hang_next(1, seconds=3, match="POST /v1/checkout/sessions")

    with pytest.raises(PaymentUnavailable):
        gateway.start_checkout(checkout_request())
    session = gateway.start_checkout(checkout_request())

    assert list(fake.sessions) == [session.session_id]


def test_retry_after_a_timeout_refunds_once(gateway, fake):
    held = authorise(gateway, fake)
    gateway.capture(reference=held.reference, amount_minor=12_500, idempotency_key="c")
    fake.hang_next(1, seconds=3, match="POST /v1/refunds")
    refund = {"reference": held.reference, "amount_minor": 5_000, "captured": True,
              "idempotency_key": "order-7-42-refund"}

    with pytest.raises(PaymentUnavailable):
        gateway.refund(**refund)
    first = gateway.refund(**refund)

    assert list(fake.refunds) == [first]
    assert fake.charges[fake.payment_intents[held.reference]["latest_charge"]]["amount_refunded"] == 5_000


def test_rate_limit_is_unavailable(gateway, fake):
    fake.fail_next(1, status=429)

    with pytest.raises(PaymentUnavailable):
        gateway.start_checkout(checkout_request())
    assert not fake.sessions


def test_unreachable_provider_is_unavailable(fake):
    port = fake.port
    fake.stop()
    gateway = StripeGateway("sk_test_fake", WEBHOOK_SECRET, api_base=f"http://127.0.0.1:{port}", timeout=1.0)

    with pytest.raises(PaymentUnavailable) as unavailable:
        gateway.start_checkout(checkout_request())
    assert unavailable.value.message == UNAVAILABLE


def test_rejected_api_key_is_reported_as_unavailable_not_as_the_payers_fault(fake):
    gateway = StripeGateway("not-a-key", WEBHOOK_SECRET, api_base=fake.url, timeout=1.0)

    with pytest.raises(PaymentUnavailable) as unavailable:
        gateway.start_checkout(checkout_request())
    assert unavailable.value.message == MISCONFIGURED


# -- webhooks -------------------------------------------------------------------------------------------------

def test_hosted_page_delivers_a_signed_checkout_completed_webhook(gateway, fake, webhook_inbox):
    session = gateway.start_checkout(checkout_request())

    fake.pay(session.session_id)

    [(headers, body)] = webhook_inbox
    event = gateway.parse_webhook(body, headers)  # header names arrive lower-cased here
    intent_id = fake.sessions[session.session_id]["payment_intent"]
    assert (event.provider, event.kind, event.event_id) == ("stripe", "checkout_completed", fake.events[0]["id"])
    assert (event.session_id, event.reference) == (session.session_id, intent_id)
    assert (event.tenant_id, event.order_id, event.amount_minor, event.currency) == (7, 42, 12_500, "USD")
    assert fake.webhooks_sent[0].status == 200


def signed(fake: FakeStripe, event_type: str, obj: dict, **sign_options: object) -> tuple[bytes, dict[str, str]]:
    payload = json.dumps(fake.event(event_type, obj))
    return payload.encode(), {"Stripe-Signature": fake.sign(payload, **sign_options)}


ORDER_META = {"tenant_id": "7", "order_id": "42"}


@pytest.mark.parametrize(("event_type", "obj", "expected"), [
    ("payment_intent.payment_failed",
     {"id": "pi_1", "object": "payment_intent", "amount": 900, "currency": "eur", "metadata": ORDER_META},
     {"kind": "payment_failed", "reference": "pi_1", "amount_minor": 900, "currency": "EUR", "order_id": 42}),
    ("charge.refunded",
     {"id": "ch_1", "object": "charge", "payment_intent": "pi_1", "amount_refunded": 300, "currency": "usd",
      "metadata": ORDER_META},
     {"kind": "refunded", "reference": "pi_1", "amount_minor": 300, "currency": "USD", "tenant_id": 7}),
    ("account.updated",
     {"id": "acct_1", "object": "account", "metadata": {"pro_id": "5"}, "payouts_enabled": True},
     {"kind": "payout_account_updated", "reference": "acct_1", "tenant_id": None}),
    ("customer.created", {"id": "cus_1", "object": "customer"}, {"kind": "ignored", "reference": ""}),
])
def test_webhook_event_mapping(gateway, fake, event_type, obj, expected):
    payload, headers = signed(fake, event_type, obj)

    event = gateway.parse_webhook(payload, headers)

    assert event.event_id == json.loads(payload)["id"]
    assert {name: getattr(event, name) for name in expected} == expected


def test_webhook_signed_with_another_secret_is_invalid(gateway, fake):
    payload, headers = signed(fake, "account.updated", {"id": "acct_1"}, secret="whsec_someone_else")

    with pytest.raises(WebhookInvalid):
        gateway.parse_webhook(payload, headers)


def test_tampered_webhook_payload_is_invalid(gateway, fake):
    payload, headers = signed(fake, "charge.refunded", {"id": "ch_1", "amount_refunded": 300})

    with pytest.raises(WebhookInvalid):
        gateway.parse_webhook(payload.replace(b"300", b"900"), headers)


def test_stale_webhook_is_invalid(gateway, fake):
    payload, headers = signed(fake, "account.updated", {"id": "acct_1"}, timestamp=int(time.time()) - 301)

    with pytest.raises(WebhookInvalid):
        gateway.parse_webhook(payload, headers)


@pytest.mark.parametrize("headers", [{}, {"Stripe-Signature": "garbage"}, {"Stripe-Signature": "t=1,v0=abc"}])
def test_webhook_without_a_usable_signature_is_invalid(gateway, fake, headers):
    payload, _ = signed(fake, "account.updated", {"id": "acct_1"})

    with pytest.raises(WebhookInvalid):
        gateway.parse_webhook(payload, headers)


@pytest.mark.parametrize("payload", [b"not json", b"\xff\xfe", b'{"object": "event", "id": "evt_1"}'])
def test_correctly_signed_but_unreadable_webhook_is_invalid(gateway, fake, payload):
    with pytest.raises(WebhookInvalid):
        gateway.parse_webhook(payload, {"Stripe-Signature": fake.sign(payload.decode("latin-1"))})


# -- Connect onboarding ---------------------------------------------------------------------------------------

def test_payout_account_creates_an_express_account_and_an_onboarding_link(gateway, fake):
    account = gateway.payout_account(pro_id=5, email="pro@example.com", existing="",
                                     return_url="http://shop.test/pro/payouts",
                                     refresh_url="http://shop.test/pro/payouts/refresh")

    stored = fake.accounts[account.account_id]
    assert account.account_id.startswith("acct_")
    assert stored["type"] == "express"
    assert stored["capabilities"] == {"transfers": "inactive"}
    assert stored["metadata"] == {"pro_id": "5"}
    assert account.onboarding_url.startswith(f"{fake.url}/connect/onboarding/")
    # Completing the hosted onboarding sends the professional back and enables transfers.
    status, location = post_form(account.onboarding_url, {})
    assert (status, location) == (303, "http://shop.test/pro/payouts")
    assert fake.accounts[account.account_id]["capabilities"]["transfers"] == "active"
    # A used link is stale: Stripe sends the professional to refresh_url for a new one.
    assert post_form(account.onboarding_url, {}) == (303, "http://shop.test/pro/payouts/refresh")


def test_payout_account_reuses_an_existing_account_and_survives_a_double_click(gateway, fake):
    options = {"pro_id": 5, "email": "pro@example.com", "return_url": "http://shop.test/r",
               "refresh_url": "http://shop.test/f"}
    first = gateway.payout_account(existing="", **options)
    double_click = gateway.payout_account(existing="", **options)
    again = gateway.payout_account(existing=first.account_id, **options)

    assert first.account_id == double_click.account_id == again.account_id
    assert len(fake.accounts) == 1
    assert len({first.onboarding_url, double_click.onboarding_url, again.onboarding_url}) == 3  # links are fresh


# -- the fake's own wire format -------------------------------------------------------------------------------

def test_form_decoder_reads_stripes_bracket_notation():
    decoded = decode_form("line_items[0][price_data][currency]=usd&line_items[0][quantity]=1"
                          "&line_items[1][quantity]=2&metadata[order_id]=42&expand[]=a&expand[]=b&email=")

    assert decoded == {"line_items": [{"price_data": {"currency": "usd"}, "quantity": "1"}, {"quantity": "2"}],
                       "metadata": {"order_id": "42"}, "expand": ["a", "b"], "email": ""}
