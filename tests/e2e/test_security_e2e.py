"""Browser protections in Chromium: the session is an HttpOnly cookie no script can read, every page carries the
security headers, the app runs under its Content-Security-Policy without violations, and it cannot be framed."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import logged_in


def test_session_cookie_is_httponly_and_survives_reloads(new_context, app):
    context = new_context()
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    logged_in(page, app, "alice@demo.example")
    cookie = next(c for c in context.cookies() if c["name"] == "mp_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and not cookie["secure"]  # http here: no Secure
    assert "mp_session" not in page.evaluate("document.cookie")
    page.reload()
    expect(page.locator("#client-home")).to_be_visible()  # the server read the cookie from the socket handshake
    for path in ("/requests/new", "/orders", "/messages", "/account"):
        page.goto(app.url(path))
        expect(page.get_by_role("button", name="Alice Carter")).to_be_visible()  # still signed in
    assert violations == [], violations


def test_pages_carry_security_headers_and_refuse_framing(page, app):
    response = page.goto(app.url("/login"))
    headers = response.headers
    assert headers["x-frame-options"] == "DENY"
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp and "connect-src 'self'" in csp
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "strict-transport-security" not in headers  # only under https
    # a page elsewhere that frames the app gets nothing: Chromium refuses to render it
    page.set_content(f'<iframe id="victim" src="{app.url("/login")}" width="600" height="400"></iframe>')
    frame = page.frame_locator("#victim")
    expect(frame.locator("#login-submit")).to_have_count(0, timeout=5_000)


def test_logout_clears_the_cookie_and_the_session(new_context, app):
    context = new_context()
    page = context.new_page()
    logged_in(page, app, "ben@demo.example")
    token = next(c["value"] for c in context.cookies() if c["name"] == "mp_session")
    page.locator("#user-menu").click()
    page.locator("#logout").click()
    expect(page).to_have_url(app.at("/"))
    assert all(c["name"] != "mp_session" for c in context.cookies())
    # the old token no longer opens anything, even if it was copied before logout
    other = new_context()
    other.add_cookies([{"name": "mp_session", "value": token, "url": app.url("/")}])
    stale = other.new_page()
    stale.goto(app.url("/client"))
    expect(stale).to_have_url(re.compile(r"/login/?\?next=/client"))
