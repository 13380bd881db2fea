"""Double-blind reviews in the browser: a client and a professional in separate contexts complete an order, then
review each other; neither sees the other's review before both are in, or before the window closes (its timer
driven from here, on the app's database, at the deadline the page shows)."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from backend.bootstrap import build_services
from backend.config import Settings
from backend.jobqueue import InlineJobQueue
from tests.e2e.conftest import deliver_and_complete, logged_in, signed_up


@pytest.fixture
def app_backend(app, tmp_path):
    """The services on the app's database, in this process (its own data dir: the chat store is the app's alone)."""
    settings = Settings(_env_file=None, environment="development", database_url=app.env["DATABASE_URL"],
                        data_dir=tmp_path, redis_url=None, mongodb_url=None, s3_bucket=None)
    svc = build_services(settings, jobs=InlineJobQueue(raise_errors=True), migrate=False)
    yield svc
    svc.close()


def completed_booking(new_context, app, pro_name: str, pro_email: str) -> tuple[Page, Page, str]:
    """A new client books the professional, who accepts; the client pays with the demo test card; the pro delivers
    and the client confirms. Returns (client page, pro page, order URL)."""
    client, _ = signed_up(new_context, app, "Rosa Reviewer", "reviewer")
    expect(client).to_have_url(app.at("/client"))
    client.goto(app.url("/pros"))
    client.locator(".pro-card", has_text=pro_name).click()
    client.get_by_role("button", name="Book now").click()
    monday = date.today() + timedelta(days=(7 - date.today().weekday()) % 7 or 7)
    client.get_by_label("Day").fill(monday.isoformat())
    client.get_by_label("Hours").fill("2")
    client.get_by_role("button", name="Request booking").click()
    expect(client).to_have_url(re.compile(r"/orders/\d+/?$"))
    order_url = client.url

    pro = new_context().new_page()
    logged_in(pro, app, pro_email, home="/pro")
    pro.goto(order_url)
    pro.locator("#action-accept").click()
    expect(pro.locator("#order-state")).to_contain_text("accepted")

    client.goto(order_url)
    client.locator("#action-pay").click()
    expect(client).to_have_url(re.compile(r"/pay/demo/demo_cs_"))
    client.locator("#card_number").fill("4242 4242 4242 4242")
    client.locator("#checkout-pay").click()
    expect(client.locator("#order-state")).to_contain_text("paid")
    deliver_and_complete(client, pro, order_url)
    return client, pro, order_url


def review(page: Page, stars: int, text: str, **subratings: int) -> None:
    """Leave a review on the order page: stars by their radio's name, sub-ratings by their group's legend."""
    card = page.locator("#review-card")
    expect(card).to_contain_text("Leave a review")
    card.get_by_role("group", name="Overall rating").get_by_role("radio", name=f"{stars} stars", exact=True).check()
    for legend, value in subratings.items():
        card.get_by_role("group", name=legend.replace("_", " ").capitalize()).get_by_role(
            "radio", name=f"{value} stars", exact=True).check()
    card.get_by_label("Your review").fill(text)
    card.get_by_role("button", name="Submit review").click()


def profile_review_count(page: Page, app, pro_id: str) -> int:
    """How many reviews the professional's public profile counts (on a page that has not shown it yet)."""
    page.goto(app.url(f"/pros/{pro_id}"))
    shown = page.locator("#rating-count, #no-reviews").first
    expect(shown).to_be_visible()
    if shown.get_attribute("id") == "no-reviews":
        return 0
    return int(re.fullmatch(r"(\d+) reviews?", shown.inner_text()).group(1))


def pro_id_of(page: Page) -> str:
    """The professional's id, from the order page's link to their profile."""
    href = page.get_by_role("link", name=re.compile("Professional:")).get_attribute("href")
    return href.rstrip("/").rsplit("/", 1)[-1]


def test_both_review_and_see_each_other_only_after_the_second_submits(new_context, app):
    client, pro, order_url = completed_booking(new_context, app, "Julia Rossi", "julia@demo.example")
    pro_id = pro_id_of(client)
    visitor = new_context().new_page()
    before = profile_review_count(visitor, app, pro_id)
    tag = uuid.uuid4().hex[:6]
    said_by_client = f"Julia chose the colours with us and kept to the day ({tag})."
    said_by_pro = f"Clear brief and quick answers; a pleasure ({tag})."

    expect(client.locator("#blind-note")).to_contain_text("hidden")
    expect(client.locator("#review-deadline")).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT"))
    client.get_by_role("button", name="Submit review").click()  # nothing chosen: the form says what is missing
    expect(client.locator("#stars-error")).to_be_visible()
    review(client, 5, said_by_client, quality=5, communication=4, punctuality=5, value=4)
    expect(client.locator("#review-card")).to_contain_text("Not published yet")
    expect(client.locator("#review-card")).to_contain_text(said_by_client)

    pro.goto(order_url)
    expect(pro.locator("#review-card")).to_contain_text("Leave a review")
    expect(pro.get_by_text(said_by_client)).to_have_count(0)  # blind: not before the pro has reviewed too
    expect(pro.get_by_role("group", name="Quality")).to_have_count(0)  # sub-ratings are the client's only
    review(pro, 4, said_by_pro)
    reviews = pro.locator("#order-reviews")
    expect(reviews).to_contain_text(said_by_client)  # both published at once
    expect(reviews).to_contain_text(said_by_pro)
    pro.get_by_label("Your public reply").fill(f"Thank you, it was a lovely flat to paint ({tag}).")
    pro.get_by_role("button", name="Post reply").click()
    expect(reviews).to_contain_text("Reply from Julia Rossi")

    client.goto(order_url)
    expect(client.locator("#order-reviews")).to_contain_text(said_by_pro)
    expect(client.locator("#order-reviews")).to_contain_text(said_by_client)
    expect(client.locator("#review-card")).to_have_count(0)  # published: nothing left to edit

    visitor.goto(app.url(f"/pros/{pro_id}"))
    expect(visitor.locator("#rating-count")).to_have_text(re.compile(rf"^{before + 1} reviews?$"))
    listed = visitor.locator("#review-list .review-card", has_text=said_by_client)
    expect(listed).to_contain_text("lovely flat")  # the reply, under the review
    listed.get_by_role("button", name="Report").click()
    expect(visitor).to_have_url(re.compile(r"/login\?next="))  # reporting takes a signed-in user


def test_one_review_is_published_when_the_window_closes(new_context, app, app_backend):
    client, pro, order_url = completed_booking(new_context, app, "Ivan Petrov", "ivan@demo.example")
    pro_id = pro_id_of(client)
    visitor = new_context().new_page()
    before = profile_review_count(visitor, app, pro_id)
    said = f"Careful with the piano, but an hour late ({uuid.uuid4().hex[:6]})."

    review(client, 3, said, punctuality=2)
    expect(client.locator("#review-card")).to_contain_text("Not published yet")
    deadline = datetime.fromisoformat(client.locator("#review-deadline").get_attribute("datetime"))
    shown_deadline = client.locator("#review-deadline").inner_text()
    client.goto(app.url("/reviews"))
    expect(client.locator("#given-reviews .review-card", has_text=said)).to_contain_text("Not published yet")
    pro.goto(app.url("/reviews"))  # the pro's "My reviews" lists the order to review, with the same deadline
    order_id = order_url.rstrip("/").rsplit("/", 1)[-1]
    expect(pro.locator(f"#pending-reviews a[href$='/orders/{order_id}']")).to_contain_text(shown_deadline)

    tenant = app_backend.tenants.by_slug("demo")
    app_backend.reviews.run_timers(tenant, deadline - timedelta(minutes=1))  # still open: nothing moves
    pro.goto(order_url)
    expect(pro.locator("#review-card")).to_contain_text("Leave a review")
    expect(pro.get_by_text(said)).to_have_count(0)

    app_backend.reviews.run_timers(tenant, deadline + timedelta(minutes=1))  # the deadline the page showed
    pro.goto(order_url)
    expect(pro.locator("#order-reviews")).to_contain_text(said)
    expect(pro.locator("#review-card")).to_have_count(0)  # the window closed: the pro can no longer review
    client.goto(order_url)
    expect(client.locator("#order-reviews")).to_contain_text(said)
    expect(client.locator("#order-reviews")).to_contain_text("Ivan Petrov did not review this order.")

    visitor.goto(app.url(f"/pros/{pro_id}"))
    expect(visitor.locator("#rating-count")).to_have_text(re.compile(rf"^{before + 1} reviews?$"))
    expect(visitor.locator("#review-list")).to_contain_text(said)
