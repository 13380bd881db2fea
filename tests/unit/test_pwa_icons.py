"""App icons drawn from a logo or an initial, the manifest's shape, and the service worker's version."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from backend.colour import contrast_ratio, rgb
from backend.storage.icons import initial_of, render_icon, safe_logo, text_colour_on
from marketplace_app.pwa import Brand, build_facts, manifest, registration_script, service_worker


def _png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image.convert("RGBA")


@pytest.mark.parametrize("kind", ["any", "maskable", "apple"])
@pytest.mark.parametrize("size", [180, 192, 512])
def test_icons_have_the_asked_size(kind, size):
    assert _png(render_icon(size, kind=kind, brand="#0F766E", name="Acme")).size == (size, size)


def test_initial_icon_is_the_brand_colour_with_a_contrasting_letter():
    image = _png(render_icon(512, kind="maskable", brand="#0F766E", name="acme home"))
    assert image.getpixel((5, 5))[:3] == rgb("#0F766E")  # full bleed
    colours = {c for _, c in image.getcolors(maxcolors=1 << 16)}
    assert (255, 255, 255, 255) in colours  # white letter: teal is dark
    light = _png(render_icon(192, kind="maskable", brand="#FDE047", name="Sunny"))
    assert (17, 24, 39, 255) in {c for _, c in light.getcolors(maxcolors=1 << 16)}  # near-black on yellow


def test_any_icon_has_transparent_rounded_corners_and_apple_icon_is_opaque():
    assert _png(render_icon(192, kind="any", brand="#4F46E5", name="H")).getpixel((0, 0))[3] == 0
    apple = Image.open(io.BytesIO(render_icon(180, kind="apple", brand="#4F46E5", name="H")))
    assert apple.mode == "RGB"


def _logo(colour=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300, 300), colour).save(out, "PNG")
    return out.getvalue()


def test_maskable_logo_stays_inside_the_safe_zone():
    """Everything that is not background lies within the central circle of 80 % of the width."""
    size = 512
    image = _png(render_icon(size, kind="maskable", brand="#4F46E5", name="X", logo=safe_logo(_logo())))
    centre, radius = size / 2, 0.4 * size
    logo_pixels = [(x, y) for x in range(0, size, 4) for y in range(0, size, 4)
                   if image.getpixel((x, y))[:3] != (255, 255, 255)]
    assert logo_pixels, "the logo was drawn"
    assert all((x - centre) ** 2 + (y - centre) ** 2 <= radius ** 2 for x, y in logo_pixels)
    assert image.getpixel((0, 0))[:3] == (255, 255, 255)  # a logo sits on white, full bleed


def test_unreadable_logo_falls_back_to_the_initial():
    assert safe_logo(b"not an image") is None
    assert safe_logo(None) is None
    assert safe_logo(_logo()) is not None


def test_colour_helpers():
    assert round(contrast_ratio((0, 0, 0), (255, 255, 255)), 1) == 21.0
    assert text_colour_on(rgb("#FFFFFF")) != (255, 255, 255)
    assert initial_of("  élan vital") == "É" and initial_of("--") == "?"
    with pytest.raises(ValueError):
        rgb("red")
    with pytest.raises(ValueError):
        render_icon(4096, kind="any", brand="#000000", name="x")


def test_manifest_from_branding():
    m = manifest(Brand(7, "Acme Home Services", "#0F766E", ""))
    assert m["name"] == "Acme Home Services" and m["short_name"] == "Acme"
    assert m["theme_color"] == m["background_color"] == "#0F766E"
    assert (m["start_url"], m["scope"], m["display"], m["id"]) == ("/?source=pwa", "/", "standalone", "/")
    sizes = {(i["sizes"], i["purpose"]) for i in m["icons"]}
    assert sizes == {("192x192", "any"), ("512x512", "any"), ("192x192", "maskable"), ("512x512", "maskable")}
    # a rebrand changes every icon URL (they are cached for a year)
    other = manifest(Brand(7, "Acme Home Services", "#E11D48", ""))
    assert not {i["src"] for i in m["icons"]} & {i["src"] for i in other["icons"]}


def test_short_name_is_at_most_12_characters():
    assert Brand(1, "HandyHub", "#000000", "").short_name == "HandyHub"
    assert Brand(1, "Supercalifragilistic Services", "#000000", "").short_name == "Supercalifra"


def _build(root, asset_names, index_links):
    (root / "assets").mkdir(parents=True)
    for name in asset_names:
        (root / "assets" / name).write_text("x")
    links = "".join(f'<script type="module" src="/assets/{n}"></script>' for n in index_links)
    (root / "index.html").write_text(f"<html><head>{links}</head></html>")
    return root


def test_service_worker_version_follows_the_build_and_the_branding(tmp_path):
    one = _build(tmp_path / "one", ["entry-abc123.js", "page-def456.js", "style-1a2b.css"], ["entry-abc123.js"])
    two = _build(tmp_path / "two", ["entry-fff999.js", "page-def456.js", "style-1a2b.css"], ["entry-fff999.js"])
    build_id, first = build_facts(one)
    assert first == ("/assets/entry-abc123.js",)
    assert build_facts(two)[0] != build_id
    sw = service_worker("brand-a", one)
    assert "__VERSION__" not in sw and "__PRECACHE__" not in sw
    precache = json.loads(sw.split("const PRECACHE_URLS = ", 1)[1].split(";", 1)[0])
    assert precache[0] == "/offline.html" and "/assets/entry-abc123.js" in precache
    version = sw.split('const VERSION = "', 1)[1].split('"', 1)[0]
    assert version not in service_worker("brand-a", two)  # a new deploy: a new worker
    assert version not in service_worker("brand-b", one)  # a rebrand: a new offline page
    assert version in service_worker("brand-a", one)  # and otherwise the same bytes
    assert build_facts(tmp_path / "none") == ("dev", ())


def test_registration_script_embeds_branding_as_a_safe_literal():
    script = registration_script(Brand(1, "</script><b>", "#0F766E", ""))
    assert "</script>" not in script and "\\u003c/script>" in script
    assert '"theme": "#0F766E"' in script


def test_cache_headers_for_the_static_export():
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from marketplace_app.pwa import CacheHeaders

    inner = Starlette(routes=[
        Route("/assets/entry-abc123.js", lambda r: PlainTextResponse("js", media_type="text/javascript")),
        Route("/pros", lambda r: HTMLResponse("<html></html>")),
        Route("/api/v1/me", lambda r: PlainTextResponse("{}", headers={"Cache-Control": "private, no-store"})),
    ])
    client = TestClient(CacheHeaders(inner))
    assert client.get("/assets/entry-abc123.js").headers["cache-control"] == "public, max-age=31536000, immutable"
    assert client.get("/pros").headers["cache-control"] == "no-cache"
    assert client.get("/api/v1/me").headers["cache-control"] == "private, no-store"  # a route's own wins
    assert "cache-control" not in client.get("/assets/missing.js").headers  # a 404 is not cached for a year
