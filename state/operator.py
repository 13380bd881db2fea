"""Platform operator console: create, brand and suspend marketplaces; their KPIs side by side."""

from __future__ import annotations

import dataclasses

import reflex as rx

from backend.identity import Caller, TenantStatus
from backend.bootstrap import services
from backend.tenancy.models import CURRENCIES
from state.analytics import DEFAULT_PRESET, PRESETS, MarketplaceKpis, operator_kpis
from state.app_state import FAILED, AppState, FormMixin, guarded, writing


async def _admit_operator(state: OperatorState):
    """The platform operator behind the console's own session cookie (valid on any host), else the console's login."""
    operator = await state._run(services().accounts.resolve_operator_session, state._operator_token())
    async with writing(state):
        state.operator_access = "ok" if operator is not None else "loading"
    return operator, None if operator is not None else rx.redirect("/operator/login")


def _checkout_choices() -> tuple[list[str], str, str]:
    """The providers configured on this installation (and "none"), a new marketplace's default, and what to set up
    when there is none."""
    platform = services().platform
    return [*platform.providers, "none"], platform.default_provider() or "none", platform.setup_hint()


# Guard a console handler: it is called as `handler(self, operator, *args)`, like `requires` does for tenant pages.
operator_only = guarded(_admit_operator)


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
    currencies: list[str] = list(CURRENCIES)
    base_domain: str = ""  # marketplaces are served at <slug>.<base_domain>
    # every marketplace's KPIs for a preset range (AnalyticsService.overview)
    kpi_preset: str = DEFAULT_PRESET
    kpi_period: str = ""
    kpi_columns: list[str] = []
    kpi_rows: list[MarketplaceKpis] = []
    kpi_loading: bool = False
    _kpi_seq: int = 0

    async def _reload(self, operator: Caller) -> None:
        self.tenants = [dataclasses.asdict(t) for t in await self._run(services().platform.list_tenants, operator)]

    @rx.event
    @operator_only
    async def load(self, operator: Caller):
        self._clear_errors()
        self.operator_name = operator.name
        self.providers, self.default_provider, self.setup_hint = await self._run(_checkout_choices)
        self.base_domain = services().settings.base_domain
        await self._reload(operator)
        return OperatorState.load_kpis

    @rx.event
    def set_kpi_preset(self, preset: str | list[str]):
        if isinstance(preset, str) and preset in {value for value, _, _ in PRESETS}:
            self.kpi_preset = preset
            return OperatorState.load_kpis
        return None

    @rx.event(background=True)
    @operator_only
    async def load_kpis(self, operator: Caller):
        """Every marketplace's KPIs (a dashboard's worth of reading per marketplace when cold: off the state lock)."""
        async with self:
            self._kpi_seq += 1
            seq, preset, self.kpi_loading = self._kpi_seq, self.kpi_preset, True
        try:
            period, columns, rows = await self._run(operator_kpis, operator, preset)
        finally:
            async with self:
                if seq == self._kpi_seq:
                    self.kpi_loading = False
        async with self:
            if seq == self._kpi_seq:
                self.kpi_period, self.kpi_columns, self.kpi_rows = period, columns, rows

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
    @operator_only
    async def create(self, operator: Caller, form: dict):
        self.busy = True
        yield
        tenant = await self._call(services().platform.create_tenant, operator, form)
        if tenant is FAILED:
            return
        self.create_open = False
        await self._reload(operator)
        yield rx.toast.success(f"{tenant.name} is live at {tenant.slug}.{self.base_domain}")
        yield OperatorState.load_kpis

    @rx.event
    @operator_only
    async def save_branding(self, operator: Caller, form: dict):
        tenant = await self._call(services().platform.update_branding, operator, int(self.editing.get("id", 0)), form)
        if tenant is FAILED:
            return None
        self.edit_open = False
        await self._reload(operator)
        return rx.toast.success(f"Saved {tenant.name}.")

    @rx.event
    @operator_only
    async def set_status(self, operator: Caller, tenant_id: int, status: str):
        await self._run(services().platform.set_status, operator, tenant_id, TenantStatus(status))
        await self._reload(operator)
        return rx.toast.success("Marketplace suspended." if status == "suspended" else "Marketplace reinstated.")

    @rx.event
    async def operator_logout(self):
        if token := self._operator_token():
            await self._run(services().accounts.operator_logout, token)
        return self._end_session("operator", "/operator/login")
