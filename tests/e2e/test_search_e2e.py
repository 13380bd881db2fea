"""The search page (/pros) in the browser, on the seeded demo marketplace: a client searches with a typo, narrows by
place and rating, reads why each pro is there, goes back to the previous results (the URL is the search), and opens
a pro; the filters drawer on a phone; field errors from a shared link; the client home's links into the search.
Screenshots at 360 and 1280 px go to test-results/search/ (for a person to look at; nothing compares them)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Page, expect

from backend.config import PROJECT_ROOT
from tests.e2e.conftest import logged_in

SHOTS = PROJECT_ROOT / "test-results" / "search"


def shot(page: Page, name: str, full_page: bool = True) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def eventually(check, timeout: float = 10.0) -> bool:
    """Whether `check()` comes true within `timeout` seconds (for what `expect` has no assertion for)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def query(page: Page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}


def card(page: Page, name: str):
    """A result: the card is one link, named by everything on it."""
    return page.get_by_role("link", name=re.compile(name))


def test_a_client_searches_with_a_typo_filters_goes_back_and_opens_a_pro(new_context, app):
    client = new_context().new_page()
    logged_in(client, app, "ben@demo.example")
    client.goto(app.url("/pros"))
    expect(client.get_by_role("status")).to_contain_text("10 professionals")
    shot(client, "browse-1280")

    box = client.get_by_label("Search professionals")
    box.fill("handy")
    # suggestions as you type: the box's own list (a datalist), filled once the typing pauses
    assert eventually(lambda: "handyman" in box.evaluate("el => [...el.list.options].map(o => o.value.toLowerCase())"))
    box.fill("handymn")  # a typo
    box.press("Enter")
    expect(client).to_have_url(re.compile(r"/pros/?\?q=handymn$"))
    for name in ("Diego Ramos", "Ivan Petrov", "Mateo Silva"):
        expect(card(client, name)).to_be_visible()
    expect(card(client, "Emma Schultz")).to_have_count(0)
    expect(client.get_by_role("status")).to_contain_text("3 professionals")

    client.get_by_label("Location").fill("Austin")
    client.get_by_label("Location").press("Enter")
    austin = "Austin, TX, United States"  # the place the gazetteer took "Austin" for, shown in the field
    expect(client.get_by_role("status")).to_contain_text(f"within 25 km of {austin}")
    expect(client.get_by_label("Location")).to_have_value(austin)
    expect(card(client, "Diego Ramos")).to_be_visible()
    expect(card(client, "Ivan Petrov")).to_be_visible()
    expect(card(client, "Mateo Silva")).to_have_count(0)  # Boston
    assert query(client) == {"q": "handymn", "place": "Austin"}

    client.get_by_role("radio", name="4 and up").click()
    expect(card(client, "Ivan Petrov")).to_have_count(0)  # no reviews yet
    diego = card(client, "Diego Ramos")
    expect(diego).to_contain_text("4.5★ from 2 reviews")  # the why-line
    expect(diego).to_contain_text("km away")
    expect(client.get_by_role("link", name="Remove filter: 4+ stars")).to_be_visible()
    assert query(client) == {"q": "handymn", "place": austin, "min_rating": "4"}
    shot(client, "filtered-1280")

    client.go_back()  # the previous search, from the URL: fields and results as they were
    expect(card(client, "Ivan Petrov")).to_be_visible()
    expect(client.get_by_role("radio", name="Any rating")).to_be_checked()
    expect(client.get_by_label("Location")).to_have_value(austin)
    expect(client.get_by_label("Search professionals")).to_have_value("handymn")
    assert query(client) == {"q": "handymn", "place": "Austin"}
    expect(card(client, "Ivan Petrov")).to_contain_text(re.compile(r"New on the marketplace|km away"))

    client.go_forward()
    expect(card(client, "Ivan Petrov")).to_have_count(0)
    card(client, "Diego Ramos").click()
    expect(client).to_have_url(re.compile(r"/pros/\d+/?$"))
    expect(client.get_by_role("heading", name="Diego Ramos")).to_be_visible()


def test_categories_sort_and_paging_state_live_in_the_url(page, app):
    page.goto(app.url("/pros"))
    categories = page.get_by_role("navigation", name="Categories")
    categories.get_by_role("link", name=re.compile("^Plumbing")).click()
    expect(categories.get_by_role("link", name=re.compile("^Plumbing"))).to_have_attribute("aria-current", "true")
    expect(page.get_by_role("status")).to_contain_text("in Plumbing")
    category_id = query(page)["category"]
    assert category_id.isdigit()
    expect(card(page, "Diego Ramos")).to_be_visible()
    expect(card(page, "Emma Schultz")).to_have_count(0)

    page.get_by_label("Sort by").click()
    page.get_by_role("option", name="Lowest price").click()
    expect(page).to_have_url(re.compile(r"sort=price"))
    assert query(page)["category"] == category_id

    # a shared link opens the same search, fields filled in
    other = page.context.new_page()
    other.goto(page.url)
    expect(other.get_by_role("navigation", name="Categories").get_by_role(
        "link", name=re.compile("^Plumbing"))).to_have_attribute("aria-current", "true")
    expect(other.get_by_label("Sort by")).to_contain_text("Lowest price")

    categories.get_by_role("link", name=re.compile("^All categories")).click()
    expect(page.get_by_role("status")).to_contain_text("10 professionals")

    page.goto(app.url("/pros?q=clean&page=9"))  # an old link past the last page opens the last one instead
    expect(page).to_have_url(re.compile(r"/pros/?\?q=clean$"))
    expect(card(page, "Emma Schultz")).to_be_visible()


def test_field_errors_from_a_link_and_the_empty_state(page, app):
    page.goto(app.url("/pros?price_min=cheap&place=Nowhereville%20Zzq"))
    expect(page.get_by_text("Check the highlighted filters")).to_be_visible()
    expect(page.get_by_label("Min")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Location")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Location")).to_have_accessible_description(re.compile("know this place"))

    page.goto(app.url("/pros?q=zzyzzyx"))
    expect(page.get_by_text("No professionals match")).to_be_visible()
    page.get_by_role("link", name="Clear filters").click()
    expect(page).to_have_url(re.compile(r"/pros/?\?q=zzyzzyx$"))


def test_on_a_phone_the_filters_are_a_drawer(browser, app):
    context = browser.new_context(viewport={"width": 360, "height": 780}, is_mobile=True, has_touch=True)
    try:
        phone = context.new_page()
        phone.goto(app.url("/pros"))
        expect(phone.get_by_role("status")).to_contain_text("10 professionals")
        expect(phone.get_by_role("navigation", name="Categories")).to_be_hidden()  # the sidebar is not drawn
        shot(phone, "browse-360")
        phone.get_by_role("button", name="Filters").click()
        drawer = phone.get_by_role("dialog", name="Filters")
        expect(drawer).to_be_visible()
        drawer.get_by_label("Verified pros only").click()
        expect(phone).to_have_url(re.compile(r"verified=1"))
        show = drawer.get_by_role("button", name=re.compile(r"Show \d+ results"))
        expect(show).to_be_visible()
        shot(phone, "drawer-360", full_page=False)
        show.click()
        expect(drawer).to_have_count(0)
        expect(phone.get_by_role("button", name="Filters, 1 on")).to_be_visible()
        expect(phone.get_by_role("link", name="Remove filter: Verified only")).to_be_visible()
        shot(phone, "verified-360")
    finally:
        context.close()


def test_the_client_home_links_into_the_search(new_context, app):
    client = new_context().new_page()
    logged_in(client, app, "alice@demo.example")
    client.get_by_role("link", name="Plumbing", exact=True).click()
    expect(client).to_have_url(re.compile(r"/pros/?\?category=\d+$"))
    expect(client.get_by_role("navigation", name="Categories").get_by_role(
        "link", name=re.compile("^Plumbing"))).to_have_attribute("aria-current", "true")

    client.go_back()
    client.get_by_role("link", name=re.compile("Find a pro")).click()
    expect(client).to_have_url(re.compile(r"/pros/?\?place=Austin"))
    expect(client.get_by_role("status")).to_contain_text("within 25 km of Austin")
