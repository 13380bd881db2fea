"""The installable app's routes on the REST app: manifest, icons, service worker, offline page, per host."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import select

import backend.bootstrap as bootstrap
from backend.identity import TenantStatus
from backend.tenancy.models import Tenant
from marketplace_app.api import api

ACME = {"Host": "acme.localhost:3000"}


def _rebrand(svc, slug: str, **fields) -> None:
    with svc.db.platform_session() as session:
        tenant = session.exec(select(Tenant).where(Tenant.slug == slug)).one()
        for name, value in fields.items():
            setattr(tenant, name, value)
    svc.tenants.forget(slug)


@pytest.fixture
def client(svc, tenants, monkeypatch):
    monkeypatch.setattr(bootstrap, "_services", svc)
    _rebrand(svc, "demo", name="HandyHub", primary_color="#4F46E5")
    _rebrand(svc, "acme", name="Acme Home Services", primary_color="#0F766E")
    return TestClient(api, base_url="http://localhost:3000")


def _image(response) -> Image.Image:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(response.content))


def test_manifest_per_host_with_the_right_content_type(client):
    demo = client.get("/manifest.webmanifest")
    assert demo.status_code == 200
    assert demo.headers["content-type"] == "application/manifest+json"
    acme = client.get("/manifest.webmanifest", headers=ACME)
    d, a = demo.json(), acme.json()
    assert (d["name"], d["theme_color"], d["background_color"]) == ("HandyHub", "#4F46E5", "#4F46E5")
    assert (a["name"], a["short_name"], a["theme_color"]) == ("Acme Home Services", "Acme", "#0F766E")
    assert a["start_url"] == "/?source=pwa" and a["scope"] == "/" and a["display"] == "standalone"
    assert client.get("/manifest.webmanifest", headers={"Host": "nowhere.localhost"}).status_code == 404


def test_manifest_revalidates_with_its_etag(client, svc):
    first = client.get("/manifest.webmanifest")
    assert first.headers["cache-control"] == "no-cache"
    again = client.get("/manifest.webmanifest", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and not again.content
    _rebrand(svc, "demo", primary_color="#E11D48")
    changed = client.get("/manifest.webmanifest", headers={"If-None-Match": first.headers["etag"]})
    assert changed.status_code == 200 and changed.json()["theme_color"] == "#E11D48"


def test_every_icon_in_the_manifest_is_served_at_its_size(client):
    for host in ({}, ACME):
        for icon in client.get("/manifest.webmanifest", headers=host).json()["icons"]:
            response = client.get(icon["src"], headers=host)
            width, height = (int(n) for n in icon["sizes"].split("x"))
            assert _image(response).size == (width, height)
            assert "immutable" in response.headers["cache-control"]  # versioned URL
    apple = client.get("/pwa/apple-touch-icon.png")
    assert _image(apple).size == (180, 180)
    assert "immutable" not in apple.headers["cache-control"]  # a fixed URL, linked from the static head
    assert client.get("/pwa/icon-64.png").status_code == 404


def test_icons_wear_each_tenants_colour(client):
    demo = _image(client.get("/pwa/maskable-192.png")).convert("RGB")
    acme = _image(client.get("/pwa/maskable-192.png", headers=ACME)).convert("RGB")
    assert demo.getpixel((2, 2)) == (0x4F, 0x46, 0xE5)
    assert acme.getpixel((2, 2)) == (0x0F, 0x76, 0x6E)


def _logo_png(colour) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(out, "PNG")
    return out.getvalue()


def test_logo_from_the_tenants_own_storage_only(client, svc, tenants):
    demo, acme = tenants
    svc.store.put(f"t{demo.id}/avatars/logo.png", _logo_png((200, 0, 0)), "image/png")
    _rebrand(svc, "demo", logo_url=f"/api/v1/objects/t{demo.id}/avatars/logo.png")
    icon = _image(client.get("/pwa/icon-512.png")).convert("RGB")
    assert icon.getpixel((256, 256)) == (200, 0, 0)  # the logo, centred
    assert icon.getpixel((60, 256)) == (255, 255, 255)  # on white
    # acme pointing at demo's object gets its initial on its colour, not demo's logo
    _rebrand(svc, "acme", logo_url=f"/api/v1/objects/t{demo.id}/avatars/logo.png")
    other = _image(client.get("/pwa/maskable-512.png", headers=ACME)).convert("RGB")
    assert (200, 0, 0) not in {c for _, c in other.getcolors(maxcolors=1 << 16)}
    assert other.getpixel((2, 2)) == (0x0F, 0x76, 0x6E)


def test_service_worker_headers(client):
    sw = client.get("/sw.js")
    assert sw.status_code == 200
    assert sw.headers["content-type"].startswith("text/javascript")
    assert "no-cache" in sw.headers["cache-control"]
    assert sw.headers["service-worker-allowed"] == "/"
    assert 'addEventListener("fetch"' in sw.text and "__VERSION__" not in sw.text
    # a marketplace's worker carries its own branding in its version (its offline page is precached)
    assert client.get("/sw.js", headers=ACME).text != sw.text


def test_offline_page_and_registration_script_are_branded(client):
    page = client.get("/offline.html", headers=ACME)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "You're offline; we'll reconnect" in page.text and "Acme Home Services" in page.text
    assert "#0F766E" in page.text and '<html lang="en">' in page.text
    script = client.get("/pwa.js", headers=ACME)
    assert script.headers["content-type"].startswith("text/javascript")
    assert '"name": "Acme Home Services"' in script.text and 'register("/sw.js"' in script.text
    assert '"open": true' in script.text  # an open marketplace: its landing page boots the app on a first input


def test_registration_script_says_when_there_is_no_open_marketplace(client, svc):
    """Then the landing page boots the app at once to say "not found" or "paused" (marketplace_app/first_paint.py)."""
    assert '"open": false' in client.get("/pwa.js", headers={"Host": "nowhere.localhost:3000"}).text
    _rebrand(svc, "acme", status=TenantStatus.SUSPENDED)
    assert '"open": false' in client.get("/pwa.js", headers=ACME).text
    _rebrand(svc, "acme", status=TenantStatus.ACTIVE)
    assert '"open": true' in client.get("/pwa.js", headers=ACME).text
    assert client.get("/pwa.js", headers=ACME).headers["cache-control"] == "no-cache"  # asked again before each use
