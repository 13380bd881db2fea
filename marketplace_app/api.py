"""REST API for mobile clients and integrations, mounted beside the Reflex app (`/api/v1`).

Thin like the Reflex layer: resolve tenant from Host, authenticate, call one service.
"""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel

from backend.accounts.addresses import client_address
from backend.identity import Caller, TenantPublic
from backend.bootstrap import services
from backend.errors import AuthenticationFailed, DomainError, Throttled, ValidationFailed
from backend.payments.ports import PaymentUnavailable, WebhookInvalid
from backend.storage.ports import is_public
from marketplace_app.security_headers import same_origin
from marketplace_app.notification_hooks import router as notification_hooks_router
from marketplace_app.pwa import router as pwa_router
from marketplace_app.web_session import router as web_session_router

api = FastAPI(title="Marketplace API", version="1", docs_url="/api/docs", openapi_url="/api/openapi.json")
api.include_router(web_session_router)
api.include_router(notification_hooks_router)
api.include_router(pwa_router)  # manifest, icons, service worker, offline page


def current_tenant(request: Request) -> TenantPublic:
    tenant = services().tenants.for_host(request.headers.get("host", ""))
    if tenant is None:
        raise HTTPException(404, "Marketplace not found")
    if not tenant.is_active:
        raise HTTPException(403, "This marketplace is suspended")
    return tenant


def bearer_token(authorization: str = Header(default="")) -> str:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401, "Missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    return token.strip()


def session_token(request: Request, authorization: str = Header(default="")) -> str:
    """Bearer token (mobile) or the browser's session cookie (downloads linked from the web app).

    The cookie counts only for requests from this very origin: Reflex's CORS layer echoes any Origin with
    credentials allowed, and SameSite=Lax still sends the cookie from sibling subdomains (other tenants), so a
    script elsewhere must not be able to read a user's data with their cookie."""
    if authorization:
        return bearer_token(authorization)
    token = request.cookies.get("mp_session", "")
    if not token:
        raise HTTPException(401, "Log in first", headers={"WWW-Authenticate": "Bearer"})
    if not same_origin(request.headers):
        raise HTTPException(403, "The session cookie is only accepted from this site's own pages")
    return token


def current_actor(tenant: TenantPublic = Depends(current_tenant), token: str = Depends(session_token)) -> Caller:
    actor = services().accounts.resolve_session(tenant, token)
    if actor is None:
        raise HTTPException(401, "Session expired or revoked", headers={"WWW-Authenticate": "Bearer"})
    return actor


class LoginBody(BaseModel):
    email: str
    password: str


class UserOut(BaseModel):
    id: int
    email: str
    name: str
    role: str
    email_verified: bool

    @classmethod
    def of(cls, a: Caller) -> "UserOut":
        return cls(id=a.id, email=a.email, name=a.name, role=a.role.value, email_verified=a.email_verified)


class LoginOut(BaseModel):
    token: str
    user: UserOut


@api.get("/api/v1/health")
def health() -> dict:
    with services().db.engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    return {"status": "ok"}


def client_ip(request: Request) -> str:
    """The caller's address under the same trusted-proxy rule as the Reflex socket (backend.accounts.addresses)."""
    return client_address(request.client.host if request.client else "",
                          ",".join(request.headers.getlist("x-forwarded-for")),
                          services().settings.trusted_proxy_hops)


@api.post("/api/v1/auth/login", response_model=LoginOut)
async def login(body: LoginBody, request: Request, tenant: TenantPublic = Depends(current_tenant)) -> LoginOut:
    ip = client_ip(request)
    try:
        actor, token = await run_in_threadpool(services().accounts.login, tenant, body.email, body.password, ip=ip,
                                               user_agent=request.headers.get("user-agent", ""))
    except ValidationFailed as exc:
        raise HTTPException(422, exc.errors) from None
    except Throttled as exc:
        raise HTTPException(429, exc.message) from None
    except AuthenticationFailed as exc:
        raise HTTPException(401, exc.message) from None
    except DomainError as exc:
        raise HTTPException(400, exc.message) from None
    return LoginOut(token=token, user=UserOut.of(actor))


@api.post("/api/v1/auth/logout", status_code=204)
def logout(tenant: TenantPublic = Depends(current_tenant), token: str = Depends(bearer_token)) -> Response:
    services().accounts.logout(tenant, token)
    return Response(status_code=204)


@api.get("/api/v1/me", response_model=UserOut)
def me(actor: Caller = Depends(current_actor)) -> UserOut:
    return UserOut.of(actor)


PRIVATE_HEADERS = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}


@api.get("/api/v1/objects/{key:path}")
def get_public_object(key: str, tenant: TenantPublic = Depends(current_tenant)) -> Response:
    """Public objects only (avatars, portfolio images), and only on their own tenant's host. Anything else is
    private and has no lasting URL: it is 404 here whether or not it exists."""
    if not key.startswith(f"t{tenant.id}/") or not is_public(key):
        raise HTTPException(404, "Not found")
    try:
        data, content_type = services().store.get(key)
    except KeyError:
        raise HTTPException(404, "Not found") from None
    return Response(data, media_type=content_type, headers={"Cache-Control": "public, max-age=31536000, immutable",
                                                            "X-Content-Type-Options": "nosniff"})


@api.get("/api/v1/files/{key:path}")
def get_signed_object(key: str, expires: int = 0, signature: str = "",
                      tenant: TenantPublic = Depends(current_tenant)) -> Response:
    """A private object through a short-lived signed URL, minted by a service after it checked the caller's right
    to it (embedded store; S3's presigned URLs go to S3). Expired, tampered or other-tenant URLs are 404."""
    if not key.startswith(f"t{tenant.id}/"):
        raise HTTPException(404, "Not found")
    try:
        data, content_type = services().store.open_signed(key, expires, signature)
    except KeyError:
        raise HTTPException(404, "Not found") from None
    return Response(data, media_type=content_type, headers=PRIVATE_HEADERS)


@api.get("/api/v1/orders/{order_id}/invoice")
def invoice(order_id: int, tenant: TenantPublic = Depends(current_tenant),
            actor: Caller = Depends(current_actor)) -> Response:
    """The order's PDF invoice, for its client, its professional and the marketplace's admins only."""
    try:
        data, filename = services().orders.invoice(tenant, actor, order_id)
    except DomainError as exc:
        raise HTTPException(404, exc.message) from None
    return Response(data, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"', **PRIVATE_HEADERS})


@api.post("/api/webhooks/{provider}")
async def payment_webhook(provider: str, request: Request) -> dict:
    """Provider events: verified, stored once (replays change nothing), processed by a background job."""
    payload = await request.body()
    headers = {k: v for k, v in request.headers.items()}
    try:
        event_row_id = await run_in_threadpool(services().payments.record_webhook, provider, payload, headers)
    except WebhookInvalid as exc:
        raise HTTPException(400, exc.message) from None
    except PaymentUnavailable as exc:  # could not verify now: a 5xx makes the provider deliver again
        raise HTTPException(503, exc.message) from None
    if event_row_id is None:
        return {"received": True, "duplicate_or_ignored": True}
    await run_in_threadpool(services().jobs.process_webhook, event_row_id)
    return {"received": True}
