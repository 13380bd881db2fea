"""Paying through Stripe's and PayPal's hosted flows (the real SDKs against local fakes of their APIs
and pages, which redirect back and send signed webhooks as the real ones do), payouts, and checkout choice."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, deliver_and_complete, logged_in


def set_checkout(new_context, app, provider: str) -> None:
    """The platform operator picks the demo marketplace's checkout provider."""
    op = new_context().new_page()
    op.goto(app.url("/operator/login"))
    op.locator("#email").fill("operator@platform.example")
    op.locator("#password").fill(PASSWORD)
    op.locator("#operator-login-submit").click()
    card = op.locator(".tenant-card[data-slug='demo']")
    card.get_by_role("button", name="Branding").click()
    op.locator("select[name='payment_provider']").select_option(provider, force=True)
    op.locator("#save-branding").click()
    expect(card).to_contain_text(f"checkout: {provider}")
    op.context.close()


@pytest.fixture
def checkout_provider(new_context, app):
    chosen = []

    def choose(provider: str) -> None:
        set_checkout(new_context, app, provider)
        chosen.append(provider)

    yield choose
    if chosen:
        set_checkout(new_context, app, "demo")


def booked_and_accepted(new_context, app, pro_email: str, client_email: str):
    """A client books a pro directly; the pro accepts. Returns (client page, pro page, order URL)."""
    client = new_context().new_page()
    logged_in(client, app, client_email)
    client.goto(app.url("/pros"))
    client.locator(".pro-card", has_text="Emma Schultz").click()
    client.locator("#book-now").click()
    monday = date.today() + timedelta(days=(7 - date.today().weekday()) % 7 or 7)
    client.locator("#day").fill(monday.isoformat())
    client.locator("#hours").fill("2")
    client.locator("#book-submit").click()
    expect(client).to_have_url(re.compile(r"/orders/\d+/?$"))
    order_url = client.url
    pro = new_context().new_page()
    logged_in(pro, app, pro_email, home="/pro")
    pro.goto(order_url)
    pro.locator("#action-accept").click()
    expect(pro.locator("#order-state")).to_contain_text("accepted")
    return client, pro, order_url


def test_stripe_checkout_webhook_completion_and_connect_payout(new_context, app, stripe_fake, checkout_provider):
    client, pro, order_url = booked_and_accepted(new_context, app, "emma@demo.example", "ben@demo.example")
    checkout_provider("stripe")
    client.goto(order_url)
    client.locator("#action-pay").click()
    expect(client).to_have_url(re.compile(re.escape(stripe_fake.url) + r"/pay/cs_"))  # Stripe's hosted page
    client.locator("#card").fill("4000 0000 0000 0002")
    client.get_by_role("button", name="Pay").click()
    expect(client.get_by_text("Your card was declined.")).to_be_visible()
    client.locator("#card").fill("4242 4242 4242 4242")
    client.get_by_role("button", name="Pay").click()
    expect(client).to_have_url(re.compile(re.escape(order_url.rstrip("/")) + r"/?\?checkout=cs_"))
    expect(client.locator("#order-state")).to_contain_text("paid")
    assert any(w.event_type == "checkout.session.completed" and w.status == 200 for w in stripe_fake.webhooks_sent)
    assert stripe_fake.charges_created == 1

    deliver_and_complete(client, pro, order_url)
    pro.goto(app.url("/pro/earnings"))
    expect(pro.locator("#earnings-available")).to_have_text("$81.00")  # 2 h x $45 minus the 10 % fee
    pro.locator("#set-up-payouts").click()
    expect(pro).to_have_url(re.compile(re.escape(stripe_fake.url) + r"/connect/onboarding/"))
    pro.get_by_role("button", name="Complete onboarding").click()
    expect(pro).to_have_url(app.at("/pro/earnings"))
    pro.locator("#pay-out").click()
    expect(pro.locator("#earnings-paid-out")).to_have_text("$81.00")
    transfer = next(iter(stripe_fake.transfers.values()))
    assert transfer["amount"] == 8100 and transfer["source_transaction"]


def test_paypal_approval_and_capture(new_context, app, paypal_fake, checkout_provider):
    client, pro, order_url = booked_and_accepted(new_context, app, "emma@demo.example", "chloe@demo.example")
    checkout_provider("paypal")
    client.goto(order_url)
    client.locator("#action-pay").click()
    expect(client).to_have_url(re.compile(re.escape(paypal_fake.url) + r"/approve/"))
    expect(client.get_by_text("PayPal sandbox")).to_be_visible()
    client.locator("#approve").click()
    expect(client).to_have_url(re.compile(r"token="))
    expect(client.locator("#order-state")).to_contain_text("paid")
    assert paypal_fake.authorizations_created == 1
    deliver_and_complete(client, pro, order_url)
    assert paypal_fake.captures_created == 1
