"""The PayPal gateway through the real `paypal-server-sdk`, against the local fake of PayPal's REST API.

The fake keeps PayPal's state machine (orders, authorizations, captures, refunds, payouts), its error shapes,
PayPal-Request-Id idempotency and webhook signature verification, so these tests exercise the same HTTP calls
the gateway makes in production; only the base URL differs.
"""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from backend.payments.adapters.paypal import UNAVAILABLE, PayPalGateway
from backend.payments.ports import CheckoutRequest, PaymentDeclined, PaymentUnavailable, WebhookInvalid
from tests.fakes.paypal_server import FakePayPal, running_fake
from tests.servers import _free_port

TIMEOUT = 1.0  # seconds; short so the injected hang is a timeout for the gateway


@pytest.fixture
def paypal():
    with running_fake() as fake:
        yield fake


@pytest.fixture
def gateway(paypal: FakePayPal) -> PayPalGateway:
    return PayPalGateway(paypal.client_id, paypal.client_secret, paypal.webhook_id, api_base=paypal.url,
                         timeout=TIMEOUT)


def checkout_request(amount_minor: int = 12_345, currency: str = "USD", key: str = "order-7-checkout",
                     **overrides) -> CheckoutRequest:
    fields = dict(tenant_id=3, order_id=7, amount_minor=amount_minor, currency=currency,
                  description="Fix the kitchen sink", customer_email="client@example.com",
                  success_url="http://app.test/orders/7/paid?session_id={SESSION_ID}&step=2",
                  cancel_url="http://app.test/orders/7", idempotency_key=key)
    fields.update(overrides)
    return CheckoutRequest(**fields)


def approve(session_redirect_url: str) -> requests.Response:
    """The payer clicks Approve on PayPal's hosted page."""
    return requests.post(session_redirect_url, allow_redirects=False, timeout=10)


def authorized(gateway: PayPalGateway, **request_fields):
    session = gateway.start_checkout(checkout_request(**request_fields))
    assert approve(session.redirect_url).status_code == 303
    authorization = gateway.confirm_checkout(session.session_id, idempotency_key="order-7-confirm")
    assert authorization is not None
    return session, authorization


def posted_ids(paypal: FakePayPal, path_suffix: str) -> list[str | None]:
    """The PayPal-Request-Id of every POST to a path ending in `path_suffix`, in order."""
    return [r.request_id for r in paypal.requests if r.method == "POST" and r.path.endswith(path_suffix)]


# ---------------------------------------------------------------------- checkout


def test_checkout_creates_an_authorize_order_for_the_server_computed_amount(gateway, paypal):
    session = gateway.start_checkout(checkout_request())

    order = paypal.orders[session.session_id]
    assert order["intent"] == "AUTHORIZE"
    assert (order["currency"], order["value"]) == ("USD", Decimal("123.45"))
    assert order["custom_id"] == "3:7"
    assert order["reference_id"] == "order-7"
    assert order["description"] == "Fix the kitchen sink"
    assert session.redirect_url == paypal.approve_url(session.session_id)
    # PayPal appends token=<order id> itself; the placeholder parameter is not sent.
    assert order["return_url"] == "http://app.test/orders/7/paid?step=2"
    assert order["cancel_url"] == "http://app.test/orders/7"
    assert posted_ids(paypal, "/v2/checkout/orders") == ["order-7-checkout"]
    experience = paypal.requests_to("/v2/checkout/orders")[0].body["payment_source"]["paypal"]["experience_context"]
    assert experience["shipping_preference"] == "NO_SHIPPING"


def test_a_retried_checkout_with_the_same_key_creates_one_order(gateway, paypal):
    first = gateway.start_checkout(checkout_request())
    second = gateway.start_checkout(checkout_request())

    assert first == second
    assert len(paypal.orders) == 1


def test_zero_decimal_currency_is_sent_as_whole_units(gateway, paypal):
    session, authorization = authorized(gateway, amount_minor=5_000, currency="JPY")

    assert paypal.requests_to("/v2/checkout/orders")[0].body["purchase_units"][0]["amount"] == {
        "currency_code": "JPY", "value": "5000"}
    assert (authorization.amount_minor, authorization.currency) == (5_000, "JPY")
    assert paypal.orders[session.session_id]["value"] == Decimal(5000)


def test_paypal_whole_unit_currency_refuses_fractions_before_calling_paypal(gateway, paypal):
    with pytest.raises(PaymentDeclined, match="whole amounts in HUF"):
        gateway.start_checkout(checkout_request(amount_minor=123_450, currency="HUF"))
    assert paypal.orders == {}


def test_hosted_page_shows_the_amount_and_redirects_back_with_the_token(gateway, paypal):
    session = gateway.start_checkout(checkout_request())

    page = requests.get(session.redirect_url, timeout=10)
    assert "PayPal sandbox" in page.text and "USD 123.45" in page.text and "Approve" in page.text

    answer = approve(session.redirect_url)
    location = urlsplit(answer.headers["Location"])
    assert answer.status_code == 303
    assert location.path == "/orders/7/paid"
    assert parse_qs(location.query)["token"] == [session.session_id]
    assert paypal.orders[session.session_id]["status"] == "APPROVED"


def test_cancel_link_returns_to_the_cancel_url(gateway, paypal):
    session = gateway.start_checkout(checkout_request())

    answer = requests.get(f"{session.redirect_url}/cancel", allow_redirects=False, timeout=10)

    assert answer.status_code == 303
    assert answer.headers["Location"] == f"http://app.test/orders/7?token={session.session_id}"
    assert gateway.confirm_checkout(session.session_id, idempotency_key="k") is None


def test_confirm_before_approval_returns_none_and_authorizes_nothing(gateway, paypal):
    session = gateway.start_checkout(checkout_request())

    assert gateway.confirm_checkout(session.session_id, idempotency_key="order-7-confirm") is None
    assert paypal.authorizations_created == 0


def test_confirm_after_approval_authorizes_once_and_a_second_confirm_returns_the_same(gateway, paypal):
    session = gateway.start_checkout(checkout_request())
    approve(session.redirect_url)

    first = gateway.confirm_checkout(session.session_id, idempotency_key="order-7-confirm")
    # e.g. the webhook handler confirming with its own key after the return page did
    second = gateway.confirm_checkout(session.session_id, idempotency_key="order-7-webhook-confirm")

    assert first == second
    assert (first.amount_minor, first.currency) == (12_345, "USD")
    assert first.reference in paypal.authorizations
    assert paypal.authorizations_created == 1
    assert posted_ids(paypal, "/authorize") == ["order-7-confirm"]


def test_declined_authorization_maps_to_payment_declined(gateway, paypal):
    session = gateway.start_checkout(checkout_request())
    approve(session.redirect_url)
    paypal.decline_next_authorization()

    with pytest.raises(PaymentDeclined) as declined:
        gateway.confirm_checkout(session.session_id, idempotency_key="order-7-confirm")

    assert "declined" in declined.value.message
    assert paypal.authorizations_created == 0


# ---------------------------------------------------------------------- capture, payout, refund, void


def test_capture_payout_and_partial_refund(gateway, paypal):
    _, authorization = authorized(gateway)

    gateway.capture(reference=authorization.reference, amount_minor=12_345, idempotency_key="order-7-capture")
    payout_id = gateway.transfer(reference=authorization.reference, payee_account="pro@example.com",
                                 amount_minor=11_110, transfer_group="order-7", idempotency_key="order-7-release")
    refund_id = gateway.refund(reference=authorization.reference, amount_minor=1_000, captured=True,
                               idempotency_key="order-7-refund")

    assert paypal.authorizations[authorization.reference]["status"] == "CAPTURED"
    (capture,) = paypal.captures.values()
    assert (capture["value"], capture["final_capture"]) == (Decimal("123.45"), True)
    payout = paypal.payouts[payout_id]
    assert payout["sender_batch_id"] == "order-7-release"
    assert payout["items"][0]["receiver"] == "pro@example.com"
    assert payout["items"][0]["amount"] == {"value": "111.10", "currency": "USD"}
    refund = paypal.refunds[refund_id]
    assert (refund["value"], refund["custom_id"]) == (Decimal("10.00"), "3:7")
    assert capture["status"] == "PARTIALLY_REFUNDED"
    assert posted_ids(paypal, "/capture") == ["order-7-capture"]
    assert posted_ids(paypal, "/v1/payments/payouts") == ["order-7-release"]
    assert posted_ids(paypal, "/refund") == ["order-7-refund"]


def test_partial_capture_captures_the_amount_and_releases_the_rest(gateway, paypal):
    _, authorization = authorized(gateway)

    gateway.capture(reference=authorization.reference, amount_minor=10_000, idempotency_key="order-7-capture")

    (capture,) = paypal.captures.values()
    assert capture["value"] == Decimal("100.00")
    assert paypal.authorizations[authorization.reference]["status"] == "CAPTURED"  # final_capture


def test_refund_before_capture_voids_the_authorization(gateway, paypal):
    _, authorization = authorized(gateway)

    reference = gateway.refund(reference=authorization.reference, amount_minor=12_345, captured=False,
                               idempotency_key="order-7-cancel")

    assert reference == authorization.reference
    assert paypal.authorizations[authorization.reference]["status"] == "VOIDED"
    assert posted_ids(paypal, "/void") == ["order-7-cancel"]
    with pytest.raises(PaymentDeclined, match="cancelled"):
        gateway.capture(reference=authorization.reference, amount_minor=12_345, idempotency_key="order-7-capture")
    assert paypal.captures_created == 0


def test_refunding_more_than_is_left_is_declined(gateway, paypal):
    _, authorization = authorized(gateway)
    gateway.capture(reference=authorization.reference, amount_minor=12_345, idempotency_key="order-7-capture")
    gateway.refund(reference=authorization.reference, amount_minor=12_000, captured=True, idempotency_key="r1")

    with pytest.raises(PaymentDeclined, match="more than what is left"):
        gateway.refund(reference=authorization.reference, amount_minor=1_000, captured=True, idempotency_key="r2")
    assert paypal.refunds_created == 1


def test_a_retried_payout_with_the_same_key_pays_once(gateway, paypal):
    _, authorization = authorized(gateway)
    gateway.capture(reference=authorization.reference, amount_minor=12_345, idempotency_key="order-7-capture")

    kwargs = dict(reference=authorization.reference, payee_account="pro@example.com", amount_minor=11_110,
                  transfer_group="order-7", idempotency_key="order-7-release")
    assert gateway.transfer(**kwargs) == gateway.transfer(**kwargs)
    assert paypal.payouts_created == 1


def test_payout_account_is_the_paypal_email(gateway):
    account = gateway.payout_account(pro_id=5, email="pro@example.com", existing="", return_url="r", refresh_url="f")
    assert (account.account_id, account.onboarding_url) == ("pro@example.com", "")
    kept = gateway.payout_account(pro_id=5, email="new@example.com", existing="old@example.com", return_url="r",
                                  refresh_url="f")
    assert kept.account_id == "old@example.com"


def test_every_money_moving_post_carries_the_callers_key(gateway, paypal):
    _, authorization = authorized(gateway)
    gateway.capture(reference=authorization.reference, amount_minor=12_345, idempotency_key="order-7-capture")
    gateway.transfer(reference=authorization.reference, payee_account="pro@example.com", amount_minor=100,
                     transfer_group="order-7", idempotency_key="order-7-release")
    gateway.refund(reference=authorization.reference, amount_minor=100, captured=True, idempotency_key="order-7-r")

    api_posts = [r for r in paypal.requests if r.method == "POST" and r.path.startswith(("/v1/payments", "/v2/"))]
    assert len(api_posts) == 5
    assert all(r.request_id for r in api_posts)


# ---------------------------------------------------------------------- failures and retries


def test_injected_500_is_unavailable_and_the_retry_captures_once(gateway, paypal):
    _, authorization = authorized(gateway)
    paypal.fail_next(1, status=500, path="/capture")

    with pytest.raises(PaymentUnavailable) as unavailable:
        gateway.capture(reference=authorization.reference, amount_minor=12_345, idempotency_key="order-7-capture")
    assert unavailable.value.message == UNAVAILABLE
    assert paypal.captures_created == 0

    gateway.capture(reference=authorization.reference, amount_minor=12_345, idempotency_key="order-7-capture")
    gateway.capture(reference=authorization.reference, amount_minor=12_345, idempotency_key="order-7-capture")
    assert paypal.captures_created == 1
    assert posted_ids(paypal, "/capture") == ["order-7-capture"] * 3


def test_a_timeout_after_paypal_captured_is_unavailable_and_the_retry_does_not_capture_again(gateway, paypal):
    _, authorization = authorized(gateway)
    paypal.hang_next(1, seconds=TIMEOUT * 2, path="/capture")

    with pytest.raises(PaymentUnavailable):
        gateway.capture(reference=authorization.reference, amount_minor=12_345, idempotency_key="order-7-capture")
    assert paypal.captures_created == 1  # PayPal did the work; only the answer was lost

    gateway.capture(reference=authorization.reference, amount_minor=12_345, idempotency_key="order-7-capture")
    assert paypal.captures_created == 1
    assert paypal.authorizations[authorization.reference]["status"] == "CAPTURED"


def test_a_500_on_checkout_is_unavailable(gateway, paypal):
    paypal.fail_next(1, status=503)

    with pytest.raises(PaymentUnavailable):
        gateway.start_checkout(checkout_request())
    assert paypal.orders == {}


def test_an_unreachable_paypal_is_unavailable():
    gateway = PayPalGateway("id", "secret", "WH-1", api_base=f"http://127.0.0.1:{_free_port()}", timeout=TIMEOUT)

    with pytest.raises(PaymentUnavailable):
        gateway.start_checkout(checkout_request())


def test_wrong_client_credentials_are_unavailable_not_a_decline(paypal, caplog):
    gateway = PayPalGateway(paypal.client_id, "wrong-secret", paypal.webhook_id, api_base=paypal.url)

    with pytest.raises(PaymentUnavailable):
        gateway.start_checkout(checkout_request())
    assert paypal.orders == {}
    assert "refused the client credentials" in caplog.text  # the operator learns why


# ---------------------------------------------------------------------- webhooks


class _Receiver:
    """A stand-in for the app's webhook endpoint: records what PayPal posts."""

    def __init__(self):
        self.received: list[tuple[bytes, dict[str, str]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((body, dict(self.headers.items())))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/webhooks/paypal"


@pytest.fixture
def receiver():
    r = _Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def test_approval_sends_a_signed_webhook_the_gateway_verifies(gateway, paypal, receiver):
    paypal.webhook_url = receiver.url
    session = gateway.start_checkout(checkout_request())

    approve(session.redirect_url)

    (body, headers), = receiver.received
    event = gateway.parse_webhook(body, headers)
    assert event.kind == "checkout_completed"
    assert event.provider == "paypal" and event.event_id.startswith("WH-")
    assert event.session_id == session.session_id
    assert (event.tenant_id, event.order_id) == (3, 7)
    assert (event.amount_minor, event.currency) == (12_345, "USD")
    assert paypal.webhook_deliveries[0]["status"] == 200


def test_a_tampered_webhook_body_is_rejected(gateway, paypal):
    body, headers = paypal.signed_webhook("CHECKOUT.ORDER.APPROVED", {"id": "ORDER1", "purchase_units": [
        {"custom_id": "3:7", "amount": {"currency_code": "USD", "value": "1.00"}}]})
    tampered = body.replace(b'"1.00"', b'"0.01"')
    assert tampered != body

    with pytest.raises(WebhookInvalid):
        gateway.parse_webhook(tampered, headers)
    assert gateway.parse_webhook(body, headers).amount_minor == 100  # the untouched one passes


def test_an_unknown_transmission_id_is_rejected(gateway, paypal):
    body, headers = paypal.signed_webhook("PAYMENT.CAPTURE.DENIED", {"id": "CAP1"})
    headers["PAYPAL-TRANSMISSION-ID"] = "00000000-0000-0000-0000-000000000000"

    with pytest.raises(WebhookInvalid):
        gateway.parse_webhook(body, headers)


def test_a_webhook_for_another_webhook_id_is_rejected(paypal):
    other = PayPalGateway(paypal.client_id, paypal.client_secret, "WH-SOMEONE-ELSE", api_base=paypal.url)
    body, headers = paypal.signed_webhook("PAYMENT.CAPTURE.DENIED", {"id": "CAP1"})

    with pytest.raises(WebhookInvalid):
        other.parse_webhook(body, headers)


@pytest.mark.parametrize("mangle", [
    lambda body, headers: (body, {k: v for k, v in headers.items() if k != "PAYPAL-TRANSMISSION-SIG"}),
    lambda body, headers: (body, {}),
    lambda body, headers: (b"not json", headers),
    lambda body, headers: (b"[1, 2]", headers),
], ids=["missing-signature", "no-headers", "not-json", "not-an-event"])
def test_unreadable_webhooks_are_rejected_without_asking_paypal(gateway, paypal, mangle):
    body, headers = mangle(*paypal.signed_webhook("PAYMENT.CAPTURE.DENIED", {"id": "CAP1"}))

    with pytest.raises(WebhookInvalid):
        gateway.parse_webhook(body, headers)
    assert paypal.requests_to("verify-webhook-signature") == []


def test_webhook_headers_are_matched_case_insensitively(gateway, paypal):
    body, headers = paypal.signed_webhook("PAYMENT.CAPTURE.DENIED", {"id": "CAP1"})
    assert gateway.parse_webhook(body, {k.lower(): v for k, v in headers.items()}).kind == "payment_failed"


@pytest.mark.parametrize(("event_type", "resource", "expected"), [
    ("PAYMENT.AUTHORIZATION.VOIDED",
     {"id": "AUTH1", "status": "VOIDED", "custom_id": "3:7", "amount": {"currency_code": "USD", "value": "5.00"},
      "supplementary_data": {"related_ids": {"order_id": "ORDER1"}}},
     {"kind": "refunded", "reference": "AUTH1", "session_id": "ORDER1", "amount_minor": 500}),
    ("PAYMENT.CAPTURE.REFUNDED",
     {"id": "REFUND1", "status": "COMPLETED", "custom_id": "3:7",
      "amount": {"currency_code": "JPY", "value": "300"}},
     {"kind": "refunded", "reference": "REFUND1", "amount_minor": 300, "currency": "JPY"}),
    ("PAYMENT.CAPTURE.DENIED",
     {"id": "CAP1", "status": "DECLINED", "custom_id": "3:7", "amount": {"currency_code": "USD", "value": "1.50"},
      "supplementary_data": {"related_ids": {"order_id": "ORDER1", "authorization_id": "AUTH1"}}},
     {"kind": "payment_failed", "reference": "AUTH1", "amount_minor": 150}),
    ("CUSTOMER.DISPUTE.CREATED", {"id": "PP-D-1"}, {"kind": "ignored", "tenant_id": None, "order_id": None}),
])
def test_webhook_event_mapping(gateway, paypal, event_type, resource, expected):
    body, headers = paypal.signed_webhook(event_type, resource)

    event = gateway.parse_webhook(body, headers)

    assert event.event_id == json.loads(body)["id"]
    if expected["kind"] != "ignored":
        assert (event.tenant_id, event.order_id) == (3, 7)
    for name, value in expected.items():
        assert getattr(event, name) == value, name
