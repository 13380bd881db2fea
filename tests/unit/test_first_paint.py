"""The landing page's build step (marketplace_app/first_paint.py): no module preloads left in the head, the same boot
in the same order after the first paint, precompressed copies rewritten, and a loud failure if the export changes."""

from __future__ import annotations

import gzip
import re

import brotli
import pytest

from marketplace_app.first_paint import INSTALLED_APP_QUERY, BuildOutputChanged, defer_app_boot, rewrite_landing
from marketplace_app.pwa import START_URL

# The shape of React Router's export of a prerendered route (trimmed from a real build of this app).
EXPORTED = """<!DOCTYPE html><html><head><meta charSet="utf-8"/>
<link rel="modulepreload" href="/assets/manifest-b532dfd6.js"/><link rel="modulepreload" href="/assets/entry.client-BW7.js"/><link rel="modulepreload" href="/assets/root-TrM.js"/><link rel="modulepreload" href="/assets/_index-n8C.js"/>
<link href="/assets/styles.css" rel="stylesheet" type="text/css"/></head><body><main><h1>Find a pro</h1></main>
<script>window.__reactRouterContext = {"ssr":false};</script>
<script type="module" async="">import "/assets/manifest-b532dfd6.js";
import * as route0 from "/assets/root-TrM.js";
import * as route1 from "/assets/_index-n8C.js";
  
  window.__reactRouterRouteModules = {"root":route0,"routes/_index":route1};

import("/assets/entry.client-BW7.js");</script></body></html>"""


def test_the_head_keeps_no_module_preload_and_the_page_its_content():
    html = defer_app_boot(EXPORTED)
    assert 'rel="modulepreload"' not in html.split("<script")[0]
    assert "<h1>Find a pro</h1>" in html and 'rel="stylesheet"' in html
    assert 'async=""' not in html


def test_the_app_boots_on_the_first_input_or_after_the_paint_in_the_installed_app():
    script = re.search(r'<script type="module">(.*?)</script>', defer_app_boot(EXPORTED), re.S).group(1)
    assert 'for (const type of ["pointerdown", "pointermove", "touchstart", "wheel", "keydown"]) ' \
           'addEventListener(type, bootApp, {capture: true, passive: true});' in script
    assert 'if (window.__bootAppNow || new URLSearchParams(location.search).get("source") === "pwa")' in script
    assert 'addEventListener("load", afterFirstPaint' in script and "requestAnimationFrame" in script
    assert "if (booted) return;" in script  # the first input boots once, the rest find it done


def test_the_installed_app_is_recognised_by_its_start_url():
    assert "=".join(INSTALLED_APP_QUERY) in START_URL.split("?", 1)[1].split("&")


def test_the_boot_keeps_the_same_modules_in_the_same_order():
    html = defer_app_boot(EXPORTED)
    script = re.search(r'<script type="module">(.*?)</script>', html, re.S).group(1)
    order = re.findall(r'import\("([^"]+)"\)', script)
    assert order == ["/assets/manifest-b532dfd6.js", "/assets/root-TrM.js", "/assets/_index-n8C.js",
                     "/assets/entry.client-BW7.js"]
    assert 'const route0 = await import("/assets/root-TrM.js");' in script
    assert 'window.__reactRouterRouteModules = {"root":route0,"routes/_index":route1};' in script
    # the preloads move into the boot: fetched in parallel once it starts, not before the first paint
    assert '"/assets/entry.client-BW7.js"' in script.split("for (const href of")[1].split(")")[0]
    assert not re.search(r"^\s*import\s", script, re.M)  # no static import left: it would load at once


@pytest.mark.parametrize("broken", [
    EXPORTED.replace('<script type="module" async="">', "<script>"),
    re.sub(r'<link rel="modulepreload"[^>]*>', "", EXPORTED),
    EXPORTED.replace('import("/assets/entry.client-BW7.js");', ""),
])
def test_an_export_of_another_shape_fails_the_build(broken):
    with pytest.raises(BuildOutputChanged):
        defer_app_boot(broken)


def test_the_precompressed_copies_say_what_the_page_says(tmp_path):
    (tmp_path / "index.html").write_text(EXPORTED)
    (tmp_path / "index.html.gz").write_bytes(gzip.compress(EXPORTED.encode()))
    (tmp_path / "index.html.br").write_bytes(brotli.compress(EXPORTED.encode()))
    rewrite_landing(tmp_path)
    page = (tmp_path / "index.html").read_bytes()
    assert page == defer_app_boot(EXPORTED).encode()
    assert gzip.decompress((tmp_path / "index.html.gz").read_bytes()) == page
    assert brotli.decompress((tmp_path / "index.html.br").read_bytes()) == page
    assert not (tmp_path / "index.html.zst").exists()  # only the copies the build made
