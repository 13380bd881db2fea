"""Platform operator console: create, brand and suspend marketplaces."""

from __future__ import annotations

import dataclasses

import reflex as rx

from backend.identity import Caller, TenantStatus
from backend.bootstrap import services
from backend.errors import DomainError
from state.app_state import FAILED, AppState, FormMixin


class OperatorState(FormMixin, AppState):
    operator_name: str = ""
    operator_access: str = "loading"  # loading | ok
    tenants: list[dict] = []
    create_open: bool = False
    edit_open: bool = False
    editing: dict = {}
    # checkout choices: the providers configured on this installation, and "none" (no payments)
    providers: list[str] = ["none"]
    default_provider: str = "none"  # a new marketplace's checkout
    setup_hint: str = ""  # what to configure when no provider is, shown above the marketplaces

    def _operator(self) -> Caller | None:
        return services().accounts.resolve_operator_session(self._operator_token())

    def _reload(self, actor: Caller) -> None:
        self.tenants = [dataclasses.asdict(t) for t in services().platform.list_tenants(actor)]

    @rx.event
    def load(self):
        self._clear_errors()
        actor = self._operator()
        if actor is None:
            self.operator_access = "loading"
            return rx.redirect("/operator/login")
        self.operator_access = "ok"
        self.operator_name = actor.name
        platform = services().platform
        self.providers = [*platform.providers, "none"]
        self.default_provider = platform.default_provider() or "none"
        self.setup_hint = platform.setup_hint()
        self._reload(actor)

    @rx.event
    def set_create_open(self, value: bool):
        self._clear_errors()
        self.create_open = value

    @rx.event
    def open_edit(self, tenant: dict):
        self._clear_errors()
        self.editing = tenant
        self.edit_open = True

    @rx.event
    def set_edit_open(self, value: bool):
        self.edit_open = value

    @rx.event
    async def create(self, form: dict):
        actor = self._operator()
        if actor is None:
            yield rx.redirect("/operator/login")
            return
        self.busy = True
        yield
        tenant = await self._call(services().platform.create_tenant, actor, form)
        if tenant is FAILED:
            return
        self.create_open = False
        self._reload(actor)
        yield rx.toast.success(f"{tenant.name} is live at {tenant.slug}.{services().settings.base_domain}")

    @rx.event
    def save_branding(self, form: dict):
        actor = self._operator()
        if actor is None:
            return rx.redirect("/operator/login")
        try:
            tenant = services().platform.update_branding(actor, int(self.editing.get("id", 0)), form)
        except DomainError as exc:
            return self._fail(exc)
        self._clear_errors()
        self.edit_open = False
        self._reload(actor)
        return rx.toast.success(f"Saved {tenant.name}.")

    @rx.event
    def set_status(self, tenant_id: int, status: str):
        actor = self._operator()
        if actor is None:
            return rx.redirect("/operator/login")
        try:
            services().platform.set_status(actor, tenant_id, TenantStatus(status))
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self._reload(actor)
        return rx.toast.success("Marketplace suspended." if status == "suspended" else "Marketplace reinstated.")

    @rx.event
    def operator_logout(self):
        if token := self._operator_token():
            services().accounts.operator_logout(token)
        return self._end_session("operator", "/operator/login")
