"""axe-core (npm, installed into .tools by `make setup-dev`) on every page, for every role, and on the main dialogs
open: no serious or critical violation of WCAG 2.0/2.1 A and AA or axe's best practices (nor the moderate rules on
headings and landmarks), exactly one h1 per page. Prints a summary per page.

The pages come from pages.registry.PAGES: each role lists the routes it can open (with the ids of a request, an order,
its conversation and checkout that a client and a professional make first), and every registered route must be
listed for some role, so a new page is audited as soon as it is added.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from backend.config import PROJECT_ROOT
from tests.e2e.conftest import PASSWORD, RunningApp, logged_in, post_request, quote_as

AXE = PROJECT_ROOT / ".tools" / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
BLOCKING = ("critical", "serious")
# moderate in axe, but what the issue asks of every page: one h1, headings in order, a main landmark, all in landmarks
BLOCKING_RULES = {"page-has-heading-one", "heading-order", "landmark-one-main", "region", "landmark-unique"}
IMPACTS = ("critical", "serious", "moderate", "minor")

# (role, login email, home after login, routes): `{name}` is filled from the world built below.
ROLES = {
    "anonymous": (None, None, ["/", "/login", "/signup", "/forgot", "/reset", "/verify", "/operator/login", "/pros",
                               "/pros/{pro_id}", "/unsubscribe"]),
    "client": ("alice@demo.example", "/client", [
        "/client", "/requests", "/requests/new", "/requests/{request_id}", "/pros", "/pros/{pro_id}", "/orders",
        "/orders/{order_id}", "/pay/demo/{session_id}", "/payments", "/reviews", "/messages",
        "/messages/{conversation_id}", "/notifications", "/account"]),
    "professional": ("diego@demo.example", "/pro", [
        "/pro", "/pro/leads", "/pro/leads/{request_id}", "/pro/quotes", "/pro/earnings", "/pro/profile", "/orders",
        "/orders/{order_id}", "/reviews", "/messages", "/messages/{conversation_id}", "/notifications", "/account"]),
    "tenant admin": ("admin@demo.example", "/admin", [
        "/admin", "/admin/operations", "/admin/users", "/admin/categories", "/admin/payments", "/admin/reviews",
        "/admin/notifications", "/admin/outbox", "/orders", "/orders/{order_id}", "/notifications", "/account"]),
    "operator": ("operator@platform.example", "/operator", ["/operator"]),
}

_WORLDS: dict[int, dict[str, str]] = {}


def routes_of(role: str, world: dict[str, str]) -> list[str]:
    return [r.format(**world) for r in ROLES[role][2]]


def sign_in(page: Page, app: RunningApp, role: str) -> None:
    email, home, _ = ROLES[role]
    if email is None:
        return
    if role == "operator":
        page.goto(app.url("/operator/login"))
        page.locator("#email").fill(email)
        page.locator("#password").fill(PASSWORD)
        page.locator("#operator-login-submit").click()
        expect(page).to_have_url(app.at("/operator"))
    else:
        logged_in(page, app, email, home=home)


def settled(page: Page) -> None:
    """The page has loaded what it shows: no spinner left, and the fonts and images in."""
    page.wait_for_load_state("load")
    page.wait_for_function("document.title !== ''")
    expect(page.locator("#loading")).to_have_count(0)
    page.evaluate("document.fonts.ready.then(() => true)")


def open_page(page: Page, app: RunningApp, path: str) -> None:
    page.goto(app.url(path))
    settled(page)


@pytest.fixture
def world(app, new_context) -> dict[str, str]:
    """Alice posts a request, Diego quotes, Alice accepts and opens the demo checkout (without paying): the ids of
    the request, the order, its conversation, the checkout session and Diego's profile. Built once per app."""
    if app.port in _WORLDS:
        return _WORLDS[app.port]
    title = f"Dripping tap {uuid.uuid4().hex[:6]}"
    client = new_context().new_page()
    logged_in(client, app, "alice@demo.example")
    post_request(client, app, title)
    request_id = re.search(r"/requests/(\d+)", client.url).group(1)
    pro = new_context().new_page()
    logged_in(pro, app, "diego@demo.example", home="/pro")
    quote_as(pro, app, title, "95", "I can come on Monday with a new washer.")
    client.goto(app.url(f"/requests/{request_id}"))
    client.locator(".quote-card", has_text="Diego Ramos").locator(".accept-quote").click()
    client.locator(".confirm-accept").click()
    expect(client).to_have_url(re.compile(r"/orders/\d+/?$"))
    order_id = re.search(r"/orders/(\d+)", client.url).group(1)
    chat = client.locator("#order-chat")
    expect(chat).to_be_visible()
    conversation_id = re.search(r"/messages/(\d+)", chat.get_attribute("href")).group(1)
    pro_id = re.search(r"/pros/(\d+)", client.get_by_role("link", name=re.compile("Diego Ramos")).first
                       .get_attribute("href")).group(1)
    client.locator("#action-pay").click()
    expect(client).to_have_url(re.compile(r"/pay/demo/demo_cs_"))
    session_id = re.search(r"/pay/demo/([^/?#]+)", client.url).group(1)
    _WORLDS[app.port] = dict(request_id=request_id, order_id=order_id, conversation_id=conversation_id,
                             pro_id=pro_id, session_id=session_id)
    return _WORLDS[app.port]


def audit(page: Page, context: str | None = None) -> list[dict]:
    """axe's violations on the page (or inside the `context` selector)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    return page.evaluate(
        "([ctx, tags]) => axe.run(ctx ? document.querySelector(ctx) : document,"
        " {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']}).then(r => r.violations.map(v => ("
        "{id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => ({target: n.target.join(' '),"
        " summary: n.failureSummary}))})))",
        [context, AXE_TAGS])


def summary_line(where: str, violations: list[dict]) -> str:
    counts = Counter(v["impact"] for v in violations)
    tally = " ".join(f"{impact}={counts.get(impact, 0)}" for impact in IMPACTS)
    rules = ", ".join(f"{v['id']}({v['impact']})" for v in violations)
    return f"  {where:<40} {tally}" + (f"  [{rules}]" if rules else "")


def blocking(violations: list[dict]) -> list[str]:
    return [f"{v['id']} ({v['impact']}): {v['help']}\n" + "\n".join(
        f"      {n['target']}: {n['summary'].splitlines()[-1].strip() if n['summary'] else ''}" for n in v["nodes"][:6])
        for v in violations if v["impact"] in BLOCKING or v["id"] in BLOCKING_RULES]


def report(capsys, title: str, lines: list[str]) -> None:
    with capsys.disabled():  # shown with or without -s
        print(f"\naxe-core {title}:\n" + "\n".join(lines))


def test_every_route_is_audited_for_some_role(world):
    from pages import PAGES

    audited = {re.sub(r"\{(\w+)\}", r"[\1]", r) for _, _, routes in ROLES.values() for r in routes}
    assert sorted(p.route for p in PAGES if p.route not in audited) == []


@pytest.mark.parametrize("role", list(ROLES))
def test_every_page_has_no_serious_or_critical_violation(role, app, world, new_context, capsys):
    assert AXE.exists(), f"{AXE} is missing: run `make setup-dev`"
    page = new_context().new_page()
    sign_in(page, app, role)
    lines, failures = [], []
    for path in routes_of(role, world):
        open_page(page, app, path)
        violations = audit(page)
        lines.append(summary_line(path, violations))
        failures += [f"{path}: {b}" for b in blocking(violations)]
        if (h1s := page.locator("h1").count()) != 1:
            failures.append(f"{path}: {h1s} h1 elements, not one")
    report(capsys, f"as {role}", lines)
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)


def test_dialogs_open_have_no_serious_or_critical_violation(app, world, new_context, capsys):
    """The quote dialog, a confirmation (accepting a quote) and the report-a-review dialog, audited while open."""
    lines, failures = [], []

    def check(page: Page, where: str) -> None:
        dialog = page.locator("[role=dialog], [role=alertdialog]")
        expect(dialog).to_be_visible()
        violations = audit(page)
        lines.append(summary_line(where, violations))
        failures.extend(f"{where}: {b}" for b in blocking(violations))

    title = f"Loose hinge {uuid.uuid4().hex[:6]}"
    client = new_context().new_page()
    logged_in(client, app, "alice@demo.example")
    post_request(client, app, title)
    request_url = client.url

    pro = new_context().new_page()
    logged_in(pro, app, "diego@demo.example", home="/pro")
    open_page(pro, app, "/pro/leads")
    pro.locator(".lead-card", has_text=title).locator(".send-quote").click()
    check(pro, "quote dialog (/pro/leads)")
    pro.keyboard.press("Escape")
    expect(pro.get_by_role("dialog")).to_have_count(0)
    quote_as(pro, app, title, "80", "Tomorrow at nine.")
    # the toast that confirmed it sits in a live region: screen readers announce it where focus is
    expect(pro.locator("[aria-live]", has_text="Quote sent.")).to_have_count(1)

    client.goto(request_url)
    settled(client)
    client.locator(".quote-card", has_text="Diego Ramos").locator(".accept-quote").click()
    check(client, "accept confirmation (/requests/id)")
    client.keyboard.press("Escape")

    open_page(client, app, f"/pros/{world['pro_id']}")
    client.locator(".report-review").first.click()
    check(client, "report a review (/pros/id)")
    report(capsys, "dialogs", lines)
    if failures:
        pytest.fail("\n".join(failures), pytrace=False)
