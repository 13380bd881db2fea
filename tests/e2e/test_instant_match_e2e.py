"""Instant match in the browser: a client posts a request and is told how many pros it went to; a matched pro (in
another browser context) finds the lead marked "Matched to you", the in-app note about it, and the lead again with
the leads inbox's keyword box."""

from __future__ import annotations

import random
import re
import string

from playwright.sync_api import expect

from tests.e2e.conftest import logged_in

SENT_TO = re.compile(r"We sent your request to (\d+) matching pros?\.")


def test_a_new_request_notifies_the_matched_pros(new_context, app):
    # a made-up word: the keyword search must find this request and nothing else
    tag = "".join(random.choices(string.ascii_lowercase, k=9))
    title = f"Replace the corroded valve {tag}"

    client = new_context().new_page()
    logged_in(client, app, "alice@demo.example")
    client.goto(app.url("/requests/new"))
    client.get_by_label("Category").click()
    client.get_by_role("option", name="Plumbing").click()
    client.get_by_label("Title").fill(title)
    client.get_by_label("Description").fill("The valve under the kitchen sink is corroded and weeps at the joint.")
    client.get_by_role("combobox", name="City").fill("Austin, TX, United States")
    client.get_by_label("Budget from").fill("80")
    client.get_by_label("Budget up to").fill("200")
    client.get_by_role("button", name="Post request").click()
    expect(client).to_have_url(re.compile(r"/requests/\d+/?$"))
    request_id = int(re.search(r"/requests/(\d+)", client.url).group(1))
    # the toast right after posting, and the request page, say how many pros it went to (Diego, the demo plumber
    # in Austin, at least)
    expect(client.get_by_text(SENT_TO).first).to_be_visible()
    note = client.locator("#match-note")
    expect(note).to_contain_text(SENT_TO)
    assert int(SENT_TO.search(note.inner_text()).group(1)) >= 1

    pro = new_context().new_page()
    logged_in(pro, app, "diego@demo.example", home="/pro")
    pro.goto(app.url("/pro/leads"))
    lead = pro.locator(".lead-card", has_text=title)
    expect(lead).to_be_visible()
    expect(lead.get_by_text("Matched to you")).to_be_visible()
    expect(lead).to_have_attribute("data-matched", "yes")

    # the keyword box narrows the inbox to what it finds among the pro's leads
    pro.get_by_label("Search your leads").fill(tag)
    pro.get_by_role("button", name="Search", exact=True).click()
    # the answer has arrived when the search offers to be cleared (the box is redrawn with the search then)
    expect(pro.get_by_role("button", name="Clear")).to_be_visible()
    expect(pro.locator(".lead-card")).to_have_count(1)
    expect(pro.locator(".lead-card", has_text=title)).to_be_visible()
    pro.get_by_label("Search your leads").fill(f"nothing{tag}")
    pro.get_by_role("button", name="Search", exact=True).click()
    expect(pro.get_by_text("No leads match your search")).to_be_visible()
    pro.get_by_role("button", name="Clear").click()
    expect(pro.locator(".lead-card", has_text=title)).to_be_visible()

    # the in-app notification (the notifications page), and the lead its link opens
    pro.goto(app.url("/notifications"))
    expect(pro.get_by_role("heading", name="Notifications")).to_be_visible()
    expect(pro.get_by_text("You were matched with").first).to_be_visible()
    expect(pro.get_by_text(title).first).to_be_visible()
    pro.goto(app.url(f"/pro/leads/{request_id}"))
    lead = pro.locator(".lead-card", has_text=title)
    expect(lead.get_by_text("Matched to you")).to_be_visible()
    expect(lead.get_by_role("button", name="Send quote")).to_be_visible()
