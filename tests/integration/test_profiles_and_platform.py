"""Profiles (incl. avatar checks by content) and the operator's tenant console."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from backend.errors import PermissionDenied, ValidationFailed
from backend.identity import TenantStatus

PW = "pw-1234567890"


def png_bytes(size=(300, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "teal").save(out, "PNG")
    return out.getvalue()


def test_profile_update_and_validation(svc, tenants):
    demo, _ = tenants
    actor, _ = svc.accounts.sign_up(demo, {"email": "p@example.com", "password": PW, "full_name": "Pat"})
    view = svc.profiles.update_own(actor, {"full_name": "Pat Smith", "phone": "+1 555 123 4567", "city": "Austin"})
    assert (view.full_name, view.city) == ("Pat Smith", "Austin")
    with pytest.raises(ValidationFailed) as exc:
        svc.profiles.update_own(actor, {"full_name": "", "phone": "call me", "city": "x" * 81})
    assert set(exc.value.errors) == {"full_name", "phone", "city"}
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
    svc.platform.set_status(op, created.id, TenantStatus.SUSPENDED)
    assert svc.tenants.by_slug("globex").status == "suspended"
    with pytest.raises(PermissionDenied):
        svc.platform.set_status(admin, created.id, TenantStatus.ACTIVE)
