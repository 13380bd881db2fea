"""Accounts, roles and tenants in the browser, as users meet them."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import PASSWORD, logged_in, login, sign_up, signed_up, unique_email


def test_landing_page_is_branded_per_tenant(page, app):
    page.goto(app.url("/"))
    page.mouse.move(20, 20)  # the landing page boots the app on a first input (marketplace_app/first_paint.py)
    expect(page.locator("#landing-brand")).to_contain_text("HandyHub")
    page.goto(app.url("/", "acme"))
    page.mouse.move(40, 40)
    expect(page.locator("#landing-brand")).to_contain_text("Acme Home Services")


BOOTED = "() => window.__reactRouterRouteModules !== undefined"


def test_landing_page_reads_and_leads_on_before_the_app_loads(new_context, app):
    """The landing page is in its HTML (marketplace_app/first_paint.py): its head asks for none of the app's modules,
    the app boots on the visitor's first input (at once, after the paint, in the installed app), and without
    JavaScript the page still reads and its links lead on."""
    page = new_context().new_page()
    served = page.request.get(app.url("/")).text()
    assert 'rel="modulepreload"' not in served.split("</head>")[0]
    page.goto(app.url("/"))
    page.wait_for_timeout(1000)  # loaded and painted a while ago, and nothing touched: the app is not there
    assert not page.evaluate(BOOTED)
    expect(page.locator("#landing-brand")).to_contain_text("Trusted local professionals")
    page.keyboard.press("Tab")  # a first input: the app boots and takes the page over
    page.wait_for_function(BOOTED)
    expect(page.locator("#landing-brand")).to_contain_text("HandyHub")

    installed = new_context().new_page()
    installed.goto(app.url("/?source=pwa"))  # the manifest's start URL: opened to be used, no input needed
    expect(installed.locator("#landing-brand")).to_contain_text("HandyHub")

    no_script = new_context(java_script_enabled=False).new_page()
    no_script.goto(app.url("/"))
    expect(no_script.get_by_role("heading", level=1)).to_contain_text("trusted local pros")
    expect(no_script.get_by_role("banner").get_by_role("link", name="Log in")).to_be_visible()
    no_script.get_by_role("link", name="Join as a pro").click()
    expect(no_script).to_have_url(re.compile(r"/signup/?\?role=professional$"))


def test_new_client_signs_up_logs_out_and_back_in(page, app):
    email = unique_email("new")
    sign_up(page, app, "Nina New", email)
    expect(page).to_have_url(app.at("/client"))
    expect(page.locator("#client-home")).to_contain_text("Hi, Nina New")
    expect(page.locator("#verify-banner")).to_be_visible()
    page.locator("#user-menu").click()
    page.locator("#logout").click()
    expect(page).to_have_url(app.at("/"))
    page.goto(app.url("/client"))
    expect(page).to_have_url(re.compile(r"/login/?\?next=/client"))
    page.locator("#email").fill(email)
    page.locator("#password").fill(PASSWORD)
    page.locator("#login-submit").click()
    expect(page).to_have_url(app.at("/client"))
    expect(page.locator("#client-home")).to_contain_text("Hi, Nina New")


def test_wrong_password_shows_an_error(page, app):
    login(page, app, "alice@demo.example", "not-the-password")
    expect(page.locator("#form-error")).to_contain_text("Email or password is incorrect")
    expect(page).to_have_url(app.at("/login"))


def test_bad_sign_up_input_shows_field_errors(page, app):
    sign_up(page, app, "Shorty", unique_email("short"), password="short-pw")
    expect(page.locator("#password-error")).to_have_text("Password must be at least 10 characters")
    sign_up(page, app, "Dup", "alice@demo.example")
    expect(page.locator("#email-error")).to_contain_text("already exists")
    expect(page).to_have_url(re.compile(r"/signup"))


def test_client_is_refused_professional_and_admin_pages(page, app):
    logged_in(page, app, "alice@demo.example")
    for path in ("/pro", "/admin", "/admin/users", "/admin/outbox"):
        page.goto(app.url(path))
        expect(page.locator("#access-denied")).to_be_visible()
        expect(page.locator("#users-table")).to_have_count(0)


def test_admin_suspends_a_user_who_then_cannot_log_in(new_context, app):
    victim_page, email = signed_up(new_context, app, "Vic Tim", "victim")
    expect(victim_page).to_have_url(app.at("/client"))

    admin = new_context().new_page()
    logged_in(admin, app, "admin@demo.example", home="/admin")
    admin.goto(app.url("/admin/users"))
    admin.locator("#user-search").fill("victim")
    admin.locator(f"[id='suspend-{email}']").click()
    admin.locator("#confirm-suspend").click()
    expect(admin.locator(f"tr[data-email='{email}']")).to_contain_text("suspended")

    victim_page.reload()  # their open session was ended
    expect(victim_page).to_have_url(re.compile(r"/login"))
    login(victim_page, app, email)
    expect(victim_page.locator("#form-error")).to_contain_text("suspended")

    admin.locator(f"[id='reinstate-{email}']").click()
    expect(admin.locator(f"tr[data-email='{email}']")).to_contain_text("active")
    logged_in(victim_page, app, email)


def test_two_tenants_on_two_hosts_see_only_their_own_users(new_context, app):
    demo_admin = new_context().new_page()
    logged_in(demo_admin, app, "admin@demo.example", home="/admin")
    demo_admin.goto(app.url("/admin/users"))
    table = demo_admin.locator("#users-table")
    expect(table).to_contain_text("alice@demo.example")
    expect(table).not_to_contain_text("acme.example")

    acme_admin = new_context().new_page()
    logged_in(acme_admin, app, "admin@acme.example", tenant="acme", home="/admin")
    acme_admin.goto(app.url("/admin/users", "acme"))
    table = acme_admin.locator("#users-table")
    expect(table).to_contain_text("nora@acme.example")
    expect(table).not_to_contain_text("demo.example")

    # demo's session is worth nothing on acme's host, and demo's accounts don't exist there
    demo_admin.goto(app.url("/admin", "acme"))
    expect(demo_admin).to_have_url(re.compile(r"acme\.localhost.*/login"))
    login(demo_admin, app, "admin@demo.example", tenant="acme")
    expect(demo_admin.locator("#form-error")).to_contain_text("incorrect")


def test_unknown_host_shows_marketplace_not_found(page, app):
    page.goto(app.url("/", "nowhere"))
    expect(page.locator("#tenant-missing")).to_contain_text("Marketplace not found")
    page.goto(app.url("/login", "nowhere"))
    expect(page.locator("#tenant-missing")).to_be_visible()
    expect(page.locator("#login-form")).to_have_count(0)


def test_password_reset_through_the_dev_outbox(new_context, app):
    user, email = signed_up(new_context, app, "Fay Forgetful", "forgetful")
    expect(user.locator("#client-home")).to_be_visible()
    user.locator("#user-menu").click()
    user.locator("#logout").click()
    expect(user).to_have_url(app.at("/"))  # logout ends with a full page load; let it land first
    user.goto(app.url("/forgot"))
    user.locator("#email").fill(email)
    user.locator("#forgot-submit").click()
    expect(user.locator("#forgot-sent")).to_be_visible()

    admin = new_context().new_page()
    logged_in(admin, app, "admin@demo.example", home="/admin")
    admin.goto(app.url("/admin/outbox"))
    message = admin.locator(".outbox-message", has_text=email).filter(has_text="Reset your")
    expect(message).to_contain_text("sent")
    link = re.search(r"http://\S+/reset\?token=\S+", message.inner_text()).group(0)

    user.goto(link)
    user.locator("#password").fill("a-new-password-123")
    user.locator("#confirm").fill("a-new-password-123")
    user.locator("#reset-submit").click()
    expect(user.locator("#reset-done")).to_be_visible()
    user.goto(link)  # a used link is refused
    user.locator("#password").fill("another-password-1")
    user.locator("#confirm").fill("another-password-1")
    user.locator("#reset-submit").click()
    expect(user.locator("#form-error")).to_contain_text("already been used")
    login(user, app, email, "a-new-password-123")
    expect(user).to_have_url(app.at("/client"))


def test_session_survives_a_backend_restart(page, app):
    logged_in(page, app, "chloe@demo.example")
    app.stop()
    app.start()
    page.goto(app.url("/client"))
    expect(page.locator("#client-home")).to_contain_text("Hi, Chloe Nguyen")


def test_email_verification_link_from_the_outbox(new_context, app):
    user, email = signed_up(new_context, app, "Vera Verify", "verify")
    expect(user.locator("#verify-banner")).to_be_visible()

    admin = new_context().new_page()
    logged_in(admin, app, "admin@demo.example", home="/admin")
    admin.goto(app.url("/admin/outbox"))
    message = admin.locator(".outbox-message", has_text=email).filter(has_text="Confirm your email")
    link = re.search(r"http://\S+/verify\?token=\S+", message.inner_text()).group(0)

    user.goto(link)
    expect(user.locator("#verify-done")).to_contain_text(f"{email} is confirmed")
    user.goto(app.url("/client"))
    expect(user.locator("#client-home")).to_be_visible()
    expect(user.locator("#verify-banner")).to_have_count(0)
    user.goto(link)
    expect(user.locator("#verify-failed")).to_contain_text("already been used")
