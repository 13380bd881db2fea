"""Profile editing with an avatar upload, and the platform operator's console."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests import samples
from tests.e2e.conftest import NOT_AN_IMAGE, PASSWORD, fill_and_submit, logged_in, sign_up, unique_email, upload


def test_profile_edit_and_avatar_upload(page, app, tmp_path):
    sign_up(page, app, "Paula Profile", unique_email("paula"))
    expect(page).to_have_url(app.at("/client"))
    page.goto(app.url("/account"))
    fill_and_submit(page, "profile-save", full_name="")  # refused: the form stays as typed (no save, no re-render)
    expect(page.locator("#full_name-error")).to_be_visible()
    # the city is chosen from the gazetteer's suggestions as it is typed (a native datalist: a combobox)
    city = page.get_by_role("combobox", name="City")
    city.press_sequentially("portl", delay=40)
    expect(page.locator("#city-places option[value='Portland, OR, United States']")).to_have_count(1)
    fill_and_submit(page, "profile-save", full_name="Paula Profile", city="Narnia")
    expect(page.locator("#city-error")).to_contain_text("We don't know this place")
    expect(city).to_have_attribute("aria-describedby", "city-error")
    fill_and_submit(page, "profile-save", city="Portland, OR, United States")
    expect(page.get_by_text("Profile saved.")).to_be_visible()

    fake = tmp_path / "photo.png"  # named like an image, but it is not one
    fake.write_bytes(b"#!/bin/sh\necho pwned\n")
    upload(page, "avatar", fake)
    expect(page.get_by_text(NOT_AN_IMAGE).first).to_be_visible()

    real = tmp_path / "me.png"
    real.write_bytes(samples.png((400, 300), "orange"))
    upload(page, "avatar", real)
    expect(page.get_by_text("Photo updated.")).to_be_visible()
    avatar = page.locator("img[src*='/api/v1/objects/']").first
    expect(avatar).to_have_attribute("src", re.compile(r"/api/v1/objects/t\d+/avatars/u\d+-\w+\.jpg"))
    page.wait_for_function("img => img.complete && img.naturalWidth === 256", arg=avatar.element_handle())

    page.reload()
    expect(page.locator("#city")).to_have_value("Portland, OR, United States")


def test_operator_creates_and_suspends_a_marketplace(new_context, app):
    op = new_context().new_page()
    op.goto(app.url("/operator"))
    expect(op).to_have_url(app.at("/operator/login"))
    op.locator("#email").fill("operator@platform.example")
    op.locator("#password").fill(PASSWORD)
    op.locator("#operator-login-submit").click()
    expect(op).to_have_url(app.at("/operator"))
    expect(op.locator(".tenant-card[data-slug='acme']")).to_be_visible()

    op.locator("#new-tenant").click()
    op.locator("#slug").fill("Bad Slug")
    op.locator("#name").fill("Globex Services")
    op.locator("#admin_email").fill("admin@globex.example")
    op.locator("#admin_password").fill(PASSWORD)
    op.locator("#create-tenant").click()
    expect(op.locator("#slug-error")).to_contain_text("lowercase")
    op.locator("#slug").fill("globex")
    op.locator("#create-tenant").click()
    card = op.locator(".tenant-card[data-slug='globex']")
    expect(card).to_contain_text("Globex Services")

    visitor = new_context().new_page()
    visitor.goto(app.url("/", "globex"))
    visitor.mouse.move(20, 20)  # a first input: the landing page boots the app (marketplace_app/first_paint.py)
    expect(visitor.locator("#landing-brand")).to_contain_text("Globex Services")
    logged_in(visitor, app, "admin@globex.example", tenant="globex", home="/admin")
    visitor.goto(app.url("/admin/users", "globex"))
    expect(visitor.locator("#users-table")).to_contain_text("admin@globex.example")

    op.locator("#suspend-globex").click()
    expect(card).to_contain_text("suspended")
    visitor.goto(app.url("/", "globex"))
    expect(visitor.locator("#tenant-suspended")).to_be_visible()

    # a tenant admin is not an operator: the console sends them to its own login
    admin = new_context().new_page()
    logged_in(admin, app, "admin@demo.example", home="/admin")  # login ends with a page load: let it land first
    admin.goto(app.url("/operator"))
    expect(admin).to_have_url(app.at("/operator/login"))
