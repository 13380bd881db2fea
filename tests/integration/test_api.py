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
