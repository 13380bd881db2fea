"""The admin's dashboard in the browser (issue 13): KPI cards and charts on the seeded history, the range changed by
a preset and by typed dates, CSV exports that hold what the page shows, sortable tables, the operations queues, a
phone-sized screen; clients and professionals are refused. Fields and buttons are found by their labels and roles."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from playwright.sync_api import Page, expect

from backend.analytics import Period
from backend.db import utcnow
from tests.e2e.conftest import logged_in

ADMIN = "admin@demo.example"


def dashboard(page: Page, app) -> None:
    logged_in(page, app, ADMIN, home="/admin")
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.get_by_role("region", name="Key figures")).to_be_visible()


def downloaded_csv(page: Page, button: str) -> tuple[str, list[dict[str, str]]]:
    """Press an "Export … CSV" button; the file's name and its rows (the header row names the fields)."""
    with page.expect_download() as download:
        page.get_by_role("button", name=button).click()
    path = download.value.path()
    text = open(path, encoding="utf-8", newline="").read()
    return download.value.suggested_filename, list(csv.DictReader(io.StringIO(text)))


def table_rows(page: Page, name: str) -> list[list[str]]:
    """The body rows of the table named `name` (its caption), as the texts of their cells."""
    rows = page.get_by_role("table", name=name).locator("tbody").get_by_role("row")
    return [[c.strip() for c in row.get_by_role("cell").all_inner_texts()] for row in rows.all()]


def test_the_admin_reads_the_dashboard_changes_the_range_and_exports_what_the_page_shows(page, app):
    dashboard(page, app)
    today = utcnow().date()
    expect(page.get_by_text(Period.last(30, today).label)).to_be_visible()  # the default range: 30 days

    # KPI cards, each with its value and the comparison with the period before
    key_figures = page.get_by_role("region", name="Key figures")
    gmv = key_figures.get_by_role("group", name="GMV", exact=True)
    expect(gmv).to_contain_text("$")
    expect(gmv).to_contain_text("previous")
    for name in ("Net revenue", "Take rate", "Dispute rate", "Quote-to-hire rate", "Median time to first quote"):
        expect(key_figures.get_by_role("group", name=name, exact=True)).to_be_visible()

    # the charts render (an SVG inside each named figure), each with its text alternative
    for chart in ("GMV and platform fees per day", "Orders created and sign-ups per day",
                  "Orders reaching each state", "Funnel from request to completed order, with conversion at each step"):
        figure = page.get_by_role("figure", name=chart)
        expect(figure.locator("svg").first).to_be_visible()
        expect(figure.locator("figcaption")).not_to_be_empty()
    expect(page.get_by_role("figure", name="GMV and platform fees per day").locator("figcaption")).to_contain_text(
        "Over 30 days")

    # a preset
    page.get_by_role("button", name="90 days").click()
    expect(page.get_by_role("button", name="90 days")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_text(Period.last(90, today).label)).to_be_visible()
    expect(page.get_by_label("Start date")).to_have_value((today - timedelta(days=89)).isoformat())
    expect(page.get_by_label("End date")).to_have_value(today.isoformat())

    # typed dates: refused with the reason under the field, then a valid range
    start, end = today - timedelta(days=60), today - timedelta(days=1)
    page.get_by_label("Start date").fill(end.isoformat())
    page.get_by_label("End date").fill(start.isoformat())
    page.get_by_role("button", name="Apply dates").click()
    expect(page.get_by_text("The end is before the start")).to_be_visible()
    expect(page.get_by_label("End date")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Start date").fill(start.isoformat())
    page.get_by_label("End date").fill(end.isoformat())
    page.get_by_role("button", name="Apply dates").click()
    expect(page.get_by_text("The end is before the start")).to_have_count(0)
    expect(page.get_by_text(Period(start, end).label)).to_be_visible()
    expect(page.get_by_role("figure", name="GMV and platform fees per day").locator("figcaption")).to_contain_text(
        "Over 60 days")
    expect(page.get_by_role("figure", name="Orders reaching each state").locator("svg").first).to_be_visible()

    # the orders-by-state export holds what the table under the chart shows, for the range on the page
    shown = {state: count for state, count in table_rows(page, "Orders by state")}
    assert sum(int(c) for c in shown.values()) > 0, shown  # the seeded history has orders in these 60 days
    filename, rows = downloaded_csv(page, "Export orders by state CSV")
    assert filename == f"demo-orders_by_state-{start}-{end}.csv"
    assert {r["state"].replace("_", " "): r["count"] for r in rows} == shown

    # the KPI export: every card's value and previous value as the page shows them
    filename, rows = downloaded_csv(page, "Export key figures CSV")
    assert filename.startswith("demo-kpis-") and len(rows) >= 16
    for r in rows:
        card = key_figures.get_by_role("group", name=r["label"], exact=True)
        expect(card).to_contain_text(r["value"])
        if r["previous"]:
            expect(card).to_contain_text(f"previous {r['previous']}")


def test_the_category_filter_and_sortable_tables(page, app):
    dashboard(page, app)
    page.get_by_role("button", name="12 months").click()
    expect(page.get_by_role("button", name="12 months")).to_have_attribute("aria-pressed", "true")
    table = page.get_by_role("table", name="Funnel by category")
    expect(table.locator("tbody").get_by_role("row").first).to_be_visible()

    # sort by category name, both ways; aria-sort says which
    header = table.get_by_role("columnheader", name="Category")
    header.get_by_role("button").click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    names = [r[0] for r in table_rows(page, "Funnel by category")]
    assert names == sorted(names, key=str.lower)
    header.get_by_role("button").click()
    expect(header).to_have_attribute("aria-sort", "descending")
    names = [r[0] for r in table_rows(page, "Funnel by category")]
    assert names == sorted(names, key=str.lower, reverse=True)

    # one category: the funnel table holds that category only
    page.get_by_label("Category", exact=True).click()
    page.get_by_role("option", name="Plumbing").click()
    expect(table.locator("tbody").get_by_role("row")).to_have_count(1)
    expect(table.locator("tbody")).to_contain_text("Plumbing")
    filename, rows = downloaded_csv(page, "Export funnel by category CSV")
    assert [r["category"] for r in rows] == ["Plumbing"]
    shown = table_rows(page, "Funnel by category")[0]
    assert [rows[0][k] for k in ("category", "requests", "quoted", "hired", "paid", "completed")] == shown


def test_operations_queues_and_the_nav(page, app):
    dashboard(page, app)
    page.get_by_role("link", name="Operations").first.click()
    expect(page.get_by_role("heading", name="Operations", exact=True)).to_be_visible()
    for queue in ("Disputes waiting", "Reported reviews", "Failed payouts", "Failed notifications",
                  "Pros awaiting verification", "Suspended users"):
        expect(page.get_by_role("region", name=queue)).to_be_visible()
    page.get_by_role("link", name="Users").first.click()
    expect(page.get_by_role("heading", name="Users")).to_be_visible()


def test_the_dashboard_fits_a_phone(new_context, app):
    page = new_context().new_page()
    page.set_viewport_size({"width": 360, "height": 800})
    dashboard(page, app)
    expect(page.get_by_role("figure", name="GMV and platform fees per day").locator("svg").first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


def test_a_marketplace_without_orders_shows_empty_states(page, app):
    logged_in(page, app, "admin@acme.example", tenant="acme", home="/admin")  # acme's seed has no orders
    key_figures = page.get_by_role("region", name="Key figures")
    expect(key_figures.get_by_role("group", name="GMV", exact=True)).to_contain_text("$0.00")
    expect(page.get_by_text("Nothing to chart yet")).to_be_visible()
    expect(page.get_by_role("figure", name="GMV and platform fees per day")).to_have_count(0)
    expect(page.get_by_role("region", name="Funnel by category")).to_contain_text("No requests in this period.")
    _, rows = downloaded_csv(page, "Export key figures CSV")
    assert {r["key"]: r["value"] for r in rows}["gmv"] == "$0.00"


def test_clients_and_professionals_are_refused_the_dashboard(new_context, app):
    for email, home in (("alice@demo.example", "/client"), ("diego@demo.example", "/pro")):
        page = new_context().new_page()
        logged_in(page, app, email, home=home)
        for path in ("/admin", "/admin/operations"):
            page.goto(app.url(path))
            expect(page.get_by_text("You can't open this page")).to_be_visible()
            expect(page.get_by_role("region", name="Key figures")).to_have_count(0)
            expect(page.get_by_role("button", name="Export key figures CSV")).to_have_count(0)
