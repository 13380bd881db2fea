"""Profiles (incl. avatar checks by content), the professional's editor, the public directory with the admin's
verified badge, and the operator's tenant console."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from backend.accounts.models import User, UserStatus
from backend.errors import NotFound, PermissionDenied, ValidationFailed
from backend.identity import Role, TenantStatus

PW = "pw-1234567890"


def png_bytes(size=(300, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "teal").save(out, "PNG")
    return out.getvalue()


def test_profile_update_and_validation(svc, tenants):
    demo, _ = tenants
    actor, _ = svc.accounts.sign_up(demo, {"email": "p@example.com", "password": PW, "full_name": "Pat"})
    view = svc.profiles.update_own(actor, {"full_name": "Pat Smith", "city": "Austin"})
    assert (view.full_name, view.city) == ("Pat Smith", "Austin, TX, United States")  # the gazetteer's label
    with pytest.raises(ValidationFailed) as exc:
        svc.profiles.update_own(actor, {"full_name": "", "city": "x" * 81})
    assert set(exc.value.errors) == {"full_name", "city"}
    assert svc.profiles.get_own(actor).full_name == "Pat Smith"  # nothing written


def test_avatar_checked_by_content(svc, tenants):
    demo, _ = tenants
    actor, _ = svc.accounts.sign_up(demo, {"email": "p@example.com", "password": PW, "full_name": "Pat"})
    with pytest.raises(ValidationFailed) as exc:
        svc.profiles.set_avatar(actor, b"<?php echo 'not an image'; ?>")
    assert "not an image" in exc.value.errors["avatar"]
    assert svc.profiles.get_own(actor).avatar_url == ""
    view = svc.profiles.set_avatar(actor, png_bytes())
    data, ctype = svc.store.get(view.avatar_url.removeprefix("/api/v1/objects/"))
    assert ctype == "image/jpeg" and Image.open(io.BytesIO(data)).size == (256, 256)
    svc.settings.max_avatar_bytes = 100
    with pytest.raises(ValidationFailed):
        svc.profiles.set_avatar(actor, png_bytes())


def test_pro_profile_editor_validates(svc, tenants):
    demo, _ = tenants
    svc.catalog.seed_defaults(demo.id)
    pro, _ = svc.accounts.sign_up(demo, {"email": "pro@example.com", "password": PW, "full_name": "Pia",
                                         "role": "professional"})
    with pytest.raises(ValidationFailed) as exc:
        svc.pros.update_own(demo, pro, {"headline": " ", "city": "", "radius_km": "far", "skills": "x" * 41,
                                        "availability": {"mon": ["17:00", "09:00"]}, "hourly_rate": "1"})
    assert exc.value.errors == {
        "headline": "Enter your headline", "city": "Enter your city",
        "radius_km": "Enter the radius in whole kilometres", "skills": "Each skill must be at most 40 characters",
        "availability": "On mon, the start time must be before the end time"}
    client, _ = svc.accounts.sign_up(demo, {"email": "c@example.com", "password": PW, "full_name": "Cy"})
    with pytest.raises(PermissionDenied):
        svc.pros.get_own(demo, client)


def _set_user(svc, tenant, user_id, **values):
    with svc.db.tenant_session(tenant.id) as session:
        user = session.get(User, user_id)
        for name, value in values.items():
            setattr(user, name, value)


def test_public_pages_of_active_professionals_and_the_admins_badge(svc, tenants):
    demo, acme = tenants
    svc.catalog.seed_defaults(demo.id)
    ids = {c.slug: c.id for c in svc.catalog.categories(demo.id)}

    def sign_up(email, name, role="professional"):
        return svc.accounts.sign_up(demo, {"email": email, "password": PW, "full_name": name, "role": role})[0]

    def pro(email, name, slug):
        actor = sign_up(email, name)
        svc.pros.update_own(demo, actor, {"headline": f"{name} at work", "city": "Austin", "hourly_rate": "80",
                                          "category_ids": [ids[slug]]})
        return actor

    ann, bob, cat = pro("ann@example.com", "Ann", "plumbing"), pro("bob@example.com", "Bob", "cleaning"), \
        pro("cat@example.com", "Cat", "plumbing")
    quiet = sign_up("quiet@example.com", "Quiet")  # no headline yet: not listed, but has a public page
    client = sign_up("client@example.com", "Cy", role="client")
    admin = sign_up("boss@example.com", "Boss", role="client")
    _set_user(svc, demo, admin.id, role=Role.ADMIN)
    admin = svc.accounts.login(demo, "boss@example.com", PW)[0]
    _set_user(svc, demo, cat.id, status=UserStatus.SUSPENDED)

    view = svc.matching.public(demo, ann.id)
    assert (view.full_name, view.headline, view.hourly_rate_input, view.verified) == ("Ann", "Ann at work", "80.00",
                                                                                     False)
    assert svc.matching.public(demo, quiet.id).headline == ""
    for hidden in (cat.id, client.id, admin.id, 9999):
        with pytest.raises(NotFound, match="not on the marketplace"):
            svc.matching.public(demo, hidden)
    with pytest.raises(NotFound):  # another tenant's directory does not know demo's pros
        svc.matching.public(acme, ann.id)

    svc.accounts.set_pro_verified(demo, admin, bob.id, True)
    assert svc.matching.public(demo, bob.id).verified
    assert next(u for u in svc.accounts.list_users(demo, admin) if u.id == bob.id).verified
    fresh = sign_up("fresh@example.com", "Fresh")
    svc.accounts.set_pro_verified(demo, admin, fresh.id, True)  # a pro without a profile row yet gets one
    assert svc.pros.get_own(demo, fresh).verified
    svc.accounts.set_pro_verified(demo, admin, bob.id, False)
    assert not svc.matching.public(demo, bob.id).verified
    for caller in (None, client, ann):
        with pytest.raises(PermissionDenied, match="Only the marketplace admin can verify professionals."):
            svc.accounts.set_pro_verified(demo, caller, bob.id, True)
    with pytest.raises(PermissionDenied, match="Only the marketplace admin can verify professionals."):
        svc.accounts.set_pro_verified(acme, admin, bob.id, True)  # demo's admin on acme
    for not_a_pro in (client.id, 9999):
        with pytest.raises(NotFound, match="No such professional."):
            svc.accounts.set_pro_verified(demo, admin, not_a_pro, True)


def test_operator_creates_brands_and_suspends_a_tenant(svc, tenants):
    svc.accounts.create_operator("op@example.com", PW)
    op, _ = svc.accounts.operator_login("op@example.com", PW)
    created = svc.platform.create_tenant(op, {
        "slug": "globex", "name": "Globex", "primary_color": "#112233", "accent_color": "#445566",
        "currency": "EUR", "platform_fee_percent": 12.5, "admin_email": "admin@globex.com", "admin_password": PW})
    assert created.platform_fee_bps == 1250 and created.currency == "EUR"
    admin, _ = svc.accounts.login(created, "admin@globex.com", PW)
    assert admin.role == "admin"
    with pytest.raises(ValidationFailed) as exc:
        svc.platform.create_tenant(op, {"slug": "globex", "name": "Again", "admin_email": "a@b.com",
                                        "admin_password": PW})
    assert "taken" in exc.value.errors["slug"]
    with pytest.raises(ValidationFailed) as exc:
        svc.platform.create_tenant(op, {"slug": "newone", "name": "N", "admin_email": "bad",
                                        "admin_password": "short"})
    assert set(exc.value.errors) == {"name", "admin_email", "admin_password"}
    assert svc.tenants.by_slug("newone") is None
    svc.platform.update_branding(op, created.id, {"name": "Globex Corp", "primary_color": "#000000",
                                                  "accent_color": "#FFFFFF", "currency": "USD",
                                                  "platform_fee_percent": 5})
    assert svc.tenants.by_slug("globex").name == "Globex Corp"
    assert svc.tenants.by_slug("globex").review_window_days == 14  # the default
    svc.platform.update_branding(op, created.id, {"name": "Globex Corp", "currency": "USD", "platform_fee_percent": 5,
                                                  "request_expiry_days": "45", "review_window_days": "7"})
    globex = svc.tenants.by_slug("globex")
    assert (globex.request_expiry_days, globex.review_window_days) == (45, 7)
    row = next(r for r in svc.platform.list_tenants(op) if r.slug == "globex")
    assert (row.request_expiry_days, row.review_window_days) == (45, 7)
    with pytest.raises(ValidationFailed) as exc:
        svc.platform.update_branding(op, created.id, {"name": "Globex Corp", "review_window_days": "0"})
    assert set(exc.value.errors) == {"review_window_days"}
    assert svc.tenants.by_slug("globex").review_window_days == 7  # refused: nothing changed
    svc.platform.set_status(op, created.id, TenantStatus.SUSPENDED)
    assert svc.tenants.by_slug("globex").status == "suspended"
    with pytest.raises(PermissionDenied):
        svc.platform.set_status(admin, created.id, TenantStatus.ACTIVE)
