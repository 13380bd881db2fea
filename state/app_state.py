"""AppState: who is calling, on which tenant. Only session, tenant and role live here.

Every page's state subclasses AppState; its on_load calls `self._guard(...)` first, which
resolves the tenant from the page's host and the user from the session cookie, and
decides what the page may show. The backend services check authorization again.
"""

from __future__ import annotations

import asyncio
import json
from http.cookies import CookieError, SimpleCookie

import reflex as rx

from backend.identity import Caller, Role, TenantPublic
from backend.accounts.tickets import Kind, issue_ticket
from backend.bootstrap import services
from backend.errors import DomainError, ValidationFailed


def go_to(url: str):
    """Navigate in the same tab: app paths through the router, absolute URLs (a provider's hosted
    checkout, or back from it) by a full page load."""
    if url.startswith(("http://", "https://")):
        return rx.call_script(f"window.location.assign({json.dumps(url)})")
    return rx.redirect(url)
HOME_FOR_ROLE = {Role.CLIENT: "/client", Role.PROFESSIONAL: "/pro", Role.ADMIN: "/admin"}


class AppState(rx.State):
    # The session lives in HttpOnly cookies that no script can read (see marketplace_app/web_session.py): the server
    # reads them from the WebSocket handshake (`_session_token`). Operators have their own, valid on any host.

    # tenant serving this page: loading | ok | missing | suspended
    tenant_status: str = "loading"
    tenant_name: str = ""
    tenant_slug: str = ""
    brand_primary: str = "#4F46E5"
    brand_accent: str = "#F59E0B"
    tenant_logo: str = ""

    # the signed-in user (0 = nobody)
    user_id: int = 0
    user_role: str = ""
    user_name: str = ""
    user_email: str = ""
    email_verified: bool = True

    # what the current page may show: loading | ok | denied
    access: str = "loading"
    # development tools (the dev outbox) exist on this installation: ENVIRONMENT=development only
    dev_tools: bool = False

    # ------------------------------------------------------------------ resolution

    def _route_id(self) -> int:
        """The numeric id at the end of a dynamic route like /orders/[order_id] (0 if none)."""
        last = self.router.url.path.rstrip("/").rsplit("/", 1)[-1]
        return int(last) if last.isdigit() else 0

    def _host(self) -> str:
        return self.router.url.netloc or self.router.headers.host

    def _tenant(self) -> TenantPublic | None:
        return services().tenants.for_host(self._host())

    def _cookie(self, name: str) -> str:
        """A cookie from the WebSocket handshake (HttpOnly ones included); Reflex keeps these server-side."""
        jar = SimpleCookie()
        try:
            jar.load(self.router.headers.cookie or "")
        except CookieError:
            return ""
        morsel = jar.get(name)
        return morsel.value if morsel else ""

    def _session_token(self) -> str:
        return self._cookie("mp_session")

    def _operator_token(self) -> str:
        return self._cookie("mp_operator")

    def _start_session(self, kind: Kind, token: str, next_url: str, tenant_id: int | None = None):
        """Hand the page a one-minute ticket that it POSTs to /api/v1/session, which sets the HttpOnly cookie;
        then a full page load, so the new WebSocket carries it."""
        ticket = issue_ticket(services().settings, kind, token, tenant_id)
        return rx.call_script(
            "fetch('/api/v1/session', {method: 'POST', credentials: 'same-origin', "
            "headers: {'Content-Type': 'application/json'}, "
            f"body: JSON.stringify({{ticket: {json.dumps(ticket)}}})}})"
            f".then(r => window.location.assign(r.ok ? {json.dumps(next_url)} : '/login'))")

    @staticmethod
    def _end_session(kind: Kind, next_url: str):
        """Clear the HttpOnly cookie (the backend already revoked the session), then a full page load."""
        return rx.call_script(
            f"fetch('/api/v1/session?kind={kind}', {{method: 'DELETE', credentials: 'same-origin'}})"
            f".finally(() => window.location.assign({json.dumps(next_url)}))")

    def _actor(self) -> Caller | None:
        tenant = self._tenant()
        token = self._session_token()
        if tenant is None or not token:
            return None
        return services().accounts.resolve_session(tenant, token)

    def _resolve(self) -> tuple[TenantPublic | None, Caller | None]:
        tenant = self._tenant()
        if tenant is None:
            self.tenant_status = "missing"
            self._set_actor(None)
            return None, None
        self.tenant_status = "ok" if tenant.is_active else "suspended"
        self.dev_tools = services().notifications.dev_mailbox is not None
        self.tenant_name, self.tenant_slug = tenant.name, tenant.slug
        self.brand_primary, self.brand_accent, self.tenant_logo = (
            tenant.primary_color, tenant.accent_color, tenant.logo_url)
        token = self._session_token()
        actor = services().accounts.resolve_session(tenant, token) if token else None
        self._set_actor(actor)
        return tenant, actor

    def _set_actor(self, actor: Caller | None) -> None:
        self.user_id = actor.id if actor else 0
        self.user_role = actor.role.value if actor else ""
        self.user_name = actor.name if actor else ""
        self.user_email = actor.email if actor else ""
        self.email_verified = actor.email_verified if actor else True

    def _guard(self, *roles: Role):
        """Resolve tenant and user for a page. Returns (tenant, actor, redirect-or-None);
        `access` tells the layout whether to render the page, a refusal, or a spinner."""
        tenant, actor = self._resolve()
        if tenant is None or not tenant.is_active:
            self.access = "denied"
            return tenant, None, None
        if roles and actor is None:
            self.access = "loading"
            return tenant, None, rx.redirect(f"/login?next={self.router.url.path}")
        if roles and actor.role not in roles:
            self.access = "denied"
            return tenant, actor, None
        self.access = "ok"
        return tenant, actor, None

    # ------------------------------------------------------------------ events

    @rx.event
    def load_public(self):
        _, _, redirect = self._guard()
        return redirect

    @rx.event
    def load_guest_only(self):
        """Login/sign-up pages: a signed-in user goes to their home instead."""
        _, actor, _ = self._guard()
        if actor is not None:
            return rx.redirect(HOME_FOR_ROLE.get(actor.role, "/"))

    @rx.event
    async def logout(self):
        tenant, token = self._tenant(), self._session_token()
        if tenant is not None and token:
            await asyncio.to_thread(services().accounts.logout, tenant, token)
        self._set_actor(None)
        return self._end_session("user", "/")

    @rx.var
    def home_path(self) -> str:
        return {"client": "/client", "professional": "/pro", "admin": "/admin"}.get(self.user_role, "/")

    @rx.var
    def user_initials(self) -> str:
        parts = [p for p in self.user_name.split() if p]
        return "".join(p[0] for p in parts[:2]).upper() or "?"


FAILED = object()  # returned by FormMixin._call when the service refused


class FormMixin(rx.State, mixin=True):
    """Per-form state, mixed into each form's own state: field errors and a busy flag."""

    errors: dict[str, str] = {}
    form_error: str = ""
    busy: bool = False

    def _fail(self, exc: DomainError):
        self.busy = False
        if isinstance(exc, ValidationFailed):
            self.errors = exc.errors
            self.form_error = ""
            return None
        self.errors = {}
        self.form_error = exc.message
        return None

    def _clear_errors(self) -> None:
        self.errors = {}
        self.form_error = ""

    def _reset_form(self) -> None:
        self._clear_errors()
        self.busy = False

    async def _call(self, fn, *args, **kwargs):
        """Run one blocking service call off the event loop (argon2, database).
        A refusal is shown on the form and FAILED returned; success clears the form's errors."""
        try:
            result = await asyncio.to_thread(fn, *args, **kwargs)
        except DomainError as exc:
            self._fail(exc)
            return FAILED
        self._reset_form()
        return result
