"""Every stored-object kind walked as an attacker would: anonymously, as the wrong user, from another tenant, with
expired and tampered signed URLs, on the embedded store and on S3 (moto). Nothing private is readable; the people
entitled to an object get it through a short-lived signed URL or an authorized route, never cached.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

import backend.bootstrap as bootstrap
from backend.identity import Role
from backend.accounts.models import User
from backend.errors import DomainError, NotFound, PermissionDenied
from backend.orders.models import Order, ServiceRequest
from backend.storage.ports import is_public
from marketplace_app.api import api
from tests.conftest import make_services
from tests.integration.conftest import FAKE_SECRET
from tests.integration.test_orders import PW, REQUEST, category_id, make_pro, pay, user
from tests.integration.test_s3_store import _sigv4_query_valid
from tests.samples import jpeg, png

PRIVATE = "private, no-store"


@pytest.fixture(params=["local", "s3"])
def world(request, tmp_path, monkeypatch):
    """A completed order with a request photo, a chat attachment and an invoice, plus the outsiders."""
    from backend.tenancy.models import Tenant

    overrides = {}
    if request.param == "s3":
        overrides = {"s3_bucket": "mp-private-walk", "s3_endpoint_url": request.getfixturevalue("moto_endpoint")}
    svc = make_services(None, tmp_path, **overrides)
    monkeypatch.setattr(bootstrap, "_services", svc)
    with svc.db.platform_session() as session:
        for slug, name in (("demo", "Demo"), ("acme", "Acme")):
            session.add(Tenant(slug=slug, name=name, payment_provider="demo"))
    t, acme = svc.tenants.by_slug("demo"), svc.tenants.by_slug("acme")
    svc.catalog.seed_defaults(t.id)
    client, other_client = user(svc, t, "client@example.com"), user(svc, t, "other@example.com")
    pro = make_pro(svc, t, "pro@example.com")
    electrician = make_pro(svc, t, "sparky@example.com", slugs=("electrical",))
    admin = user(svc, t, "boss@example.com")
    with svc.db.tenant_session(t.id) as session:
        session.get(User, admin.id).role = Role.ADMIN
    stranger = user(svc, acme, "client@example.com")  # same email, other marketplace

    request_id = svc.quotes.create_request(
        t, client, REQUEST | {"category_id": category_id(svc, t, "plumbing")}, photos=[jpeg()])
    lead_photo_url = svc.quotes.lead(t, pro, request_id).photo_urls[0]  # the matched pro sees the photo
    quote_id = svc.quotes.send_quote(t, pro, request_id, {
        "price": "120", "message": "I can fix that tomorrow morning.", "duration_hours": "2",
        "valid_until": (datetime.now().date() + timedelta(days=5)).isoformat()})
    conversation_id = svc.chat.ensure_job_conversation(t, client.id, pro.id, request_id)
    message = svc.chat.send(t, client, conversation_id, "Photo of the tap", [("tap.png", png())])
    order_id = svc.quotes.accept_quote(t, client, quote_id)
    pay(svc, t, client, order_id)
    for action in ("start", "deliver"):
        svc.orders.apply(t, pro, order_id, action)
    svc.orders.apply(t, client, order_id, "complete")
    with svc.db.tenant_session(t.id) as session:
        photo_key = session.get(ServiceRequest, request_id).photo_keys[0]
        invoice_key = session.exec(select(Order.invoice_key).where(Order.id == order_id)).one()
    keys = {"request photo": photo_key, "chat attachment": message.attachments[0].key, "invoice": invoice_key}

    def token(tenant, email):
        return svc.accounts.login(tenant, email, PW)[1]

    http = TestClient(api, base_url="http://localhost:3000")
    yield dict(kind=request.param, svc=svc, t=t, acme=acme, http=http, keys=keys, order_id=order_id,
               request_id=request_id, conversation_id=conversation_id, lead_photo_url=lead_photo_url, client=client, pro=pro,
               other_client=other_client, electrician=electrician, admin=admin, stranger=stranger, token=token)
    svc.close()


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _fetch(w, url: str, headers: dict | None = None) -> tuple[int, bytes, str]:
    """GET a URL handed to a browser: app-relative URLs go to the app, absolute ones (S3) over HTTP."""
    if url.startswith("/"):
        r = w["http"].get(url, headers=headers or {})
        return r.status_code, r.content, r.headers.get("cache-control", "")
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read(), resp.headers.get("Cache-Control", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), ""


def _urls_for(w, actor, tenant=None) -> dict[str, str]:
    """The URLs of each private kind that the services hand to this actor (raising if refused)."""
    svc, t = w["svc"], tenant or w["t"]
    history, _ = svc.chat.history(t, actor, w["conversation_id"])
    urls = {"chat attachment": history[0].attachments[0].url}
    if actor.id == w["client"].id:  # pros see the photos on their leads (`lead_photo_url`)
        request_row, _ = svc.quotes.request_with_quotes(t, actor, w["request_id"])
        urls["request photo"] = request_row.photo_urls[0]
    return urls


def test_keys_are_random_and_private(world):
    w = world
    for kind, key in w["keys"].items():
        assert not is_public(key), kind
    t = w["t"].id  # 128 random bits (22 url-safe characters) in every key, never the order number
    assert re.fullmatch(rf"t{t}/invoices/[A-Za-z0-9_-]{{22}}\.pdf", w["keys"]["invoice"])
    assert re.fullmatch(rf"t{t}/requests/[A-Za-z0-9_-]{{22}}\.jpg", w["keys"]["request photo"])
    assert re.fullmatch(rf"t{t}/chat/{w['conversation_id']}/[A-Za-z0-9_-]{{22}}-tap\.png", w["keys"]["chat attachment"])


def test_anonymous_visitors_read_nothing(world):
    w = world
    for kind, key in w["keys"].items():
        for path in (f"/api/v1/objects/{key}", f"/api/v1/files/{key}", f"/api/v1/files/{key}?expires=9999999999"):
            status, body, _ = _fetch(w, path)
            assert status == 404 and b"%PDF" not in body and b"PNG" not in body, (kind, path, status)
    # the invoice route wants a session; it answers no one else with a hint of which orders exist
    assert w["http"].get(f"/api/v1/orders/{w['order_id']}/invoice").status_code == 401
    if w["kind"] == "s3":  # the bucket itself is private: no URL without a signature opens an object
        for kind, url in _urls_for(w, w["client"]).items():
            parts = urlsplit(url)
            status, _, _ = _fetch(w, f"{parts.scheme}://{parts.netloc}{parts.path}")
            assert status == 403, kind


def test_wrong_users_and_other_tenants_get_no_url_and_no_invoice(world):
    w = world
    svc, t = w["svc"], w["t"]
    for outsider in ("other_client", "electrician"):
        with pytest.raises((NotFound, PermissionDenied)):
            svc.quotes.request_with_quotes(t, w[outsider], w["request_id"])
        with pytest.raises(NotFound):
            svc.chat.history(t, w[outsider], w["conversation_id"])
    assert all(row.id != w["request_id"] for row in svc.quotes.leads(t, w["electrician"]))
    with pytest.raises(DomainError):  # refused, whatever the reason given: no row, so no photo URL
        svc.quotes.lead(t, w["electrician"], w["request_id"])
    with pytest.raises(NotFound):
        svc.chat.history(w["acme"], w["stranger"], w["conversation_id"])

    invoice = f"/api/v1/orders/{w['order_id']}/invoice"
    other = w["token"](t, "other@example.com")
    assert w["http"].get(invoice, headers=_bearer(other)).status_code == 404
    assert w["http"].get(invoice, headers=_bearer(w["token"](t, "sparky@example.com"))).status_code == 404
    stranger = w["token"](w["acme"], "client@example.com")
    acme_host = {"Host": "acme.localhost:3000"}
    assert w["http"].get(invoice, headers=_bearer(stranger) | acme_host).status_code == 404
    assert w["http"].get(invoice, headers=_bearer(other) | acme_host).status_code == 401  # demo's token on acme


def test_entitled_people_get_short_lived_uncached_access(world):
    w = world
    svc, t = w["svc"], w["t"]
    for who in ("client", "pro"):
        for kind, url in _urls_for(w, w[who]).items():
            status, body, cache = _fetch(w, url)
            assert status == 200 and body == svc.store.get(w["keys"][kind])[0], (who, kind)
            assert cache == PRIVATE, (who, kind)
    status, body, cache = _fetch(w, w["lead_photo_url"])
    assert (status, body, cache) == (200, svc.store.get(w["keys"]["request photo"])[0], PRIVATE)
    invoice = f"/api/v1/orders/{w['order_id']}/invoice"
    for email in ("client@example.com", "pro@example.com", "boss@example.com"):
        r = w["http"].get(invoice, headers=_bearer(w["token"](t, email)))
        assert r.status_code == 200 and r.content.startswith(b"%PDF"), email
        assert r.headers["cache-control"] == PRIVATE


def test_signed_urls_expire_cannot_be_altered_and_stay_on_their_tenant(world):
    w = world
    urls = _urls_for(w, w["client"])
    if w["kind"] == "local":
        for kind, url in urls.items():
            params = dict(parse_qsl(urlsplit(url).query))
            sig = params["signature"]
            tampered = url.replace(sig, sig[:-1] + ("0" if sig[-1] != "0" else "1"))
            longer = url.replace(f"expires={params['expires']}", f"expires={int(params['expires']) + 86400}")
            other_object = url.replace(urlsplit(url).path, f"/api/v1/files/{w['keys']['invoice']}")
            for bad in (tampered, longer, other_object):
                assert _fetch(w, bad)[0] == 404, (kind, bad)
            assert _fetch(w, url, {"Host": "acme.localhost:3000"})[0] == 404, kind  # other tenant's host
            expired = w["svc"].store.signer.sign(w["keys"][kind], -120)  # past, even rounded up to the minute
            assert _fetch(w, expired)[0] == 404, kind
            assert _fetch(w, url)[0] == 200, kind
    else:
        now = datetime.now(timezone.utc)
        for kind, url in urls.items():
            params = dict(parse_qsl(urlsplit(url).query))
            assert int(params["X-Amz-Expires"]) == w["svc"].settings.signed_url_seconds
            assert _sigv4_query_valid(url, FAKE_SECRET, now), kind
            sig = params["X-Amz-Signature"]
            tampered = url.replace(sig, sig[:-1] + ("0" if sig[-1] != "0" else "1"))
            assert not _sigv4_query_valid(tampered, FAKE_SECRET, now), kind
            expiry = timedelta(seconds=w["svc"].settings.signed_url_seconds + 1)
            assert not _sigv4_query_valid(url, FAKE_SECRET, now + expiry), kind
