"""Assembles the app: the pages declared in pages/ and the REST API."""

import logging
import threading

import reflex as rx

from backend.bootstrap import services
from backend.jobs import run_timers_forever
from marketplace_app.api import api
from marketplace_app.bell_push import push_bells_forever
from marketplace_app.limits import body_limit
from marketplace_app.pwa import CacheHeaders
from marketplace_app.security_headers import with_security_headers
from pages import PAGES

SITE_DESCRIPTION = "Find trusted local professionals, compare quotes, pay safely and book the job."

services()  # migrate and wire adapters at start, not on the first request


def _sync_search_index() -> None:
    try:
        services().sync_search_index()
    except Exception:  # the app serves anyway; search says it is unavailable until the engine answers
        logging.getLogger(__name__).exception("the search index could not be checked at start")


# The index agrees with the database before people search (a fresh clone's demo data, a new index version, a restored
# database): tenants whose index disagrees are rebuilt, in a thread, so that a large rebuild does not hold the start.
threading.Thread(target=_sync_search_index, name="search-index-sync", daemon=True).start()

app = rx.App(
    # Applied in order, each wrapping the previous result: body_limit wraps the REST API and all of Reflex's
    # routes (/_upload, /_event). Oversized bodies get 413 before they are read (marketplace_app/limits.py).
    # The outermost, with_security_headers, adds CSP, framing denial, HSTS... to every response and refuses
    # cross-origin WebSockets (marketplace_app/security_headers.py). CacheHeaders: the static export's hashed
    # files cached for a year, its pages revalidated (marketplace_app/pwa.py). Reflex itself serves the build's
    # gzip sidecars (frontend_compression_formats, default gzip).
    api_transformer=[api, body_limit(services().settings,
                                     upload_path=rx.config.get_config().prepend_backend_path("/_upload")),
                     CacheHeaders, with_security_headers(services().settings)],
    # The head is one static file for every marketplace: what differs per marketplace (manifest, icons, name and
    # colour) comes from routes that resolve the tenant from the Host (marketplace_app/pwa.py). /pwa.js registers
    # the service worker and adds the theme-color and apple-mobile-web-app-title metas with the marketplace's own
    # (added, not changed: React 19 re-inserts a head meta of its own whose attributes a script changed).
    head_components=[
        rx.el.meta(name="description", content=SITE_DESCRIPTION),
        rx.el.link(rel="manifest", href="/manifest.webmanifest"),
        rx.el.meta(name="mobile-web-app-capable", content="yes"),
        rx.el.meta(name="apple-mobile-web-app-capable", content="yes"),
        rx.el.meta(name="apple-mobile-web-app-status-bar-style", content="default"),
        rx.el.link(rel="apple-touch-icon", sizes="180x180", href="/pwa/apple-touch-icon.png"),
        rx.el.script(src="/pwa.js", defer=True),
    ],
    style={"font_family": "Inter, system-ui, -apple-system, Segoe UI, Roboto, sans-serif"},
)
for spec in PAGES:
    app.add_page(spec.component, route=spec.route, title=spec.title, on_load=spec.on_load)

if not services().settings.redis_url:  # with Redis, `celery -A backend.jobs beat` drives the timers
    app.register_lifespan_task(run_timers_forever)
# The live bell: signals rung after commits (here, or by Celery workers through Redis) become pushes to open tabs.
app.register_lifespan_task(push_bells_forever)
