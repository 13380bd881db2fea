"""Upload hardening without servers: the request-body limit (raw ASGI calls and a real Starlette app),
bounded reads of Reflex upload files, the pixel cap, and re-encoding that leaves no metadata."""

from __future__ import annotations

import asyncio
import io
import json
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageCms

from backend.chat.service import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS
from backend.config import Settings
from backend.errors import ValidationFailed
from backend.orders.forms import MAX_PHOTOS
from backend.profiles.pros import MAX_PORTFOLIO
from backend.storage.images import MAX_PIXELS, ImageTooLarge, load_image, reencode, thumbnail
from marketplace_app.limits import BodyLimit, body_limit
from state.uploads import read_uploads

MB = 1024 * 1024
SECRET = b"SECRET-MARKER"  # written into every metadata field below; must not appear in anything stored


# ---------------------------------------------------------------- raw ASGI harness


class Recorder:
    """An ASGI app that reads the whole body, then answers 200 with the number of bytes it got."""

    def __init__(self, *, on_disconnect=None):
        self.called = False
        self.received = 0
        self.saw_disconnect = False
        self.on_disconnect = on_disconnect

    async def __call__(self, scope, receive, send):
        self.called = True
        if scope["type"] != "http":
            await send({"type": "passed", "scope": scope["type"]})
            return
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.saw_disconnect = True
                if self.on_disconnect == "raise":  # like Starlette's ClientDisconnect reaching ServerErrorMiddleware
                    await send({"type": "http.response.start", "status": 500, "headers": []})
                    await send({"type": "http.response.body", "body": b"Internal Server Error"})
                    raise RuntimeError("client went away")
                break
            self.received += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = str(self.received).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})


def call(middleware, *, path="/api/v1/thing", chunks=(b"",), content_length=None, method="POST"):
    """Run one HTTP request through `middleware`; returns (status, body, how many chunks were pulled)."""
    headers = [(b"host", b"localhost")]
    if content_length is not None:
        headers.append((b"content-length", str(content_length).encode()))
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "headers": headers}
    pending = list(chunks)
    pulled = 0
    sent = []

    async def receive():
        nonlocal pulled
        if not pending:
            return {"type": "http.disconnect"}
        pulled += 1
        chunk = pending.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message):
        sent.append(message)

    asyncio.run(middleware(scope, receive, send))
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1, sent  # exactly one response, never the app's and ours
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return starts[0]["status"], body, pulled


# ---------------------------------------------------------------- the middleware


def test_declared_length_over_the_limit_is_refused_without_calling_the_app():
    app = Recorder()
    status, body, pulled = call(BodyLimit(app, default=1000), chunks=[b"x" * 1001], content_length=1001)
    assert status == 413 and "too large" in json.loads(body)["detail"]
    assert not app.called and pulled == 0  # not one byte of the body was read


def test_under_or_at_the_limit_passes_through():
    app = Recorder()
    status, body, _ = call(BodyLimit(app, default=1000), chunks=[b"x" * 600, b"y" * 400], content_length=1000)
    assert (status, body) == (200, b"1000") and app.received == 1000
    status, body, _ = call(BodyLimit(Recorder(), default=1000), chunks=[b"x" * 10] * 10)  # chunked, 100 bytes
    assert (status, body) == (200, b"100")
    status, _, _ = call(BodyLimit(Recorder(), default=1000), method="GET")
    assert status == 200


def test_chunked_body_over_the_limit_is_cut_off_with_413():
    app = Recorder()
    chunks = [b"x" * 400] * 100  # 40 000 bytes, no Content-Length
    status, _, pulled = call(BodyLimit(app, default=1000), chunks=chunks)
    assert status == 413
    assert pulled == 3 and app.saw_disconnect  # stopped at the first chunk past the limit
    assert app.received == 800  # the app never got the chunk that crossed it


def test_a_lying_content_length_is_caught_while_streaming():
    app = Recorder()
    status, _, pulled = call(BodyLimit(app, default=1000), chunks=[b"x" * 900, b"x" * 900, b"x" * 900],
                             content_length=10)
    assert status == 413 and pulled == 2


def test_the_apps_own_error_response_is_replaced_by_413():
    app = Recorder(on_disconnect="raise")
    status, body, _ = call(BodyLimit(app, default=100), chunks=[b"x" * 80, b"x" * 80])
    assert status == 413 and b"Internal Server Error" not in body


def test_limits_by_path_prefix_on_segment_boundaries():
    limit = BodyLimit(Recorder(), default=1 * MB, limits={"/_upload": 64 * MB})
    assert limit.limit_for("/_upload") == limit.limit_for("/_upload/x") == 64 * MB
    assert limit.limit_for("/_uploads") == limit.limit_for("/api/webhooks/stripe") == 1 * MB
    assert limit.limit_for("/_event/") == limit.limit_for("/api/v1/auth/login") == 1 * MB
    five_mb = [b"x" * MB] * 5
    assert call(limit, path="/_upload", chunks=five_mb, content_length=5 * MB)[0] == 200
    assert call(limit, path="/api/webhooks/stripe", chunks=five_mb, content_length=5 * MB)[0] == 413
    assert call(limit, path="/api/webhooks/stripe", chunks=five_mb)[0] == 413  # same without a length
    assert call(limit, path="/_uploads", chunks=five_mb)[0] == 413


def test_websocket_and_lifespan_pass_through():
    for kind in ("websocket", "lifespan"):
        app, sent = Recorder(), []

        async def send(message, sent=sent):
            sent.append(message)

        asyncio.run(BodyLimit(app, default=1)({"type": kind, "path": "/_event"}, None, send))
        assert app.called and sent == [{"type": "passed", "scope": kind}]


def test_limits_come_from_settings_and_fit_every_form_the_app_offers():
    settings = Settings(environment="test")
    limit = body_limit(settings, upload_path="/_upload")(Recorder())
    assert limit.limit_for("/_upload") == settings.max_upload_request_bytes
    assert limit.limit_for("/api/webhooks/paypal") == settings.max_request_body_bytes == 1 * MB
    # the largest legitimate upload requests, with room for multipart headers
    largest = max(MAX_PORTFOLIO * settings.max_avatar_bytes, MAX_PHOTOS * settings.max_avatar_bytes,
                  MAX_ATTACHMENTS * MAX_ATTACHMENT_BYTES)
    assert largest + MB <= settings.max_upload_request_bytes <= 128 * MB
    custom = Settings(environment="test", max_upload_request_bytes=8 * MB, max_request_body_bytes=256 * 1024)
    limit = body_limit(custom)(Recorder())
    assert (limit.limit_for("/_upload"), limit.limit_for("/api/v1/me")) == (8 * MB, 256 * 1024)


def test_real_starlette_app_multipart_and_json_over_the_limit():
    """The way Reflex's /_upload (request.form()) and FastAPI routes (request.body()) read bodies."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    seen = []

    async def upload(request):
        form = await request.form()
        sizes = [f.size for f in form.getlist("files")]
        seen.append(sizes)
        return JSONResponse({"sizes": sizes})

    async def hook(request):
        seen.append(len(await request.body()))
        return JSONResponse({"ok": True})

    inner = Starlette(routes=[Route("/_upload", upload, methods=["POST"]),
                              Route("/api/webhooks/stripe", hook, methods=["POST"])])
    client = TestClient(BodyLimit(inner, default=64 * 1024, limits={"/_upload": 2 * MB}))

    ok = client.post("/_upload", files=[("files", ("a.jpg", b"a" * 300_000)), ("files", ("b.jpg", b"b" * 10))])
    assert ok.status_code == 200 and ok.json() == {"sizes": [300_000, 10]}
    big = client.post("/_upload", files=[("files", ("a.jpg", b"a" * (3 * MB)))])
    assert big.status_code == 413
    assert client.post("/api/webhooks/stripe", content=b"{}").status_code == 200

    def stream():
        for _ in range(100):
            yield b"x" * 4096  # 400 KB, sent chunked: no Content-Length

    assert client.post("/api/webhooks/stripe", content=stream()).status_code == 413
    assert seen == [[300_000, 10], 2]  # the refused requests never reached a handler


# ---------------------------------------------------------------- bounded reads of upload files


class FakeUpload:
    def __init__(self, data: bytes, name="photo.jpg", size="auto"):
        self.data, self.filename = data, name
        self.size = len(data) if size == "auto" else size
        self.reads: list[int] = []

    async def read(self, n: int = -1) -> bytes:
        self.reads.append(n)
        return self.data if n < 0 else self.data[:n]


def read(files, **kw):
    return asyncio.run(read_uploads(files, **kw))


def test_read_uploads_counts_and_sizes_before_reading_anything():
    files = [FakeUpload(b"a" * 10), FakeUpload(b"b" * 10), FakeUpload(b"c" * 10)]
    with pytest.raises(ValidationFailed) as exc:
        read(files, field="photos", max_files=2, max_bytes=100)
    assert set(exc.value.errors) == {"photos"} and all(f.reads == [] for f in files)

    files = [FakeUpload(b"a" * 10), FakeUpload(b"b" * 200, name="huge.png")]
    with pytest.raises(ValidationFailed) as exc:
        read(files, field="photos", max_files=5, max_bytes=100)
    assert "huge.png" in exc.value.errors["photos"] and all(f.reads == [] for f in files)


def test_read_uploads_never_reads_more_than_the_limit_plus_one():
    liar = FakeUpload(b"x" * 10_000, size=None)  # no size known: the bounded read catches it
    with pytest.raises(ValidationFailed):
        read([liar], field="attachments", max_files=5, max_bytes=100)
    assert liar.reads == [101]
    good = [FakeUpload(b"a" * 100, name="a.png"), FakeUpload(b"b", name=None)]
    assert read(good, field="attachments", max_files=5, max_bytes=100) == [("a.png", b"a" * 100), ("file", b"b")]
    assert read(None, field="attachments", max_files=5, max_bytes=100) == []


def test_read_uploads_works_on_reflex_upload_files():
    from tempfile import SpooledTemporaryFile

    from reflex_components_core.core._upload import UploadFile

    spooled = SpooledTemporaryFile(max_size=1024)  # rolled to disk like Starlette's, past 1 KB
    spooled.write(b"z" * 5000)
    spooled.seek(0)
    upload = UploadFile(file=spooled, path=Path("big.gif"), size=5000)
    with pytest.raises(ValidationFailed):
        read([upload], field="avatar", max_files=1, max_bytes=4000)
    spooled.seek(0)
    assert read([UploadFile(file=spooled, path=Path("big.gif"), size=None)], field="avatar", max_files=1,
                max_bytes=6000) == [("big.gif", b"z" * 5000)]


# ---------------------------------------------------------------- pixels and metadata


def tagged(fmt="JPEG", size=(64, 48), mode="RGB", orientation=6) -> bytes:
    """An image carrying GPS EXIF, camera make/model, XMP, an ICC profile and a comment."""
    image = Image.new(mode, size, (200, 30, 30) if mode == "RGB" else 1)
    image.putpixel((0, 0), (0, 0, 255) if mode == "RGB" else 2)  # top-left marker, to see the orientation
    exif = Image.Exif()
    exif[0x010F] = SECRET.decode() + "-make"
    exif[0x0110] = SECRET.decode() + "-model"
    exif[0x0112] = orientation
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}  # the GPS IFD
    extra = {"exif": exif.tobytes()}
    if fmt in ("JPEG", "WEBP"):
        extra["xmp"] = b"<x:xmpmeta><rdf:Description>" + SECRET + b"</rdf:Description></x:xmpmeta>"
    if fmt == "JPEG":
        extra["comment"] = SECRET
    if fmt != "GIF":
        profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
        extra["icc_profile"] = profile.tobytes()
    else:
        extra = {"comment": SECRET}
    out = io.BytesIO()
    image.save(out, fmt, **extra)
    data = out.getvalue()
    assert SECRET in data or fmt == "PNG"  # (PNG compresses nothing here, but keeps the eXIf chunk)
    return data


def assert_clean(data: bytes):
    image = Image.open(io.BytesIO(data))
    assert dict(image.getexif()) == {}
    assert not {"exif", "xmp", "XML:com.adobe.xmp", "icc_profile", "comment"} & set(image.info), image.info
    assert SECRET not in data and b"Exif\x00\x00" not in data
    return image


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
def test_reencode_and_thumbnail_keep_no_metadata(fmt):
    data = tagged(fmt, mode="P" if fmt == "GIF" else "RGB", orientation=1 if fmt == "GIF" else 6)
    assert Image.open(io.BytesIO(data)).info  # the upload did carry metadata
    image = load_image(data, field="f", max_bytes=MB)
    stored, content_type, ext = reencode(image)
    again = assert_clean(stored)
    assert (again.format, content_type) == (fmt, f"image/{fmt.lower()}") and ext in ("jpg", "png", "webp", "gif")
    if fmt != "GIF":
        assert again.size == (48, 64)  # EXIF orientation 6 applied to the pixels, then dropped
    assert_clean(thumbnail(image, 32))
    assert_clean(thumbnail(image, 32, square=True))


def test_animated_gif_keeps_its_first_frame_only():
    frames = [Image.new("P", (40, 30), i) for i in range(5)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], comment=SECRET, loop=0, duration=100)
    stored, content_type, _ = reencode(load_image(out.getvalue(), field="f", max_bytes=MB))
    assert getattr(assert_clean(stored), "n_frames", 1) == 1 and content_type == "image/gif"


def header_only_png(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with a single empty IDAT: no pixel data to speak of."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_pixel_cap_refuses_from_the_header():
    assert Image.MAX_IMAGE_PIXELS == MAX_PIXELS <= 16_000_000
    with pytest.raises(ImageTooLarge) as exc:
        load_image(header_only_png(5000, 4000), field="photos", max_bytes=MB)  # 20 MP
    assert "too large" in exc.value.errors["photos"] and "20.0" in exc.value.errors["photos"]
    with pytest.raises(ImageTooLarge):
        load_image(header_only_png(20_000, 20_000), field="photos", max_bytes=MB)  # 400 MP: Pillow's own refusal
    with pytest.raises(ImageTooLarge):  # a real, fully decodable 20 MP image (compresses to a few KB)
        out = io.BytesIO()
        Image.new("1", (5000, 4000)).save(out, "PNG")
        load_image(out.getvalue(), field="photos", max_bytes=MB)
    ok = io.BytesIO()
    Image.new("L", (4000, 4000)).save(ok, "PNG")  # exactly 16 MP is fine
    assert load_image(ok.getvalue(), field="photos", max_bytes=MB).size == (4000, 4000)


def test_phone_photos_with_a_second_picture_mpo_are_accepted_as_one_jpeg():
    """Pillow reports JPEGs carrying a depth map or preview (many phone photos) as MPO; they used to be refused."""
    first, second = Image.new("RGB", (40, 30), "red"), Image.new("RGB", (40, 30), "blue")
    exif = Image.Exif()
    exif[0x010F] = SECRET.decode()
    out = io.BytesIO()
    first.save(out, "MPO", save_all=True, append_images=[second], exif=exif)
    image = load_image(out.getvalue(), field="f", max_bytes=MB)
    stored, content_type, ext = reencode(image)
    again = assert_clean(stored)
    assert (again.format, content_type, ext, getattr(again, "n_frames", 1)) == ("JPEG", "image/jpeg", "jpg", 1)
    assert_clean(thumbnail(image, 16))
