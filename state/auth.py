"""Sign-up, login, password reset and email verification handlers."""

from __future__ import annotations

from urllib.parse import urlsplit

import reflex as rx

from backend.accounts.addresses import client_address
from backend.bootstrap import services
from backend.errors import DomainError
from state.app_state import FAILED, HOME_FOR_ROLE, AppState, Ctx, FormMixin, requires


def _client_ip(state: rx.State) -> str:
    """The browser's address, by the trusted-proxy rule the REST API applies too. Reflex puts the socket's
    TCP peer under `asgi-scope-client` among the handshake headers (replacing any header of that name)."""
    headers = state.router.headers.raw_headers
    return client_address(headers.get("asgi-scope-client") or state.router.session.client_ip,
                          headers.get("x-forwarded-for", ""), services().settings.trusted_proxy_hops)


def _safe_next(path: str, default: str) -> str:
    """Only a path on this site: never send a browser to another host after login (open redirect). Browsers read a
    backslash as a slash and drop tabs and newlines, so such a "path" could turn protocol-relative (//evil.example)."""
    if not path.startswith("/") or any(ch == "\\" or ord(ch) < 32 or ord(ch) == 127 for ch in path):
        return default
    parts = urlsplit(path)
    return default if path.startswith("//") or parts.scheme or parts.netloc else path


class SignupState(FormMixin, AppState):
    role_choice: str = "client"

    @rx.event
    def load(self):
        self._reset_form()
        role = self.router.url.query_parameters.get("role", "")
        self.role_choice = role if role in ("client", "professional") else "client"
        return AppState.load_guest_only

    @rx.event
    def set_role_choice(self, value: str):
        self.role_choice = value

    @rx.event
    @requires()
    async def submit(self, ctx: Ctx, form: dict):
        self.busy = True
        yield
        data = {"email": form.get("email", ""), "password": form.get("password", ""),
                "full_name": form.get("full_name", ""), "role": self.role_choice}
        result = await self._call(services().accounts.sign_up, ctx.tenant, data, ip=_client_ip(self),
                                  user_agent=self.router.headers.user_agent)
        if result is FAILED:
            return
        actor, token = result
        yield rx.toast.success("Welcome! Check your email to confirm your address.")
        yield self._start_session("user", token, HOME_FOR_ROLE[actor.role], ctx.tenant.id)


class LoginState(FormMixin, AppState):
    @rx.event
    def load(self):
        self._reset_form()
        return AppState.load_guest_only

    @rx.event
    @requires()
    async def submit(self, ctx: Ctx, form: dict):
        self.busy = True
        yield
        result = await self._call(services().accounts.login, ctx.tenant, form.get("email", ""),
                                  form.get("password", ""), ip=_client_ip(self),
                                  user_agent=self.router.headers.user_agent)
        if result is FAILED:
            return
        actor, token = result
        next_url = _safe_next(self.router.url.query_parameters.get("next", ""), HOME_FOR_ROLE[actor.role])
        yield self._start_session("user", token, next_url, ctx.tenant.id)


class ForgotState(FormMixin, AppState):
    sent_to: str = ""

    @rx.event
    def load(self):
        self._reset_form()
        self.sent_to = ""
        return AppState.load_public

    @rx.event
    @requires()
    async def submit(self, ctx: Ctx, form: dict):
        self.busy = True
        yield
        email = form.get("email", "")
        if await self._call(services().accounts.request_password_reset, ctx.tenant, email,
                            ip=_client_ip(self)) is not FAILED:
            self.sent_to = email.strip()


class ResetState(FormMixin, AppState):
    done: bool = False

    @rx.event
    def load(self):
        self._reset_form()
        self.done = False
        return AppState.load_public

    @rx.event
    @requires()
    async def submit(self, ctx: Ctx, form: dict):
        if form.get("password", "") != form.get("confirm", ""):
            self.errors = {"confirm": "The two passwords don't match"}
            return
        self.busy = True
        yield
        token = self.router.url.query_parameters.get("token", "")
        if await self._call(services().accounts.reset_password, ctx.tenant, token,
                            form.get("password", "")) is FAILED:
            return
        self.done = True
        yield rx.toast.success("Password changed. Log in with your new password.")


class VerifyState(AppState):
    verify_status: str = "pending"  # pending | done | failed
    verify_message: str = ""

    @rx.event
    @requires()
    async def load(self, ctx: Ctx):
        token = self.router.url.query_parameters.get("token", "")
        try:
            email = await self._run(services().accounts.verify_email, ctx.tenant, token)
        except DomainError as exc:
            self.verify_status, self.verify_message = "failed", exc.message
            return
        self.verify_status, self.verify_message = "done", f"{email} is confirmed. Thank you!"
        if self.user_email == email:
            self.email_verified = True

    @rx.event
    @requires()
    async def resend(self, ctx: Ctx):
        await self._run(services().accounts.resend_verification, ctx.tenant, ctx.caller, ip=_client_ip(self))
        return rx.toast.success("We sent you a new confirmation link.")


class OperatorLoginState(FormMixin, AppState):
    @rx.event
    async def load(self):
        self._reset_form()
        self._show_identity(*await self._identify())
        if await self._run(services().accounts.resolve_operator_session, self._operator_token()):
            return rx.redirect("/operator")

    @rx.event
    async def submit(self, form: dict):
        self.busy = True
        yield
        result = await self._call(services().accounts.operator_login, form.get("email", ""),
                                  form.get("password", ""), ip=_client_ip(self))
        if result is FAILED:
            return
        _, token = result
        yield self._start_session("operator", token, "/operator")
