"""The installable app in Chromium: manifest linked, service worker in control, installable by Chromium's own
check, the offline page after a first visit, and the "Install app" button when the browser offers to install."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

OFFLINE_HEADING = "You're offline; we'll reconnect"


@pytest.fixture
def profile(browser, tmp_path):
    """A browser with a profile on disk: Chromium never offers to install an app from an incognito context,
    which is what `browser.new_context()` makes."""
    context = browser.browser_type.launch_persistent_context(
        tmp_path / "profile", executable_path=CHROMIUM, args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900})
    yield context
    context.close()


def _controlled(page) -> None:
    """Wait until the service worker controls the page (it claims open pages as it activates)."""
    page.wait_for_function("navigator.serviceWorker && navigator.serviceWorker.controller !== null")


def _installability_errors(context, page) -> list:
    cdp = context.new_cdp_session(page)
    try:
        return cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
    finally:
        cdp.detach()


def test_manifest_linked_worker_in_control_and_installable(app, profile):
    context = profile
    page = context.new_page()
    page.goto(app.url("/"))
    assert page.locator('link[rel="manifest"]').get_attribute("href") == "/manifest.webmanifest"
    assert page.locator('link[rel="apple-touch-icon"]').get_attribute("href") == "/pwa/apple-touch-icon.png"
    assert page.locator('meta[name="apple-mobile-web-app-capable"]').get_attribute("content") == "yes"
    _controlled(page)
    assert page.evaluate("navigator.serviceWorker.controller.scriptURL") == app.url("/sw.js")
    # pwa.js gives the browser this marketplace's colour and name
    expect(page.locator('meta[name="apple-mobile-web-app-title"]')).to_have_attribute("content", "HandyHub")
    assert _installability_errors(context, page) == []


def test_each_marketplace_is_its_own_installable_app(app, profile):
    context = profile
    page = context.new_page()
    page.goto(app.url("/", "acme"))
    _controlled(page)
    manifest = page.evaluate("fetch('/manifest.webmanifest').then(r => r.json())")
    assert manifest["name"] == "Acme Home Services" and manifest["theme_color"] == "#0F766E"
    expect(page.locator('meta[name="theme-color"]')).to_have_attribute("content", "#0F766E")
    assert _installability_errors(context, page) == []


def test_offline_page_after_a_first_visit_then_back_online(app, new_context):
    context = new_context()
    page = context.new_page()
    page.goto(app.url("/pros"))
    _controlled(page)
    context.set_offline(True)
    page.goto(app.url("/login"))
    expect(page.get_by_role("heading", name=OFFLINE_HEADING)).to_be_visible()
    expect(page.get_by_role("status")).to_be_visible()
    expect(page.get_by_role("button", name="Try again now")).to_be_visible()
    context.set_offline(False)  # the page notices (the browser's "online" event, else its own retry) and reloads
    expect(page.locator("#email")).to_be_visible()  # the page that was asked for: the login form


def test_install_button_appears_when_the_browser_offers_and_works_by_keyboard(app, new_context):
    page = new_context().new_page()
    page.goto(app.url("/"))
    _controlled(page)
    install = page.get_by_role("button", name="Install app")
    expect(install).to_have_count(0)  # hidden (out of the accessibility tree) until the browser offers
    # The browser's offer, as Chromium dispatches it (its install dialog cannot be answered in a test browser).
    page.evaluate("""() => {
        const offer = new Event('beforeinstallprompt', {cancelable: true});
        offer.prompt = () => { window.__installPrompted = true; return Promise.resolve(); };
        offer.userChoice = Promise.resolve({outcome: 'accepted'});
        window.dispatchEvent(offer);
    }""")
    expect(install).to_be_visible()
    install.focus()
    page.keyboard.press("Enter")
    page.wait_for_function("window.__installPrompted === true")
    expect(install).to_have_count(0)  # an offer is used once
