"""Request-body limits, as pure ASGI middleware (no framework import, reusable around any ASGI app).

A body is refused with 413 before it is read whole: at once when its Content-Length is over the limit
(the wrapped app is never called, so nothing is spooled and, with `Expect: 100-continue`, nothing is
even sent), and while it streams when it has no length (chunked, HTTP/2) or lies about it: the bytes
are counted as the app receives them and, past the limit, the app is told the client went away
(`http.disconnect`, which every ASGI framework unwinds from quietly), whatever it answers is dropped
and the client gets the 413 instead.

Mounted around the whole backend (REST API, payment webhooks, Reflex's /_upload and /_event) in
marketplace_app/marketplace_app.py, as one of Reflex's `api_transformer`s:

    app = rx.App(api_transformer=[api, body_limit(settings, upload_path="/_upload")])

Reflex applies the transformers in order, each wrapping the result of the previous one, so a later
entry wraps everything before it (and the FastAPI `api`, a Starlette app, has Reflex's own routes
mounted inside it).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from functools import partial
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _route_path(scope: Scope) -> str:
    path, root = scope.get("path", "") or "/", scope.get("root_path", "") or ""
    if root and path.startswith(root):
        return path[len(root):] or "/"
    return path


def _matches(path: str, prefix: str) -> bool:
    """`prefix` as whole path segments: /_upload matches /_upload and /_upload/x, never /_uploads."""
    prefix = prefix.rstrip("/")
    return path == prefix or path.startswith(prefix + "/")


class BodyLimit:
    """Refuse HTTP request bodies over a limit with 413. `limits` maps a path prefix to its limit (the
    longest matching prefix wins); every other path gets `default`. WebSocket and lifespan pass through."""

    def __init__(self, app: ASGIApp, *, default: int, limits: Mapping[str, int] | None = None):
        if default <= 0 or any(v <= 0 for v in (limits or {}).values()):
            raise ValueError("body limits must be positive")
        self.app = app
        self.default = default
        self.rules = sorted((limits or {}).items(), key=lambda rule: len(rule[0]), reverse=True)

    def limit_for(self, path: str) -> int:
        return next((limit for prefix, limit in self.rules if _matches(path, prefix)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(_route_path(scope))
        for name, value in scope.get("headers") or ():
            if name.lower() == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    continue  # the server refuses a malformed length; counting below still applies
                if declared > limit:
                    await _refuse(send, limit)
                    return

        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's reaction to the cut-off body is replaced by the 413 below
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded or started:
                raise
        if exceeded and not started:
            await _refuse(send, limit)


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"Request body too large: the limit here is {limit} bytes."}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def body_limit(settings: Any, *, upload_path: str = "/_upload") -> Callable[[ASGIApp], BodyLimit]:
    """The transformer for `rx.App(api_transformer=[...])`, from backend.config.Settings: the upload route
    gets MAX_UPLOAD_REQUEST_BYTES, everything else (REST API, webhooks, /_event polling) gets
    MAX_REQUEST_BODY_BYTES."""
    return partial(BodyLimit, default=settings.max_request_body_bytes,
                   limits={upload_path: settings.max_upload_request_bytes})
