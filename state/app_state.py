"""AppState: who is calling, on which tenant. Only session, tenant and role live here.

One way for a handler to guard, reach the backend and report a refusal:
- `@requires(*roles)` resolves the tenant from the page's host and the user from the session cookie (off the event
  loop: both are database lookups), sets `access` (what the page may show), returns the login redirect or the
  refusal, and otherwise calls the handler with a `Ctx` (tenant and caller). The backend services check
  authorization again.
- Every blocking call (a service: database, argon2, a payment provider) goes through `AppState._run`, on
  `asyncio.to_thread`; Reflex 0.10.1 runs a handler inline on the event loop, so a blocking call there stalls every tab.
- A refusal (`DomainError`) shows on the form for form states (`FormMixin._call`); one a guarded handler lets escape
  is shown as a toast by `requires`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any

import reflex as rx
from reflex.istate.proxy import StateProxy

from backend.identity import Caller, Role, TenantPublic
from backend.accounts.tickets import Kind, issue_ticket
from backend.bootstrap import services
from backend.errors import DomainError, ValidationFailed

# Where each role lands after login, and what "Go to my home" opens: the one definition (pages' routes use it too).
HOME_FOR_ROLE: dict[str, str] = {Role.CLIENT: "/client", Role.PROFESSIONAL: "/pro", Role.ADMIN: "/admin"}
MEMBER_ROLES = (Role.CLIENT, Role.PROFESSIONAL, Role.ADMIN)


def go_to(url: str):
    """Navigate in the same tab: app paths through the router, absolute URLs (a provider's hosted
    checkout, or back from it) by a full page load."""
    if url.startswith(("http://", "https://")):
        return rx.call_script(f"window.location.assign({json.dumps(url)})")
    return rx.redirect(url)


@dataclass(frozen=True)
class Ctx:
    """What a guarded handler is called with: the marketplace serving the page and who is calling (None only where
    `requires()` names no role, i.e. on public pages)."""

    tenant: TenantPublic
    caller: Caller | None


def _lookup(host: str, token: str) -> tuple[TenantPublic | None, Caller | None]:
    """Blocking: the tenant serving `host` and the user behind the session `token` on it."""
    tenant = services().tenants.for_host(host)
    caller = services().accounts.resolve_session(tenant, token) if tenant is not None and token else None
    return tenant, caller


def writing(state):
    """Where a handler may write its state: a background task's state (a StateProxy) only inside `async with
    self`, which takes the tab's state lock; a foreground handler already holds it."""
    return state if isinstance(state, StateProxy) else contextlib.nullcontext()


@contextlib.asynccontextmanager
async def busy_while(state, flag: str = "busy"):
    """A background task's busy flag (the button's spinner): set while the slow work runs, reset however it ends."""
    async with writing(state):
        setattr(state, flag, True)
    try:
        yield
    finally:
        async with writing(state):
            setattr(state, flag, False)


def guarded(admit: Callable[[Any], Any]) -> Callable[[Callable], Callable]:
    """Turn `async def handler(self, ctx, *args)` (or an async generator) into a Reflex handler
    `handler(self, *args)`: `await admit(self)` gives (ctx, refusal); with no ctx the refusal is returned, else
    the handler runs with the ctx, and a DomainError it lets escape is shown as a toast.

    Reflex binds an event's arguments by the handler's signature (`OrderState.act("pay")` sends {"action": "pay"}),
    so the wrapper's `__signature__` and annotations leave `ctx` out (upload handlers are found by their
    `list[rx.UploadFile]` annotation). Stack it under `@rx.event`, with or without `background=True`."""

    def decorate(fn: Callable) -> Callable:
        signature = inspect.signature(fn)
        me, ctx_param, *params = signature.parameters.values()
        if inspect.isasyncgenfunction(fn):
            @functools.wraps(fn)
            async def handler(self, *args, **kwargs):
                ctx, refusal = await admit(self)
                if ctx is None:
                    yield refusal
                    return
                try:
                    async for update in fn(self, ctx, *args, **kwargs):
                        yield update
                except DomainError as exc:
                    yield rx.toast.error(exc.message)
        elif inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def handler(self, *args, **kwargs):
                ctx, refusal = await admit(self)
                if ctx is None:
                    return refusal
                try:
                    return await fn(self, ctx, *args, **kwargs)
                except DomainError as exc:
                    return rx.toast.error(exc.message)
        else:
            raise TypeError(f"{fn.__qualname__}: a guarded handler is async (its guard looks the caller up off the "
                            "event loop)")
        handler.__signature__ = signature.replace(parameters=[me, *params])
        handler.__annotations__ = {k: v for k, v in fn.__annotations__.items() if k != ctx_param.name}
        return handler

    return decorate


def requires(*roles: Role, refusal: Callable[[], Any] | None = None,
             reuse_seconds: float = 0.0) -> Callable[[Callable], Callable]:
    """Guard a handler: only on an active marketplace, and (when roles are named) only for a signed-in user with one
    of them; `requires()` lets anyone in, with `ctx.caller` None for a visitor. Sets `access`; a visitor who must
    log in gets the login redirect, a refused caller nothing (the page shows the refusal), or `refusal()` for a
    handler with its own answer. The handler is called as `handler(self, ctx, *args)`.

    `reuse_seconds` is for polls that every open page sends every few seconds (a chat page's tick): they reuse the
    caller this state admitted at most that long ago, with the same session cookie, instead of looking the session
    up again. Hundreds of open pages would otherwise spend a core on session lookups alone (bench/chat.py's tick
    run). Everything else is looked up on every call."""

    async def admit(state):
        if reuse_seconds and (ctx := state._recently_admitted(roles, reuse_seconds)) is not None:
            return ctx, None
        tenant, caller = await state._identify()
        async with writing(state):
            ctx, answer = state._admit(tenant, caller, roles)
        return ctx, (refusal() if refusal is not None and ctx is None else answer)

    return guarded(admit)


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
    # (when, session cookie, Ctx) of the last caller `_admit` let in: server-only (see requires' reuse_seconds)
    _admitted: tuple | None = None
    # development tools (the dev outbox) exist on this installation: ENVIRONMENT=development only
    dev_tools: bool = False

    # ------------------------------------------------------------------ resolution

    def _route_id(self) -> int:
        """The numeric id at the end of a dynamic route like /orders/[order_id] (0 if none)."""
        last = self.router.url.path.rstrip("/").rsplit("/", 1)[-1]
        return int(last) if last.isdigit() else 0

    def _host(self) -> str:
        return self.router.url.netloc or self.router.headers.host

    async def _run(self, fn: Callable, *args, **kwargs):
        """Run one blocking call (a service: database, argon2, a payment provider) off the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def _current_tenant(self) -> TenantPublic | None:
        return await self._run(services().tenants.for_host, self._host())

    async def _identify(self) -> tuple[TenantPublic | None, Caller | None]:
        """The tenant serving this page and the signed-in user (None for a visitor), looked up off the loop."""
        return await self._run(_lookup, self._host(), self._session_token())

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

    def _show_identity(self, tenant: TenantPublic | None, caller: Caller | None) -> None:
        """The tenant's status and branding and the signed-in user, for the layout."""
        if tenant is None:
            self.tenant_status = "missing"
            self._set_actor(None)
            return
        self.tenant_status = "ok" if tenant.is_active else "suspended"
        self.dev_tools = services().notifications.dev_mailbox is not None
        self.tenant_name, self.tenant_slug = tenant.name, tenant.slug
        self.brand_primary, self.brand_accent, self.tenant_logo = (
            tenant.primary_color, tenant.accent_color, tenant.logo_url)
        self._set_actor(caller)

    def _set_actor(self, actor: Caller | None) -> None:
        self.user_id = actor.id if actor else 0
        self.user_role = actor.role.value if actor else ""
        self.user_name = actor.name if actor else ""
        self.user_email = actor.email if actor else ""
        self.email_verified = actor.email_verified if actor else True

    def _admit(self, tenant: TenantPublic | None, caller: Caller | None,
               roles: tuple[Role, ...]) -> tuple[Ctx | None, Any]:
        """Show tenant and user, and decide what the page may show (`access`: the layout renders the page, a
        refusal, or a spinner). Returns (ctx, None) to go ahead, else (None, the login redirect or None)."""
        self._show_identity(tenant, caller)
        if tenant is None or not tenant.is_active:
            self.access = "denied"
            return None, None
        if roles and caller is None:
            self.access = "loading"
            return None, rx.redirect(f"/login?next={self.router.url.path}")
        if roles and caller.role not in roles:
            self.access = "denied"
            return None, None
        self.access = "ok"
        ctx = Ctx(tenant, caller)
        self._admitted = (time.time(), self._session_token(), ctx)  # wall clock: state may move between workers
        return ctx, None

    def _recently_admitted(self, roles: tuple[Role, ...], max_age: float) -> Ctx | None:
        """The caller `_admit` let in at most `max_age` seconds ago on this page, if the session cookie is the same
        and their role still fits; else None (look them up again)."""
        if self._admitted is None:
            return None
        at, token, ctx = self._admitted
        fits = not roles or (ctx.caller is not None and ctx.caller.role in roles)
        return ctx if fits and token == self._session_token() and 0 <= time.time() - at <= max_age else None

    # ------------------------------------------------------------------ events

    @rx.event
    @requires()
    async def load_public(self, ctx: Ctx):
        """Public pages: the marketplace (or that it is missing or paused) and who is signed in, nothing more."""
        return None

    @rx.event
    @requires()
    async def load_guest_only(self, ctx: Ctx):
        """Login/sign-up pages: a signed-in user goes to their home instead."""
        if ctx.caller is not None:
            return rx.redirect(HOME_FOR_ROLE.get(ctx.caller.role, "/"))

    @rx.event
    async def logout(self):
        tenant, token = await self._current_tenant(), self._session_token()
        if tenant is not None and token:
            await self._run(services().accounts.logout, tenant, token)
        self._set_actor(None)
        return self._end_session("user", "/")

    @rx.var
    def home_path(self) -> str:
        return HOME_FOR_ROLE.get(self.user_role, "/")

    @rx.var
    def user_initials(self) -> str:
        parts = [p for p in self.user_name.split() if p]
        return "".join(p[0] for p in parts[:2]).upper() or "?"


FAILED = object()  # returned by FormMixin._call when the service refused


class FormMixin(rx.State, mixin=True):
    """Per-form state, mixed into each form's own state (always with AppState): field errors and a busy flag."""

    errors: dict[str, str] = {}
    form_error: str = ""
    busy: bool = False
    _refusal: str = ""  # the last refusal's message, for a toast that repeats it (`_refused`)

    def _fail(self, exc: DomainError) -> None:
        self.busy = False
        self._refusal = exc.message
        if isinstance(exc, ValidationFailed):
            self.errors = exc.errors
            self.form_error = ""
            return
        self.errors = {}
        self.form_error = exc.message

    def _clear_errors(self) -> None:
        self.errors = {}
        self.form_error = ""

    def _reset_form(self) -> None:
        self._clear_errors()
        self.busy = False

    def _refused(self, *fields: str):
        """The refusal just shown on the form, as a toast as well: the first of these fields' errors, else the
        refusal's message."""
        return rx.toast.error(next((self.errors[f] for f in fields if f in self.errors), self._refusal))

    async def _call(self, fn: Callable, *args, **kwargs):
        """A form's way to call a service: run it off the event loop (AppState._run; a coroutine function, like
        reading uploads, is awaited as it is). A refusal goes onto the form (field errors or the form's message)
        and FAILED is returned; success clears the form's errors and busy flag."""
        try:
            if inspect.iscoroutinefunction(fn):
                result = await fn(*args, **kwargs)
            else:
                result = await self._run(fn, *args, **kwargs)
        except DomainError as exc:
            async with writing(self):
                self._fail(exc)
            return FAILED
        async with writing(self):
            self._reset_form()
        return result
