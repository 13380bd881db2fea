"""The browser session as an HttpOnly cookie.

Reflex talks to the browser over a WebSocket, which cannot set cookies, and an `rx.Cookie` is written by
JavaScript, so it cannot be HttpOnly. Instead: a login handler gets a sealed, one-minute ticket
(`backend.accounts.tickets`), the page POSTs it here, and this HTTP response sets the cookie (HttpOnly, SameSite,
Secure under https). A ticket is redeemed once (the session row records it), so a copy is worthless. The next page load opens a new WebSocket whose handshake carries the cookie; Reflex keeps
handshake cookies on the server (`router.headers.cookie`) and never sends them to the page. Logout revokes the
session in the backend and clears the cookie here.

Both routes refuse cross-origin callers (Origin must match Host), so another site cannot log a visitor into an
attacker's account (login CSRF) or log them out.
"""

from __future__ import annotations


from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel

from backend.accounts.tickets import redeem_ticket
from backend.bootstrap import services
from marketplace_app.security_headers import same_origin

USER_COOKIE = "mp_session"
OPERATOR_COOKIE = "mp_operator"
OPERATOR_SESSION_SECONDS = 24 * 3600

router = APIRouter()


class TicketBody(BaseModel):
    ticket: str


def _same_origin(request: Request) -> None:
    if not same_origin(request.headers, require_origin=True):
        raise HTTPException(403, "Cross-origin requests may not change the session")


def _secure() -> bool:
    return services().settings.public_url.startswith("https://")


def _set(response: Response, name: str, value: str, max_age: int, same_site: str) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, secure=_secure(),
                        samesite=same_site)


def _clear(response: Response, name: str, same_site: str) -> None:
    response.delete_cookie(name, path="/", httponly=True, secure=_secure(), samesite=same_site)


@router.post("/api/v1/session", status_code=204)
async def start_session(body: TicketBody, request: Request) -> Response:
    """Turn a login ticket into the HttpOnly session cookie (user: this tenant's host; operator: any host)."""
    _same_origin(request)
    svc = services()
    ticket = redeem_ticket(svc.settings, body.ticket)
    if ticket is None:
        raise HTTPException(400, "This sign-in link has expired. Please log in again.")
    response = Response(status_code=204, headers={"Cache-Control": "no-store"})
    if ticket.kind == "operator":
        if await run_in_threadpool(svc.accounts.claim_operator_browser_session, ticket.token) is None:
            raise HTTPException(400, "This sign-in has expired. Please log in again.")
        _set(response, OPERATOR_COOKIE, ticket.token, OPERATOR_SESSION_SECONDS, "strict")
        return response
    tenant = svc.tenants.for_host(request.headers.get("host", ""))
    if tenant is None or tenant.id != ticket.tenant_id:
        raise HTTPException(400, "This sign-in belongs to another marketplace.")
    if await run_in_threadpool(svc.accounts.claim_browser_session, tenant, ticket.token) is None:
        raise HTTPException(400, "This sign-in has expired. Please log in again.")
    _set(response, USER_COOKIE, ticket.token, svc.settings.session_days * 24 * 3600, "lax")
    return response


@router.delete("/api/v1/session", status_code=204)
async def end_session(request: Request, kind: str = "user") -> Response:
    """Revoke the session behind the cookie and clear it."""
    _same_origin(request)
    svc = services()
    response = Response(status_code=204, headers={"Cache-Control": "no-store"})
    if kind == "operator":
        if token := request.cookies.get(OPERATOR_COOKIE, ""):
            await run_in_threadpool(svc.accounts.operator_logout, token)
        _clear(response, OPERATOR_COOKIE, "strict")
        return response
    tenant = svc.tenants.for_host(request.headers.get("host", ""))
    if tenant is not None and (token := request.cookies.get(USER_COOKIE, "")):
        await run_in_threadpool(svc.accounts.logout, tenant, token)
    _clear(response, USER_COOKIE, "lax")
    return response
