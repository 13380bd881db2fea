"""Browser protections on every response, and no cross-site WebSockets (pure ASGI, wraps the whole app).

The Content-Security-Policy is the strictest Reflex's compiled frontend runs under (checked in Chromium by
tests/e2e): its pages boot from inline module scripts and `rx.call_script` evaluates strings, so scripts need
'unsafe-inline' and 'unsafe-eval'; everything else is locked to this origin. What it buys regardless: no framing
(clickjacking of "Approve and complete" or refunds), no plugins, no <base> hijack, forms post only here, and the
page can connect only to this origin (a script injected despite escaping cannot send data elsewhere).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.config import Settings


def content_security_policy(extra_img_sources: tuple[str, ...] = ()) -> str:
    img = " ".join(("'self'", "data:", "blob:", "https:", *extra_img_sources))
    return "; ".join([
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        f"img-src {img}",
        "font-src 'self' data:",
        "connect-src 'self'",
        "media-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def security_headers(*, https: bool, extra_img_sources: tuple[str, ...] = ()) -> list[tuple[bytes, bytes]]:
    headers = {
        "content-security-policy": content_security_policy(extra_img_sources),
        "x-frame-options": "DENY",
        "x-content-type-options": "nosniff",
        "referrer-policy": "strict-origin-when-cross-origin",
        "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
        "cross-origin-opener-policy": "same-origin",
    }
    if https:  # HSTS over plain http would be ignored by browsers, and pins nothing
        headers["strict-transport-security"] = "max-age=31536000; includeSubDomains"
    return [(k.encode(), v.encode()) for k, v in headers.items()]


class SecurityHeaders:
    """Adds the headers to every HTTP response (a header the route set itself wins), and refuses a WebSocket
    whose Origin is another host: the session cookie rides along with any handshake the browser makes, so a page
    elsewhere must not be able to open the app's socket (cross-site WebSocket hijacking)."""

    def __init__(self, app: ASGIApp, *, https: bool, extra_img_sources: tuple[str, ...] = ()):
        self.app = app
        self.headers = security_headers(https=https, extra_img_sources=extra_img_sources)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            if not same_origin(_scope_headers(scope)):  # browsers always send Origin on WebSocket handshakes
                await send({"type": "websocket.close", "code": 1008})
                return
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *((k, v) for k, v in self.headers if k not in present)]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def same_origin(headers: Mapping[str, str], *, require_origin: bool = False) -> bool:
    """Whether the browser says the request comes from a page of this very origin: Fetch Metadata where sent, else
    Origin against Host. Without either (a link followed, a non-browser client) it passes unless `require_origin`.
    `headers` is looked up by lower-case name (Starlette's Headers, or a dict built from an ASGI scope)."""
    site = headers.get("sec-fetch-site", "")
    if site and site not in ("same-origin", "none"):
        return False
    origin = headers.get("origin", "")
    if not origin:
        return not require_origin
    return urlsplit(origin).netloc.lower() == headers.get("host", "").lower()


def _scope_headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def with_security_headers(settings: Settings):
    """The api_transformer for rx.App: wraps the whole ASGI app (pages, /_event, /_upload, the REST API)."""
    extra = ()
    if settings.s3_endpoint_url:  # an S3-compatible server on its own origin (e.g. MinIO over http)
        parts = urlsplit(settings.s3_endpoint_url)
        extra = (f"{parts.scheme}://{parts.netloc}",)
    https = settings.public_url.startswith("https://")
    return lambda app: SecurityHeaders(app, https=https, extra_img_sources=extra)
