"""The installable app: a web app manifest per marketplace, its icons, the service worker and the offline page.

Each marketplace is its own origin (its host), so each gets its own manifest, icons and service worker, resolved
from the Host like every other route. These are REST routes on the FastAPI app that Reflex mounts in front of its
own routes (`api_transformer`), so in `reflex run --env prod --single-port` (`make run`, the e2e fixture, nginx in
deploy/) they win over the static export; nothing here is written into the export, where one file would have to
serve every tenant.

- `/manifest.webmanifest`: name, colours and icons from the tenant's branding, revalidated on every use (ETag).
- `/pwa/icon-<size>.png`, `/pwa/maskable-<size>.png`, `/pwa/apple-touch-icon.png`: drawn with Pillow from the logo
  (when it is one of the tenant's public objects in storage) or the initial on the brand colour
  (`backend/storage/icons.py`); the manifest links them with `?v=<branding hash>`, so they can be cached for a year.
- `/sw.js`: the service worker (`pwa_static/sw.js`), its version a hash of the frontend build, the worker's own
  source and the branding, so a deploy or a rebrand installs a new worker that drops the old caches.
- `/offline.html`: what a page shows when the network is gone (precached by the worker).
- `/pwa.js`: registers the worker and offers "Install app" (components/install.py) when the browser allows it.
"""

from __future__ import annotations

import hashlib
import html
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from reflex.constants import Dirs
from reflex.utils.prerequisites import get_web_dir

from backend.bootstrap import services
from backend.identity import TenantPublic
from backend.colour import rgb
from backend.storage.icons import render_icon, safe_logo, text_colour_on
from backend.storage.ports import StorageError, is_public

router = APIRouter()

STATIC = Path(__file__).resolve().parent / "pwa_static"
ICONS_VERSION = "1"  # bump when the drawing changes, so that every cached icon URL changes too
DEFAULT_BRAND = "#4F46E5"
START_URL = "/?source=pwa"
ICON_SIZES = (192, 512)
APPLE_SIZE = 180
OBJECTS_PREFIX = "/api/v1/objects/"  # the embedded store's URL for public objects (marketplace_app/api.py)
ICON_HEADERS = {"X-Content-Type-Options": "nosniff"}
REVALIDATE = "no-cache"  # may be stored, but asked again (ETag) before each use
YEAR = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Brand:
    """What the app's installed identity is made of, for one tenant (or the neutral one of an unknown host)."""

    tenant_id: int
    name: str
    colour: str
    logo_url: str

    @property
    def key(self) -> str:
        raw = json.dumps([self.tenant_id, self.name, self.colour, self.logo_url, ICONS_VERSION])
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    @property
    def short_name(self) -> str:
        """At most 12 characters, which launchers show under an icon without cutting: the name, else its first
        word, else the name cut."""
        if len(self.name) <= 12:
            return self.name
        first = self.name.split()[0]
        return first if len(first) <= 12 else self.name[:12].rstrip()


def _valid_colour(value: str) -> str:
    try:
        rgb(value)
    except ValueError:
        return DEFAULT_BRAND
    return value.upper()


def brand_of(tenant: TenantPublic) -> Brand:
    return Brand(tenant.id, tenant.name, _valid_colour(tenant.primary_color), tenant.logo_url)


def _tenant(request: Request) -> TenantPublic:
    tenant = services().tenants.for_host(request.headers.get("host", ""))
    if tenant is None:
        raise HTTPException(404, "Marketplace not found")
    return tenant


def _not_modified(request: Request, etag: str, headers: dict[str, str]) -> Response | None:
    match = request.headers.get("if-none-match", "")
    if etag in (t.strip() for t in match.split(",")) or match.strip() == "*":
        return Response(status_code=304, headers={"ETag": etag, **headers})
    return None


def _answer(request: Request, body: bytes, media_type: str, cache_control: str,
            extra: dict[str, str] | None = None) -> Response:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"Cache-Control": cache_control, **ICON_HEADERS, **(extra or {})}
    return _not_modified(request, etag, headers) or Response(body, media_type=media_type,
                                                             headers={"ETag": etag, **headers})


# ------------------------------------------------------------------ manifest


def manifest(brand: Brand) -> dict:
    """The web app manifest of one marketplace (every URL relative to its own origin)."""
    v = f"?v={brand.key}"
    icons = [{"src": f"/pwa/icon-{s}.png{v}", "sizes": f"{s}x{s}", "type": "image/png", "purpose": "any"}
             for s in ICON_SIZES]
    icons += [{"src": f"/pwa/maskable-{s}.png{v}", "sizes": f"{s}x{s}", "type": "image/png", "purpose": "maskable"}
              for s in ICON_SIZES]
    return {
        "id": "/",
        "name": brand.name,
        "short_name": brand.short_name,
        "description": f"Find trusted professionals, compare quotes and book with {brand.name}.",
        "lang": "en",
        "dir": "ltr",
        "start_url": START_URL,
        "scope": "/",
        "display": "standalone",
        "orientation": "any",
        "theme_color": brand.colour,
        "background_color": brand.colour,  # the splash screen: the icon's own colour around it
        "categories": ["business", "lifestyle", "shopping"],
        "icons": icons,
    }


@router.get("/manifest.webmanifest", include_in_schema=False)
def web_manifest(request: Request) -> Response:
    body = json.dumps(manifest(brand_of(_tenant(request))), separators=(",", ":")).encode()
    return _answer(request, body, "application/manifest+json", REVALIDATE)


# ------------------------------------------------------------------ icons

_ICON_CACHE: OrderedDict[tuple[str, str, int], bytes] = OrderedDict()
_ICON_CACHE_SIZE = 200  # five icons per marketplace: the 40 most recently asked for stay drawn
_icon_lock = threading.Lock()


def _logo_bytes(tenant: TenantPublic) -> bytes | None:
    """The logo's bytes when it is one of this tenant's public objects in storage; None otherwise. A logo on
    another site is never fetched from here (the server would request whatever URL an operator typed)."""
    if not tenant.logo_url.startswith(OBJECTS_PREFIX):
        return None
    key = tenant.logo_url[len(OBJECTS_PREFIX):].split("?", 1)[0]
    if not key.startswith(f"t{tenant.id}/") or not is_public(key):
        return None
    try:
        data, _ = services().store.get(key)
    except (KeyError, StorageError, ValueError):
        return None
    return data


def icon_png(tenant: TenantPublic, kind: str, size: int) -> bytes:
    brand = brand_of(tenant)
    cache_key = (brand.key, kind, size)
    with _icon_lock:
        if (hit := _ICON_CACHE.get(cache_key)) is not None:
            _ICON_CACHE.move_to_end(cache_key)
            return hit
    png = render_icon(size, kind=kind, brand=brand.colour, name=brand.name, logo=safe_logo(_logo_bytes(tenant)))
    with _icon_lock:
        _ICON_CACHE[cache_key] = png
        while len(_ICON_CACHE) > _ICON_CACHE_SIZE:
            _ICON_CACHE.popitem(last=False)
    return png


async def _icon(request: Request, kind: str, size: int) -> Response:
    tenant = _tenant(request)
    png = await run_in_threadpool(icon_png, tenant, kind, size)
    versioned = request.query_params.get("v") == brand_of(tenant).key
    return _answer(request, png, "image/png", YEAR if versioned else "public, max-age=3600")


@router.get("/pwa/icon-{size}.png", include_in_schema=False)
async def any_icon(size: int, request: Request) -> Response:
    if size not in ICON_SIZES:
        raise HTTPException(404, "Not found")
    return await _icon(request, "any", size)


@router.get("/pwa/maskable-{size}.png", include_in_schema=False)
async def maskable_icon(size: int, request: Request) -> Response:
    if size not in ICON_SIZES:
        raise HTTPException(404, "Not found")
    return await _icon(request, "maskable", size)


@router.get("/pwa/apple-touch-icon.png", include_in_schema=False)
async def apple_touch_icon(request: Request) -> Response:
    return await _icon(request, "apple", APPLE_SIZE)


# ------------------------------------------------------------------ service worker


def _static_dir() -> Path:
    return (get_web_dir() / Dirs.STATIC).resolve()


_build_lock = threading.Lock()
_build_memo: dict[tuple, tuple[str, tuple[str, ...]]] = {}


def build_facts(static_dir: Path | None = None) -> tuple[str, tuple[str, ...]]:
    """(an id of the frontend build, the hashed files its entry page loads first). The id hashes the names of the
    build's files under /assets/ (Vite puts a content hash in each name) and the entry page: a new build is a new
    id. Without a build (not `--env prod`) the id is "dev" and nothing is precached."""
    static_dir = static_dir or _static_dir()
    assets, index = static_dir / "assets", static_dir / "index.html"
    try:
        stamp = (assets.stat().st_mtime_ns, index.stat().st_mtime_ns)
    except OSError:
        return "dev", ()
    with _build_lock:
        if (hit := _build_memo.get((str(static_dir), stamp))) is not None:
            return hit
    names = sorted(p.name for p in assets.iterdir() if p.is_file())
    entry = index.read_text(errors="replace")
    digest = hashlib.sha256("\n".join(names).encode() + entry.encode()).hexdigest()[:16]
    # What the entry page links: its scripts, module preloads and stylesheets (the rest is fetched on demand and
    # kept by the worker's cache-first rule).
    first = tuple(dict.fromkeys(
        f"/assets/{name}" for name in names
        if f"/assets/{name}\"" in entry and name.endswith((".js", ".css"))))
    facts = (digest, first)
    with _build_lock:
        _build_memo[(str(static_dir), stamp)] = facts
    return facts


def service_worker(brand_key: str, static_dir: Path | None = None) -> str:
    template = (STATIC / "sw.js").read_text()
    build_id, precache = build_facts(static_dir)
    offline = (STATIC / "offline.html").read_bytes()
    version = hashlib.sha256("\n".join([build_id, brand_key, template]).encode() + offline).hexdigest()[:16]
    return (template.replace("__VERSION__", version)
            .replace("__PRECACHE__", json.dumps(["/offline.html", "/pwa/icon-192.png", *precache])))


@router.get("/sw.js", include_in_schema=False)
def service_worker_script(request: Request) -> Response:
    """No-cache: browsers compare the worker byte for byte on every navigation, so a deploy is seen at once."""
    tenant = services().tenants.for_host(request.headers.get("host", ""))
    body = service_worker(brand_of(tenant).key if tenant else "none").encode()
    return _answer(request, body, "text/javascript; charset=utf-8", "no-cache, max-age=0, must-revalidate",
                   {"Service-Worker-Allowed": "/"})


def offline_page(brand: Brand | None) -> str:
    name = brand.name if brand else "Marketplace"
    colour = brand.colour if brand else DEFAULT_BRAND
    on_colour = "#FFFFFF" if text_colour_on(rgb(colour)) == (255, 255, 255) else "#111827"
    return ((STATIC / "offline.html").read_text()
            .replace("__NAME__", html.escape(name))
            .replace("__BRAND__", colour)
            .replace("__ON_BRAND__", on_colour))


@router.get("/offline.html", include_in_schema=False)
def offline(request: Request) -> Response:
    tenant = services().tenants.for_host(request.headers.get("host", ""))
    body = offline_page(brand_of(tenant) if tenant else None).encode()
    return _answer(request, body, "text/html; charset=utf-8", REVALIDATE)


def registration_script(brand: Brand | None, open_here: bool = True) -> str:
    """`open_here` false (no marketplace at this host, or a paused one): the landing page boots the app at once to
    say so, instead of on the first input (marketplace_app/first_paint.py)."""
    values = {"name": brand.name if brand else "", "theme": brand.colour if brand else DEFAULT_BRAND,
              "open": open_here}
    # json.dumps escapes neither "<" nor "/": make the literal safe even if the file were ever inlined in HTML
    literal = json.dumps(values).replace("<", "\\u003c")
    return (STATIC / "pwa.js").read_text().replace("__BRAND__", literal)


@router.get("/pwa.js", include_in_schema=False)
def pwa_script(request: Request) -> Response:
    tenant = services().tenants.for_host(request.headers.get("host", ""))
    body = registration_script(brand_of(tenant) if tenant else None,
                               open_here=tenant is not None and tenant.is_active).encode()
    # revalidated on every use (a 304 most times): it says whether the marketplace is open, which must not lag
    return _answer(request, body, "text/javascript; charset=utf-8", REVALIDATE)


# ------------------------------------------------------------------ caching of the static export

IMMUTABLE_PREFIX = "/assets/"  # Vite's output: every file name carries a hash of its content


class CacheHeaders:
    """Cache-Control for what the static export serves without one (pure ASGI, wraps the whole app): the build's
    hashed files for a year, HTML pages revalidated on every use, so that a deploy is seen on the next load (a
    heuristically cached page would ask for hashed files the new build no longer has). A route that sets its own
    Cache-Control keeps it."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        hashed = scope.get("path", "").startswith(IMMUTABLE_PREFIX)

        async def send_with_cache(message) -> None:
            if message["type"] == "http.response.start" and message.get("status") in (200, 304):
                headers = message.get("headers", [])
                names = {name.lower(): value for name, value in headers}
                if b"cache-control" not in names:
                    if hashed:
                        message["headers"] = [*headers, (b"cache-control", YEAR.encode())]
                    elif names.get(b"content-type", b"").startswith(b"text/html"):
                        message["headers"] = [*headers, (b"cache-control", REVALIDATE.encode())]
            await send(message)

        await self.app(scope, receive, send_with_cache)
