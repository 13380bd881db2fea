"""The REST API (mobile clients): tenant from Host, bearer sessions, tenant-scoped objects."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

import backend.bootstrap as bootstrap
from marketplace_app.api import api


@pytest.fixture
def client(svc, tenants, monkeypatch):
    monkeypatch.setattr(bootstrap, "_services", svc)
    demo, acme = tenants
    svc.accounts.sign_up(demo, {"email": "ann@example.com", "password": "pw-1234567890", "full_name": "Ann"})
    return TestClient(api, base_url="http://localhost:3000")


def test_health(client):
    assert client.get("/api/v1/health").json() == {"status": "ok"}


def test_login_me_logout(client):
    r = client.post("/api/v1/auth/login", json={"email": "ann@example.com", "password": "pw-1234567890"})
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=auth).json()["email"] == "ann@example.com"
    # the same token on another tenant's host is worthless
    assert client.get("/api/v1/me", headers=auth | {"Host": "acme.localhost:3000"}).status_code == 401
    assert client.post("/api/v1/auth/logout", headers=auth).status_code == 204
    assert client.get("/api/v1/me", headers=auth).status_code == 401


def test_bad_login_and_unknown_host(client):
    r = client.post("/api/v1/auth/login", json={"email": "ann@example.com", "password": "nope-nope-nope"})
    assert r.status_code == 401 and "incorrect" in r.json()["detail"]
    r = client.post("/api/v1/auth/login", headers={"Host": "nowhere.localhost"},
                    json={"email": "ann@example.com", "password": "pw-1234567890"})
    assert r.status_code == 404
    assert client.get("/api/v1/me").status_code == 401


def test_objects_are_served_only_on_their_tenants_host(client, svc, tenants):
    demo, acme = tenants
    svc.store.put(f"t{demo.id}/avatars/a.jpg", b"jpegbytes", "image/jpeg")
    assert client.get(f"/api/v1/objects/t{demo.id}/avatars/a.jpg").content == b"jpegbytes"
    other = client.get(f"/api/v1/objects/t{demo.id}/avatars/a.jpg", headers={"Host": "acme.localhost:3000"})
    assert other.status_code == 404
    assert client.get(f"/api/v1/objects/t{demo.id}/../../etc/passwd").status_code == 404


# ---------------------------------------------------------------- client address (trusted proxy hops)


def _last_session_ip(svc, tenant) -> str:
    from sqlmodel import select

    from backend.accounts.models import AuthSession

    with svc.db.tenant_session(tenant.id) as s:
        return s.exec(select(AuthSession.ip).order_by(AuthSession.id.desc())).first()


ANN = {"email": "ann@example.com", "password": "pw-1234567890"}


def test_login_ignores_a_forwarded_for_header_without_trusted_proxies(client, svc, tenants):
    demo, _ = tenants
    svc.settings.trusted_proxy_hops = 0
    browser = TestClient(api, base_url="http://localhost:3000", client=("203.0.113.9", 50000))
    r = browser.post("/api/v1/auth/login", json=ANN, headers={"X-Forwarded-For": "6.6.6.6"})
    assert r.status_code == 200, r.text
    assert _last_session_ip(svc, demo) == "203.0.113.9"


def test_login_behind_one_trusted_proxy_uses_the_rightmost_forwarded_address(client, svc, tenants):
    demo, _ = tenants
    svc.settings.trusted_proxy_hops = 1
    svc.settings.login_max_failures_per_address = 3
    nginx = TestClient(api, base_url="http://localhost:3000", client=("10.0.0.2", 50000))
    # an attacker at 198.51.100.7 who writes a new leftmost entry on every try is still one address
    for i in range(3):
        r = nginx.post("/api/v1/auth/login", json={"email": f"user{i}@example.com", "password": "wrong-password"},
                       headers={"X-Forwarded-For": f"6.6.6.{i}, 198.51.100.7"})
        assert r.status_code == 401, r.text
    r = nginx.post("/api/v1/auth/login", json={"email": "user9@example.com", "password": "wrong-password"},
                   headers={"X-Forwarded-For": "6.6.6.99, 198.51.100.7"})
    assert r.status_code == 429 and "your network address" in r.json()["detail"]
    # while another browser behind the same proxy is not locked out, and is recorded by its own address
    r = nginx.post("/api/v1/auth/login", json=ANN, headers={"X-Forwarded-For": "192.0.2.44"})
    assert r.status_code == 200, r.text
    assert _last_session_ip(svc, demo) == "192.0.2.44"
