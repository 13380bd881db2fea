"""AppState: who is calling, on which tenant. Only session, tenant and role live here.

Every page's state subclasses AppState; its on_load calls `self._guard(...)` first, which
resolves the tenant from the page's host and the user from the session cookie, and
decides what the page may show. The backend services check authorization again.
"""

from __future__ import annotations

import asyncio
import json

import reflex as rx

from backend.accounts.models import Actor, Role
from backend.bootstrap import services
from backend.errors import DomainError, ValidationFailed
from backend.tenancy.models import TenantPublic

SESSION_MAX_AGE = 14 * 24 * 3600


def go_to(url: str):
    """Navigate in the same tab: app paths through the router, absolute URLs (a provider's hosted
    checkout, or back from it) by a full page load."""
    if url.startswith(("http://", "https://")):
        return rx.call_script(f"window.location.assign({json.dumps(url)})")
    return rx.redirect(url)
HOME_FOR_ROLE = {Role.CLIENT: "/client", Role.PROFESSIONAL: "/pro", Role.ADMIN: "/admin"}


class AppState(rx.State):
    session_token: str = rx.Cookie("", name="mp_session", max_age=SESSION_MAX_AGE, same_site="lax")
    # Platform operators have their own session, valid on any host, for the /operator console.
    operator_token: str = rx.Cookie("", name="mp_operator", max_age=24 * 3600, same_site="strict")

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

    # ------------------------------------------------------------------ resolution

    def _route_id(self) -> int:
        """The numeric id at the end of a dynamic route like /orders/[order_id] (0 if none)."""
        last = self.router.url.path.rstrip("/").rsplit("/", 1)[-1]
        return int(last) if last.isdigit() else 0

    def _host(self) -> str:
        return self.router.url.netloc or self.router.headers.host

    def _tenant(self) -> TenantPublic | None:
        return services().tenants.for_host(self._host())

    def _actor(self) -> Actor | None:
        tenant = self._tenant()
        if tenant is None or not self.session_token:
            return None
        return services().accounts.resolve_session(tenant, self.session_token)

    def _resolve(self) -> tuple[TenantPublic | None, Actor | None]:
        tenant = self._tenant()
        if tenant is None:
            self.tenant_status = "missing"
            self._set_actor(None)
            return None, None
        self.tenant_status = "ok" if tenant.is_active else "suspended"
        self.tenant_name, self.tenant_slug = tenant.name, tenant.slug
        self.brand_primary, self.brand_accent, self.tenant_logo = (
            tenant.primary_color, tenant.accent_color, tenant.logo_url)
        actor = services().accounts.resolve_session(tenant, self.session_token) if self.session_token else None
        self._set_actor(actor)
        return tenant, actor

    def _set_actor(self, actor: Actor | None) -> None:
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
        tenant = self._tenant()
        if tenant is not None and self.session_token:
            await asyncio.to_thread(services().accounts.logout, tenant, self.session_token)
        self.session_token = ""
        self._set_actor(None)
        # Setting the cookie var to "" clears it in the browser; the server-side session is revoked above.
        return [rx.redirect("/"), rx.toast.info("You are logged out.")]

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
