"""The browser session over HTTP: an HttpOnly cookie set from a one-minute login ticket, same-origin only, and the
security headers on every response (pages, API, errors) through the ASGI stack the app runs."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

import backend.accounts.tickets as tickets
import backend.bootstrap as bootstrap
from backend.accounts.tickets import issue_ticket, redeem_ticket
from marketplace_app.api import api
from marketplace_app.security_headers import SecurityHeaders

PW = "pw-1234567890"
ORIGIN = {"Origin": "http://localhost:3000"}


@pytest.fixture
def web(svc, tenants, monkeypatch):
    monkeypatch.setattr(bootstrap, "_services", svc)
    demo, acme = tenants
    svc.accounts.sign_up(demo, {"email": "ann@example.com", "password": PW, "full_name": "Ann"})
    _, token = svc.accounts.login(demo, "ann@example.com", PW)
    return dict(svc=svc, demo=demo, acme=acme, token=token,
                http=TestClient(SecurityHeaders(api, https=False), base_url="http://localhost:3000"))


def _start(web, ticket, headers=ORIGIN):
    return web["http"].post("/api/v1/session", json={"ticket": ticket}, headers=headers)


def test_a_login_ticket_becomes_an_httponly_cookie(web):
    r = _start(web, issue_ticket(web["svc"].settings, "user", web["token"], web["demo"].id))
    assert r.status_code == 204, r.text
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"mp_session={web['token']};")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http (development): a Secure cookie would never come back
    assert f"Max-Age={14 * 24 * 3600}" in cookie
    # the cookie is what the REST API (downloads) and the WebSocket handshake present from now on
    assert web["http"].get("/api/v1/me").json()["email"] == "ann@example.com"


def test_the_cookie_is_secure_under_https(web, monkeypatch):
    monkeypatch.setattr(web["svc"].settings, "public_url", "https://market.example")
    r = _start(web, issue_ticket(web["svc"].settings, "user", web["token"], web["demo"].id))
    assert r.status_code == 204 and "Secure" in r.headers["set-cookie"]


def test_tickets_are_refused_cross_origin_tampered_late_or_on_another_tenant(web, monkeypatch):
    settings = web["svc"].settings
    good = issue_ticket(settings, "user", web["token"], web["demo"].id)
    assert _start(web, good, {"Origin": "https://evil.example"}).status_code == 403  # login CSRF
    assert _start(web, good, {}).status_code == 403  # no Origin: not a same-origin fetch
    assert _start(web, good[:-2] + "xx").status_code == 400
    assert _start(web, issue_ticket(settings, "user", "not-a-session", web["demo"].id)).status_code == 400
    acme = {"Host": "acme.localhost:3000", "Origin": "http://acme.localhost:3000"}
    assert _start(web, good, acme).status_code == 400  # demo's session does not open on acme's host
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + tickets.TICKET_SECONDS + 5)
    assert redeem_ticket(settings, good) is None  # a minute later it is worthless
    monkeypatch.setattr(time, "time", real_time)
    assert "set-cookie" not in _start(web, good, {"Origin": "https://evil.example"}).headers


def test_a_ticket_opens_one_browser_only(web):
    """A copy of the ticket (a script that saw it at login, a replay) is worthless once the page redeemed it."""
    ticket = issue_ticket(web["svc"].settings, "user", web["token"], web["demo"].id)
    assert _start(web, ticket).status_code == 204
    again = _start(web, ticket)
    assert again.status_code == 400 and "set-cookie" not in again.headers


def test_the_cookie_is_refused_to_other_origins(web):
    """Reflex's CORS layer echoes any Origin with credentials; a sibling subdomain (another tenant) is same-site, so
    SameSite=Lax still sends the cookie: the API itself refuses it unless the request comes from this origin."""
    _start(web, issue_ticket(web["svc"].settings, "user", web["token"], web["demo"].id))
    http = web["http"]
    assert http.get("/api/v1/me", headers={"Origin": "http://localhost:3000"}).status_code == 200
    assert http.get("/api/v1/me", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
    for foreign in ({"Origin": "http://acme.localhost:3000"}, {"Sec-Fetch-Site": "same-site"},
                    {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}):
        r = http.get("/api/v1/me", headers=foreign)
        assert r.status_code == 403 and "ann@example.com" not in r.text, foreign
    # a bearer token is not ambient authority: it may come from anywhere
    assert http.get("/api/v1/me", headers={"Origin": "https://app.example", "Authorization": f"Bearer {web['token']}"},
                    cookies={}).status_code == 200


def test_logout_revokes_and_clears_the_cookie(web):
    _start(web, issue_ticket(web["svc"].settings, "user", web["token"], web["demo"].id))
    assert web["http"].delete("/api/v1/session", headers={"Origin": "https://evil.example"}).status_code == 403
    assert web["svc"].accounts.resolve_session(web["demo"], web["token"]) is not None
    r = web["http"].delete("/api/v1/session", headers=ORIGIN)
    assert r.status_code == 204 and 'mp_session=""' in r.headers["set-cookie"]
    assert web["svc"].accounts.resolve_session(web["demo"], web["token"]) is None


def test_operator_tickets_set_a_strict_operator_cookie(web):
    svc = web["svc"]
    svc.accounts.create_operator("op@example.com", PW)
    _, token = svc.accounts.operator_login("op@example.com", PW)
    r = _start(web, issue_ticket(svc.settings, "operator", token))
    assert r.status_code == 204
    assert r.headers["set-cookie"].startswith(f"mp_operator={token};") and "SameSite=strict" in r.headers["set-cookie"]
    assert "HttpOnly" in r.headers["set-cookie"]
    r = web["http"].delete("/api/v1/session?kind=operator", headers=ORIGIN)
    assert r.status_code == 204 and svc.accounts.resolve_operator_session(token) is None


def test_security_headers_on_every_response(web):
    for path in ("/api/v1/health", "/api/v1/nothing-here", "/api/docs"):
        h = web["http"].get(path).headers
        assert h["x-frame-options"] == "DENY", path
        assert "frame-ancestors 'none'" in h["content-security-policy"], path
        assert "object-src 'none'" in h["content-security-policy"] and "base-uri 'self'" in h[
            "content-security-policy"]
        assert h["referrer-policy"] == "strict-origin-when-cross-origin"
        assert h["x-content-type-options"] == "nosniff"
        assert "strict-transport-security" not in h  # plain http
    https = TestClient(SecurityHeaders(api, https=True), base_url="https://localhost")
    assert https.get("/api/v1/health").headers["strict-transport-security"].startswith("max-age=31536000")


def test_a_route_that_sets_its_own_header_keeps_it():
    async def page(request):
        return PlainTextResponse("x", headers={"Referrer-Policy": "no-referrer"})

    app = SecurityHeaders(Starlette(routes=[Route("/", page)]), https=False)
    r = TestClient(app).get("/")
    assert r.headers["referrer-policy"] == "no-referrer" and r.headers["x-frame-options"] == "DENY"


def test_websockets_from_another_origin_are_refused():
    async def echo(ws):
        await ws.accept()
        await ws.send_text("hello")
        await ws.close()

    client = TestClient(SecurityHeaders(Starlette(routes=[WebSocketRoute("/_event", echo)]), https=False))
    same = {"Host": "localhost:3000", "Origin": "http://localhost:3000"}
    with client.websocket_connect("/_event", headers=same) as ws:
        assert ws.receive_text() == "hello"
    with pytest.raises((WebSocketDisconnect, WebSocketDenialResponse)):
        with client.websocket_connect("/_event", headers=same | {"Origin": "https://evil.example"}) as ws:
            ws.receive_text()
