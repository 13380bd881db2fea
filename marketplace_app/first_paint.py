"""The landing page paints before the app loads: a build step for the one page whose content is in the build's HTML.

The landing page is prerendered (`page_shell(prerendered=True)`): its headline, calls to action and categories are in
`index.html`, and its links are plain `<a href>`s that work before any script runs. React Router's export still heads
it with ~60 `<link rel="modulepreload">`s (the whole framework, ~280 KiB compressed) and boots the app from a module
script at once, so a phone on a slow network downloads the app before it shows the page it already has: Lighthouse's
simulated slow 4G put the first paint at ~3.9 s, against ~0.7 s for a plain HTML page of the same marketplace.

After the export (Reflex's `post_build` hook) this rewrites `index.html`: no module preloads in the head, and the same
boot script, unchanged in what it imports and in which order, runs when the visitor first does something on the page
(moves the pointer, touches, scrolls with a wheel, presses a key). It runs right after the first paint instead when the
page is opened as the installed app (its start URL says `source=pwa`, marketplace_app/pwa.py), or when there is no
open marketplace at the address (pwa.js, which runs first, says so; the app then shows "not found" or "paused").
Until then a phone only reads a page: links are links, the install button works (pwa.js), nothing else on it needs
the app for a visitor, and the main thread stays free. Once the boot runs, the app hydrates the same HTML and takes
over as on every page. The price: the boot's work (~1.7 s of blocking time in Lighthouse's simulated slow phone, the
bench's "app booting" row) comes with the first input, which is usually a scroll (the compositor scrolls while the
main thread works) or a link (a page load anyway). A signed-in visitor sees the visitor's header and calls to action
until that first input. Every other page renders only with the app, so it keeps React Router's preloads. The
precompressed copies (`.br`, `.gz`) are written again from the new file.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import brotli
import reflex as rx

LANDING = "index.html"
MODULE_PRELOAD = re.compile(r'<link rel="modulepreload" href="([^"]+)"/>')
BOOT_SCRIPT = re.compile(r'<script type="module" async="">(.*?)</script>', re.S)
STATIC_IMPORT = re.compile(r'^import (?:\* as (\w+) from )?"([^"]+)";[ \t]*$', re.M)
# When the boot script runs: on the visitor's first input, or once the page has loaded and painted when it is the
# installed app (which is opened to be used) or when pwa.js has found no open marketplace here. The modules are then
# fetched in parallel, as the head's preloads did.
INSTALLED_APP_QUERY = ("source", "pwa")  # marketplace_app/pwa.py START_URL; tests/unit/test_first_paint.py checks
FIRST_INPUT = ("pointerdown", "pointermove", "touchstart", "wheel", "keydown")
DEFERRED_BOOT = """<script type="module">
let booted = false;
const bootApp = async () => {{
  if (booted) return;
  booted = true;
  for (const type of {first_input}) removeEventListener(type, bootApp, true);
  for (const href of {preloads}) {{
    const link = document.createElement("link");
    link.rel = "modulepreload";
    link.href = href;
    document.head.appendChild(link);
  }}
{imports}
{rest}
}};
if (window.__bootAppNow || new URLSearchParams(location.search).get({query_key}) === {query_value}) {{
  const afterFirstPaint = () => requestAnimationFrame(() => setTimeout(bootApp));
  if (document.readyState === "complete") afterFirstPaint();
  else addEventListener("load", afterFirstPaint, {{once: true}});
}} else {{
  for (const type of {first_input}) addEventListener(type, bootApp, {{capture: true, passive: true}});
}}
</script>"""


class BuildOutputChanged(RuntimeError):
    """React Router's export no longer looks as this step expects: fail the build rather than ship a page that never
    boots the app."""


def defer_app_boot(html: str) -> str:
    """The landing page's HTML without module preloads, its app boot script run on the first input (or after the
    first paint in the installed app)."""
    preloads = MODULE_PRELOAD.findall(html)
    boots = BOOT_SCRIPT.findall(html)
    if not preloads or len(boots) != 1:
        raise BuildOutputChanged(f"{LANDING}: expected module preloads and one module boot script, found "
                                 f"{len(preloads)} preloads and {len(boots)} boot scripts")
    body = boots[0]
    imports = STATIC_IMPORT.findall(body)
    rest = STATIC_IMPORT.sub("", body).strip()
    if not imports or re.search(r"^\s*import\s", rest, re.M) or "import(" not in rest:
        raise BuildOutputChanged(f"{LANDING}: the boot script is not static imports followed by a dynamic import")
    loads = "\n".join(f'  const {name} = await import("{url}");' if name else f'  await import("{url}");'
                      for name, url in imports)
    script = DEFERRED_BOOT.format(preloads=json.dumps(preloads), imports=loads, first_input=json.dumps(FIRST_INPUT),
                                  query_key=json.dumps(INSTALLED_APP_QUERY[0]),
                                  query_value=json.dumps(INSTALLED_APP_QUERY[1]),
                                  rest="\n".join(f"  {line}" for line in rest.splitlines() if line.strip()))
    without_preloads = MODULE_PRELOAD.sub("", html)
    return BOOT_SCRIPT.sub(lambda _: script, without_preloads, count=1)


def rewrite_landing(static_dir: Path) -> None:
    page = static_dir / LANDING
    html = defer_app_boot(page.read_text(encoding="utf-8")).encode()
    page.write_bytes(html)
    # the precompressed copies the server prefers must say the same
    for suffix, compress in ((".gz", lambda b: gzip.compress(b, 9, mtime=0)),
                             (".br", lambda b: brotli.compress(b, quality=11))):
        sidecar = page.with_name(page.name + suffix)
        if sidecar.exists():
            sidecar.write_bytes(compress(html))


class LandingPaintsFirst(rx.plugins.Plugin):
    """Reflex plugin (rxconfig.py): `rewrite_landing` after each production build."""

    def post_build(self, **context):
        rewrite_landing(context["static_dir"])
