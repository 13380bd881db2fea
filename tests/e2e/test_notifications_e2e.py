"""Notifications in the browser: a professional's bell lights up live (no reload) when a client posts a request they
are matched to; a client turns quote emails off on the account page, and the next quote reaches them in the app
only; a phone number is verified with the code from the dev SMS outbox; an email's unsubscribe link says what it
changed."""

from __future__ import annotations

import json
import os
import random
import re
import string
import time
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page, expect
from sqlmodel import select

from tests.e2e.conftest import RunningApp, logged_in, post_request, quote_as, signed_up

BELL = re.compile(r"^Notifications, ")
COUNT = re.compile(r"Notifications, (\d+) unread")


def bell_count(page: Page) -> int:
    label = page.get_by_role("button", name=BELL).get_attribute("aria-label") or ""
    found = COUNT.search(label)
    return int(found.group(1)) if found else 0


def post_matching_request(client: Page, app: RunningApp, title: str) -> None:
    client.goto(app.url("/requests/new"))
    client.get_by_label("Category").click()
    client.get_by_role("option", name="Plumbing").click()
    client.get_by_label("Title").fill(title)
    client.get_by_label("Description").fill("Water pools under the sink whenever the dishwasher drains.")
    client.get_by_role("combobox", name="City").fill("Austin, TX, United States")
    client.get_by_label("Budget from").fill("80")
    client.get_by_label("Budget up to").fill("200")
    client.get_by_role("button", name="Post request").click()
    expect(client).to_have_url(re.compile(r"/requests/\d+/?$"))


def test_the_pros_bell_lights_up_live_when_a_client_posts_a_matching_request(new_context, app):
    tag = "".join(random.choices(string.ascii_lowercase, k=8))
    title = f"Leaking sink trap {tag}"
    pro = new_context().new_page()
    logged_in(pro, app, "diego@demo.example", home="/pro")
    bell = pro.get_by_role("button", name=BELL)
    expect(bell).to_be_visible()
    before = bell_count(pro)
    pro.evaluate("window.__stillTheSamePage = true")

    client = new_context().new_page()
    logged_in(client, app, "alice@demo.example")
    post_matching_request(client, app, title)

    # the pro's page was not reloaded: the count came over the WebSocket
    pro.wait_for_function(
        "n => { const b = [...document.querySelectorAll('button[aria-label^=\"Notifications, \"]')][0];"
        " const m = b && b.getAttribute('aria-label').match(/(\\d+) unread/); return m && Number(m[1]) > n; }",
        arg=before, timeout=20_000)
    assert pro.evaluate("window.__stillTheSamePage") is True
    expect(pro.locator("#bell-badge")).to_be_visible()

    # the bell's menu lists it; choosing it opens the lead and reads it
    bell.click()
    item = pro.locator(".bell-item", has_text=title).first
    expect(item).to_be_visible()
    expect(item).to_have_attribute("data-read", "no")
    after = bell_count(pro)
    item.click()
    expect(pro).to_have_url(re.compile(r"/pro/leads"))
    expect(pro.get_by_role("button", name=BELL)).to_have_attribute("aria-label", re.compile(
        rf"Notifications, ({after - 1} unread|none unread)"))

    # the notifications page: read all, live in the bell
    pro.goto(app.url("/notifications"))
    expect(pro.get_by_role("heading", name="Notifications")).to_be_visible()
    expect(pro.locator(".note-card", has_text=title).first).to_be_visible()
    pro.get_by_role("button", name="Mark all as read").click()
    expect(pro.get_by_role("button", name=BELL)).to_have_attribute("aria-label", "Notifications, none unread")
    pro.get_by_role("radio", name="Unread").click()
    expect(pro.get_by_text("Nothing unread")).to_be_visible()


def test_a_client_turns_quote_emails_off_and_the_next_quote_comes_in_the_app_only(new_context, app):
    page, email = signed_up(new_context, app, "Quinn Quiet", "quiet")
    expect(page).to_have_url(app.at("/client"))
    page.goto(app.url("/account"))
    quotes_by_email = page.get_by_label("Quotes by email")
    expect(quotes_by_email).to_be_checked()
    quotes_by_email.click()
    expect(page.get_by_text("Quotes by email: off.")).to_be_visible()
    expect(quotes_by_email).not_to_be_checked()
    # the security row is shown, on, and cannot be changed
    expect(page.get_by_label("Account security by email")).to_be_checked()
    expect(page.get_by_label("Account security by email")).to_be_disabled()
    page.reload()
    expect(page.get_by_label("Quotes by email")).not_to_be_checked()
    expect(page.get_by_label("Quotes in the app")).to_be_checked()

    # the next quote: in the app (the bell, live), and no email at all
    title = f"Quiet tap {random.randrange(10**6)}"
    post_request(page, app, title)
    pro = new_context().new_page()
    logged_in(pro, app, "diego@demo.example", home="/pro")
    quote_as(pro, app, title, "95", "I can fix it on Saturday morning.")
    expect(page.get_by_role("button", name=BELL)).to_have_attribute("aria-label", re.compile(r"[1-9]\d* unread"))
    page.goto(app.url("/notifications"))
    expect(page.get_by_text("Diego Ramos").first).to_be_visible()
    assert _quote_channels(app, email) == {"in_app"}


def _quote_channels(app: RunningApp, email: str) -> set[str]:
    """The channels of the rows the quote wrote for this client, read from the app's database."""
    from backend.accounts.models import User
    from backend.config import Settings
    from backend.db import Database
    from backend.notifications.catalogue import Event
    from backend.notifications.models import Notification
    from backend.tenancy.service import TenantDirectory

    with _app_environment(app):
        settings = Settings()
    db = Database(settings)
    try:
        tenant = TenantDirectory(db, settings).for_host(f"localhost:{app.port}")
        with db.tenant_session(tenant.id) as s:
            user_id = s.exec(select(User.id).where(User.email == email)).one()
            return set(s.exec(select(Notification.channel).where(Notification.user_id == user_id,
                                                                 Notification.event == Event.QUOTE_RECEIVED)).all())
    finally:
        db.dispose()


def _sms_codes(app: RunningApp, to: str) -> list[str]:
    outbox = Path(app.env["DATA_DIR"]) / "sms-outbox" / "messages.jsonl"
    if not outbox.exists():
        return []
    texts = [json.loads(line) for line in outbox.read_text().splitlines() if line.strip()]
    return [re.search(r"\b(\d{6})\b", t["body"]).group(1) for t in texts if t["to"] == to]


def test_a_phone_number_is_verified_with_the_texted_code(new_context, app):
    page, _ = signed_up(new_context, app, "Tess Texter", "texter")
    expect(page).to_have_url(app.at("/client"))
    page.goto(app.url("/account"))
    suffix = f"{random.randint(100, 199):04d}"
    e164 = f"+1415555{suffix}"
    page.get_by_label("Mobile number").fill("not a number")
    page.get_by_role("button", name="Text me a code").click()
    expect(page.locator("#mobile-phone-error")).to_be_visible()
    page.get_by_label("Mobile number").fill(f"(415) 555-{suffix}")
    page.get_by_role("button", name="Text me a code").click()
    expect(page.get_by_text(re.compile(r"We texted a 6-digit code to \+1 ••• ••• " + suffix))).to_be_visible()
    deadline = time.monotonic() + 20
    while not (codes := _sms_codes(app, e164)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert codes, f"a code was texted to {e164}"
    code = codes[-1]
    page.get_by_label("Verification code").fill(f"{(int(code) + 1) % 1_000_000:06d}")
    page.get_by_role("button", name="Verify").click()
    expect(page.locator("#phone-code-error")).to_contain_text("4 tries left")
    page.get_by_label("Verification code").fill(code)
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_text("Your phone number is verified.")).to_be_visible()
    expect(page.locator("#phone-verified")).to_be_visible()
    page.reload()
    expect(page.locator("#phone-masked")).to_have_text(f"+1 ••• ••• {suffix}")
    expect(page.locator("#sms-needs-phone")).to_have_count(0)


@contextmanager
def _app_environment(app: RunningApp):
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(app.env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _delivered_quote_email(app: RunningApp, email: str) -> str:
    """What a quote does for the client (an email with an unsubscribe link), done here against the app's database
    and dev outbox: the row's unsubscribe URL once the email channel took it."""
    from backend.accounts.models import User
    from backend.bootstrap import make_notifications
    from backend.config import Settings
    from backend.db import Database
    from backend.notifications.catalogue import CATALOGUE, Event
    from backend.notifications.models import Channel, Notification
    from backend.tenancy.service import TenantDirectory

    with _app_environment(app):
        settings = Settings()
    db = Database(settings)
    try:
        notifications = make_notifications(settings, db, dev_outbox=True)
        tenant = TenantDirectory(db, settings).for_host(f"localhost:{app.port}")
        with db.tenant_session(tenant.id) as s:
            user_id = s.exec(select(User.id).where(User.email == email)).one()
            ids = notifications.notify(s, tenant, Event.QUOTE_RECEIVED, [user_id], key=f"e2e-quote:{user_id}",
                                       context=CATALOGUE[Event.QUOTE_RECEIVED].sample, link="/requests")
        for note_id in ids:
            notifications.deliver(tenant.id, note_id)
        with db.tenant_session(tenant.id) as s:
            row = s.exec(select(Notification).where(Notification.user_id == user_id,
                                                    Notification.channel == Channel.EMAIL,
                                                    Notification.event == Event.QUOTE_RECEIVED)).one()
            assert row.status == "sent" and row.unsubscribe_url
            return row.unsubscribe_url
    finally:
        db.dispose()


def test_an_unsubscribe_link_says_what_it_changed(new_context, app):
    page, email = signed_up(new_context, app, "Una Subscribed", "unsub")
    expect(page).to_have_url(app.at("/client"))
    url = _delivered_quote_email(app, email)
    assert url.startswith(app.url("/unsubscribe?token="))

    stranger = new_context().new_page()  # no login: the link alone is enough
    stranger.goto(url)
    expect(stranger.get_by_text("You will no longer get emails about Quotes.")).to_be_visible()
    expect(stranger.get_by_role("link", name="Notification settings")).to_be_visible()
    stranger.goto(app.url("/unsubscribe?token=forged"))
    expect(stranger.get_by_text("This unsubscribe link is not valid", exact=False)).to_be_visible()

    page.goto(app.url("/account"))
    expect(page.get_by_label("Quotes by email")).not_to_be_checked()
    expect(page.get_by_label("Quotes in the app")).to_be_checked()


class _RefusingEmail:
    def send(self, email):
        from backend.notifications.ports import PermanentDeliveryError

        raise PermanentDeliveryError("550 Mailbox unavailable (e2e)")


def _failed_quote_email(app: RunningApp, email: str) -> int:
    """A quote email that the provider refused for good (4xx), made here against the app's database."""
    from backend.accounts.models import User
    from backend.bootstrap import make_notifications
    from backend.config import Settings
    from backend.db import Database
    from backend.notifications.catalogue import CATALOGUE, Event
    from backend.tenancy.service import TenantDirectory

    with _app_environment(app):
        settings = Settings()
    db = Database(settings)
    try:
        notifications = make_notifications(settings, db, dev_outbox=True)
        notifications.email = _RefusingEmail()
        tenant = TenantDirectory(db, settings).for_host(f"localhost:{app.port}")
        with db.tenant_session(tenant.id) as s:
            user_id = s.exec(select(User.id).where(User.email == email)).one()
            ids = notifications.notify(s, tenant, Event.QUOTE_RECEIVED, [user_id], key=f"e2e-fail:{user_id}",
                                       context=CATALOGUE[Event.QUOTE_RECEIVED].sample, link="/requests")
        assert len(ids) == 1, "one email to deliver"
        note_id = ids[0]
        assert notifications.deliver(tenant.id, note_id) == "failed"
        return note_id
    finally:
        db.dispose()


def test_the_admin_sees_a_failed_delivery_retries_it_and_chooses_channels(new_context, app):
    page, email = signed_up(new_context, app, "Fay Failed", "failed")
    expect(page).to_have_url(app.at("/client"))
    note_id = _failed_quote_email(app, email)
    admin = new_context().new_page()
    logged_in(admin, app, "admin@demo.example", home="/admin")
    expect(admin.get_by_role("button", name=COUNT)).to_be_visible()  # the admin alert about it is on the bell
    admin.get_by_role("link", name="Deliveries").first.click()
    row = admin.locator(f"#deliveries-table tr[data-id='{note_id}']")
    expect(row).to_contain_text("550 Mailbox unavailable (e2e)")
    expect(row).to_contain_text("failed")
    row.get_by_role("button", name="Retry").click()
    expect(admin.get_by_text("Sent again.")).to_be_visible()
    expect(row).to_have_count(0)

    text = admin.get_by_label("Text")
    expect(text).to_be_checked()
    text.click()
    expect(admin.get_by_text("Text messages off for this marketplace.")).to_be_visible()
    admin.reload()
    expect(admin.get_by_label("Text")).not_to_be_checked()
    expect(admin.get_by_label("In-app")).to_be_disabled()
    admin.get_by_label("Text").click()
    expect(admin.get_by_text("Text messages on for this marketplace.")).to_be_visible()
    expect(admin.get_by_label("Text")).to_be_checked()
