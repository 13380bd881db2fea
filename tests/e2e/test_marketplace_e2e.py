"""The marketplace core in the browser, with a client and professionals in separate contexts."""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta

from playwright.sync_api import expect

from tests import samples
from tests.e2e.conftest import (NOT_AN_IMAGE, fill_and_submit, logged_in, post_request,
                                requested_and_quoted, upload)


def pay_on_demo_checkout(client, app, order_url: str) -> None:
    """The demo gateway's hosted page, as a payer meets it: a declined card first, then a good one."""
    client.locator("#action-pay").click()
    expect(client).to_have_url(re.compile(r"/pay/demo/demo_cs_"))
    expect(client.locator("#test-mode")).to_contain_text("TEST MODE")
    client.locator("#card_number").fill("4000 0000 0000 0002")
    client.locator("#checkout-pay").click()
    expect(client.locator("#card_number-error")).to_contain_text("declined")
    client.locator("#card_number").fill("4242 4242 4242 4242")
    client.locator("#checkout-pay").click()
    expect(client).to_have_url(re.compile(re.escape(order_url.rstrip("/")) + r"/?\?checkout=demo_cs_"))
    expect(client.locator("#order-state")).to_contain_text("paid")


def test_request_quote_accept_pay_deliver_complete_and_invoice(new_context, app):
    title = f"Leaky tap {uuid.uuid4().hex[:6]}"
    client = new_context(accept_downloads=True).new_page()
    logged_in(client, app, "alice@demo.example")
    post_request(client, app, title)
    request_url = client.url

    pro = new_context(accept_downloads=True).new_page()
    logged_in(pro, app, "diego@demo.example", home="/pro")
    pro.goto(app.url("/pro/leads"))
    lead = pro.locator(".lead-card", has_text=title)
    expect(lead).to_be_visible()
    lead.locator(".send-quote").click()
    fill_and_submit(pro, "quote-submit", price="0", message="I can come tomorrow morning with parts.")
    expect(pro.locator("#price-error")).to_contain_text("more than zero")
    fill_and_submit(pro, "quote-submit", price="120")
    expect(pro.get_by_text("Quote sent.")).to_be_visible()
    expect(pro.locator(".lead-card", has_text=title)).to_have_count(0)

    client.goto(request_url)
    card = client.locator(".quote-card", has_text="Diego Ramos")
    expect(card).to_contain_text("$120.00")
    card.locator(".accept-quote").click()
    client.locator(".confirm-accept").click()
    expect(client).to_have_url(re.compile(r"/orders/\d+/?$"))
    order_url = client.url
    expect(client.locator("#order-state")).to_contain_text("accepted")

    pay_on_demo_checkout(client, app, order_url)

    # Both keep the order open: each sees the other's steps, and then the invoice, without reloading.
    expect(client.locator("#order-state")).to_contain_text("paid")
    pro.goto(order_url)
    pro.locator("#action-start").click()
    expect(pro.locator("#order-state")).to_contain_text("in progress")
    expect(client.locator("#order-state")).to_contain_text("in progress")
    pro.locator("#action-deliver").click()
    expect(client.locator("#order-state")).to_contain_text("delivered")
    client.locator("#action-complete").click()
    client.locator("#confirm-complete").click()
    expect(client.locator("#order-state")).to_contain_text("completed")
    expect(pro.locator("#order-state")).to_contain_text("completed")
    for page in (client, pro):
        expect(page.locator("#invoice-link")).to_be_visible()
    expect(client.locator(".timeline-event")).to_have_count(5)

    pro.goto(app.url("/pro/earnings"))
    expect(pro.locator("#earnings-available")).not_to_have_text("$0.00")

    for page in (client, pro):
        page.goto(order_url)
        with page.expect_download() as download:
            page.locator("#invoice-link").click()
        path = download.value.path()
        assert open(path, "rb").read(4) == b"%PDF"

    other = new_context().new_page()
    logged_in(other, app, "mateo@demo.example", home="/pro")
    other.goto(order_url)
    expect(other.locator("#order-missing")).to_be_visible()
    order_id = order_url.rstrip("/").rsplit("/", 1)[-1]
    response = other.request.get(app.url(f"/api/v1/orders/{order_id}/invoice"))
    assert response.status == 404


def test_instant_booking_from_a_public_profile(new_context, app):
    client = new_context().new_page()
    logged_in(client, app, "ben@demo.example")
    client.goto(app.url("/pros"))
    client.locator(".pro-card", has_text="Emma Schultz").click()
    expect(client.locator(".verified-badge").first).to_be_visible()
    client.locator("#book-now").click()
    today = date.today()
    saturday = today + timedelta(days=(5 - today.weekday()) % 7 or 7)
    client.locator("#day").fill(saturday.isoformat())  # Emma works Monday to Friday
    client.locator("#hours").fill("3")
    client.locator("#book-submit").click()
    expect(client.locator("#day-error")).to_contain_text("not available")
    client.locator("#day").fill((saturday + timedelta(days=2)).isoformat())
    client.locator("#book-submit").click()
    expect(client).to_have_url(re.compile(r"/orders/\d+/?$"))
    expect(client.locator("#order-state")).to_contain_text("requested")
    expect(client.get_by_text("$135.00").first).to_be_visible()

    emma = new_context().new_page()
    logged_in(emma, app, "emma@demo.example", home="/pro")
    emma.goto(client.url)
    emma.locator("#action-accept").click()
    expect(emma.locator("#order-state")).to_contain_text("accepted")


def test_pro_profile_editor_and_portfolio(new_context, app, tmp_path):
    pro = new_context().new_page()
    logged_in(pro, app, "kofi@demo.example", home="/pro")
    pro.goto(app.url("/pro/profile"))
    fill_and_submit(pro, "pro-save", hourly_rate="-5")
    expect(pro.locator("#hourly_rate-error")).to_contain_text("negative")
    city = pro.get_by_role("combobox", name="City")
    city.fill("")
    city.press_sequentially("denv", delay=40)
    expect(pro.locator("#city-places option").first).to_have_attribute("value", "Denver, CO, United States")
    fill_and_submit(pro, "pro-save", hourly_rate="55.50", city="Narnia")
    expect(pro.locator("#city-error")).to_contain_text("Choose a city from the list")
    fill_and_submit(pro, "pro-save", hourly_rate="55.50", headline="Gardens that look after themselves",
                    city="denver")  # what was typed resolves: the profile stores the gazetteer's label
    expect(pro.get_by_text("Profile saved.")).to_be_visible()
    expect(pro.locator("#city")).to_have_value("Denver, CO, United States")

    fake = tmp_path / "lawn.jpg"
    fake.write_text("<svg onload=alert(1)>")
    upload(pro, "portfolio", fake)
    expect(pro.get_by_text(NOT_AN_IMAGE).first).to_be_visible()
    photo = tmp_path / "garden.png"
    photo.write_bytes(samples.png((800, 600), "green"))
    upload(pro, "portfolio", photo)
    expect(pro.locator(".portfolio-item")).to_have_count(1)

    visitor = new_context().new_page()
    pro_id = pro.locator("a", has_text="View public page").get_attribute("href").rstrip("/").rsplit("/", 1)[-1]
    visitor.goto(app.url(f"/pros/{pro_id}"))
    expect(visitor.get_by_text("Gardens that look after themselves")).to_be_visible()
    expect(visitor.get_by_text("$55.50 per hour")).to_be_visible()
    expect(visitor.locator("#gallery img")).to_have_count(1)


def test_admin_adds_a_category_and_verifies_a_pro(new_context, app):
    admin = new_context().new_page()
    logged_in(admin, app, "admin@demo.example", home="/admin")
    admin.goto(app.url("/admin/categories"))
    name = f"Pet care {uuid.uuid4().hex[:4]}"
    admin.locator("#category-name").fill(name)
    admin.locator("#add-category").click()
    expect(admin.locator("#categories-table")).to_contain_text(name)

    admin.goto(app.url("/admin/users"))
    admin.locator("[id='verify-george@demo.example']").click()
    expect(admin.locator("[id='verify-george@demo.example']")).to_contain_text("Verified")
    client = new_context().new_page()
    client.goto(app.url("/pros"))
    expect(client.locator(".pro-card", has_text="George Li").locator(".verified-badge")).to_be_visible()


def test_admin_refunds_part_of_an_order(new_context, app):
    title = f"Refund me {uuid.uuid4().hex[:6]}"
    client, pro, request_url = requested_and_quoted(new_context, app, title, "200", "Happy to help with this one.")
    client.goto(request_url)
    client.locator(".quote-card", has_text="Diego Ramos").locator(".accept-quote").click()
    client.locator(".confirm-accept").click()
    expect(client).to_have_url(re.compile(r"/orders/\d+/?$"))
    order_url = client.url
    pay_on_demo_checkout(client, app, order_url)

    admin = new_context().new_page()
    logged_in(admin, app, "admin@demo.example", home="/admin")
    admin.goto(order_url)
    admin.locator("#refund-open").click()
    fill_and_submit(admin, "refund-submit", amount="500", reason="Too much")
    expect(admin.locator("#amount-error")).to_contain_text("$200.00")
    fill_and_submit(admin, "refund-submit", amount="50", reason="Second shelf was not mounted")
    expect(admin.locator("#timeline")).to_contain_text("Refunded $50.00: Second shelf was not mounted")
    expect(admin.locator("#ledger")).to_contain_text("refund")
    admin.goto(app.url("/admin/payments"))
    expect(admin.locator("#admin-payments").locator("tr", has_text=title)).to_contain_text("$150.00")
    client.goto(app.url("/payments"))
    expect(client.locator("#payments").locator("tr", has_text=title)).to_contain_text("$50.00")
