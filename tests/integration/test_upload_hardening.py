"""Uploads at the service boundary, on SQLite and PostgreSQL: every stored image is a fresh encode with
no metadata (a JPEG carrying GPS EXIF through avatar, portfolio, request photos and chat), the pixel cap,
who may upload is decided before the data is touched, and oversized bodies to the real REST API and
webhooks are refused with 413 before a handler runs."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from PIL import Image, ImageCms

import backend.bootstrap as bootstrap
from backend.errors import NotFound, PermissionDenied, ValidationFailed
from backend.profiles.pros import MAX_PORTFOLIO
from marketplace_app.api import api
from marketplace_app.limits import body_limit
from tests.samples import pdf

PW = "pw-1234567890"
SECRET = "SECRET-MARKER"
MB = 1024 * 1024


def gps_jpeg(size=(120, 80)) -> bytes:
    """A phone photo as uploaded: GPS position, camera make/model, orientation, XMP, ICC profile, comment."""
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = f"{SECRET}-make"
    exif[0x0110] = f"{SECRET}-model"
    exif[0x0112] = 6  # rotate 90 degrees when shown
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}  # the GPS IFD
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, comment=SECRET.encode(),
               xmp=f"<x:xmpmeta><rdf:Description>{SECRET}</rdf:Description></x:xmpmeta>".encode(),
               icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    data = out.getvalue()
    opened = Image.open(io.BytesIO(data))
    assert opened.getexif().get_ifd(0x8825) and SECRET.encode() in data  # it really carries them
    return data


def twenty_megapixels() -> bytes:
    out = io.BytesIO()
    Image.new("1", (5000, 4000)).save(out, "PNG")  # a few KB on the wire, 20 M pixels decoded
    return out.getvalue()


class Untouchable(bytes):
    """Upload data that must not be looked at: any use fails the test."""

    def _touched(self, *args, **kwargs):
        raise AssertionError("the upload was read before the caller was checked")

    __len__ = __getitem__ = __bytes__ = __iter__ = __eq__ = __hash__ = _touched


def assert_no_metadata(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert dict(image.getexif()) == {}
    assert not {"exif", "xmp", "icc_profile", "comment"} & set(image.info), image.info
    assert SECRET.encode() not in data and b"Exif\x00\x00" not in data
    return image


@pytest.fixture
def world(svc, tenants, monkeypatch):
    demo, acme = tenants
    svc.catalog.seed_defaults(demo.id)
    people = {}
    for key, email, role, tenant in (("client", "carla@example.com", "client", demo),
                                     ("stranger", "sam@example.com", "client", demo),
                                     ("pro", "pedro@example.com", "professional", demo),
                                     ("acme_pro", "abe@acme.example", "professional", acme)):
        people[key], _ = svc.accounts.sign_up(tenant, {"email": email, "password": PW, "full_name": key.title(),
                                                       "role": role})
    puts = []
    real_put = svc.store.put

    def spy(key, data, content_type):
        puts.append((key, bytes(data), content_type))
        return real_put(key, data, content_type)

    monkeypatch.setattr(svc.store, "put", spy)
    category = next(c.id for c in svc.catalog.categories(demo.id) if c.slug == "plumbing")
    request = {"title": "Fix a leaking kitchen tap", "description": "The kitchen tap drips all night, needs a washer.",
               "city": "Austin", "budget_min": "50", "budget_max": "150", "category_id": category}
    return dict(svc=svc, t=demo, acme=acme, puts=puts, request=request, **people)


def test_every_stored_image_is_a_fresh_encode_without_metadata(world):
    w, svc, t = world, world["svc"], world["t"]
    photo = gps_jpeg()

    svc.profiles.set_avatar(w["client"], photo)
    svc.pros.add_portfolio_image(t, w["pro"], photo, "Kitchen")
    request_id = svc.quotes.create_request(t, w["client"], w["request"], [photo, photo])
    conversation = svc.chat.ensure_job_conversation(t, w["client"].id, w["pro"].id, request_id)
    document = pdf()
    message = svc.chat.send(t, w["client"], conversation, "where it leaks", [("leak.jpg", photo),
                                                                             ("quote.pdf", document)])

    kinds = [key.split("/")[1] for key, _, _ in w["puts"]]
    assert kinds == ["avatars", "portfolio", "portfolio", "requests", "requests", "chat", "chat"]
    for key, data, content_type in w["puts"]:
        if content_type == "application/pdf":
            assert data == document  # documents are stored as sent (checked to be a PDF)
            continue
        image = assert_no_metadata(data)
        assert content_type == "image/jpeg" and image.format == "JPEG", key
    chat_image = Image.open(io.BytesIO(w["puts"][5][1]))
    assert chat_image.size == (80, 120)  # full size, turned upright before the orientation tag was dropped
    image_view = message.attachments[0]
    assert (image_view.content_type, image_view.size) == ("image/jpeg", len(w["puts"][5][1]))
    assert svc.store.get(w["puts"][5][0])[0] == w["puts"][5][1]


def test_twenty_megapixels_are_refused_everywhere_and_nothing_is_stored(world):
    w, svc, t = world, world["svc"], world["t"]
    big = twenty_megapixels()
    request_id = svc.quotes.create_request(t, w["client"], w["request"])
    conversation = svc.chat.ensure_job_conversation(t, w["client"].id, w["pro"].id, request_id)
    attempts = [
        ("avatar", lambda: svc.profiles.set_avatar(w["client"], big)),
        ("portfolio", lambda: svc.pros.add_portfolio_image(t, w["pro"], big)),
        ("photos", lambda: svc.quotes.create_request(t, w["client"], w["request"], [big])),
        ("attachments", lambda: svc.chat.send(t, w["client"], conversation, "", [("huge.png", big)])),
    ]
    for field, attempt in attempts:
        with pytest.raises(ValidationFailed) as exc:
            attempt()
        assert "too large" in exc.value.errors[field], exc.value.errors
    assert w["puts"] == []
    assert len(svc.quotes.my_requests(t, w["client"])) == 1  # the refused request was not created


def test_who_may_upload_is_decided_before_the_data_is_touched(world):
    w, svc, t = world, world["svc"], world["t"]
    request_id = svc.quotes.create_request(t, w["client"], w["request"])
    conversation = svc.chat.ensure_job_conversation(t, w["client"].id, w["pro"].id, request_id)
    secret = Untouchable(b"never read")

    refused = [
        (NotFound, lambda: svc.chat.check_may_send(t, w["stranger"], conversation)),
        (NotFound, lambda: svc.chat.send(t, w["stranger"], conversation, "", [("x.jpg", secret)])),
        (PermissionDenied, lambda: svc.chat.send(w["acme"], w["stranger"], conversation, "", [("x.jpg", secret)])),
        (PermissionDenied, lambda: svc.chat.check_may_send(t, None, conversation)),
        (PermissionDenied, lambda: svc.profiles.set_avatar(None, secret)),
        (PermissionDenied, lambda: svc.pros.add_portfolio_image(t, w["client"], secret)),
        (PermissionDenied, lambda: svc.pros.add_portfolio_image(t, w["acme_pro"], secret)),  # another tenant's pro
        (PermissionDenied, lambda: svc.quotes.create_request(t, w["pro"], w["request"], [secret])),
    ]
    for error, attempt in refused:
        with pytest.raises(error):
            attempt()
    svc.chat.check_may_send(t, w["client"], conversation)  # the participants may
    svc.chat.check_may_send(t, w["pro"], conversation)
    assert w["puts"] == []
    assert svc.chat.history(t, w["client"], conversation)[0] == []


def test_a_full_portfolio_refuses_before_decoding(world):
    w, svc, t = world, world["svc"], world["t"]
    small = io.BytesIO()
    Image.new("RGB", (40, 30), "teal").save(small, "PNG")
    for _ in range(MAX_PORTFOLIO):
        svc.pros.add_portfolio_image(t, w["pro"], small.getvalue())
    stored = len(w["puts"])
    with pytest.raises(ValidationFailed) as exc:
        svc.pros.add_portfolio_image(t, w["pro"], b"not even an image")
    assert "at most" in exc.value.errors["portfolio"]  # the count, not the content, refused it
    assert len(w["puts"]) == stored


def test_oversized_bodies_to_the_rest_api_and_webhooks_get_413(world, monkeypatch):
    svc = world["svc"]
    monkeypatch.setattr(bootstrap, "_services", svc)
    calls = []
    real_record = svc.payments.record_webhook

    def record(*args, **kwargs):
        calls.append(args)
        return real_record(*args, **kwargs)

    monkeypatch.setattr(svc.payments, "record_webhook", record)
    client = TestClient(body_limit(svc.settings)(api), base_url="http://localhost:3000")

    big = b"{" + b" " * (2 * MB) + b"}"
    assert client.post("/api/webhooks/stripe", content=big).status_code == 413
    assert client.post("/api/webhooks/stripe", content=(big[i:i + 65536] for i in range(0, len(big), 65536))
                       ).status_code == 413  # chunked, no Content-Length
    assert calls == []  # no handler saw either
    small = client.post("/api/webhooks/stripe", content=b"{}")
    assert small.status_code != 413 and len(calls) == 1  # under the limit it reaches the handler
    login = client.post("/api/v1/auth/login", content=big, headers={"content-type": "application/json"})
    assert login.status_code == 413
    assert client.get("/api/v1/health").json() == {"status": "ok"}
