"""Professionals: the leads inbox, sending quotes, declining leads, and their quotes."""

from __future__ import annotations

from datetime import date, timedelta

import reflex as rx

from backend.identity import Role
from backend.bootstrap import services
from backend.errors import DomainError
from backend.orders.quotes import QuoteRow, RequestRow
from state.app_state import FAILED, AppState, FormMixin


class LeadsState(FormMixin, AppState):
    leads: list[RequestRow] = []
    loaded: bool = False
    quoting: RequestRow | None = None
    quote_open: bool = False
    default_valid_until: str = ""

    def _reload(self, tenant, actor) -> None:
        self.leads = services().quotes.leads(tenant, actor)
        self.loaded = True

    @rx.event
    def load(self):
        self.loaded = False
        self._reset_form()
        tenant, actor, redirect = self._guard(Role.PROFESSIONAL)
        if redirect or self.access != "ok":
            return redirect
        self._reload(tenant, actor)

    @rx.event
    def open_quote(self, lead: dict):
        self._reset_form()
        self.quoting = RequestRow(**lead)
        self.default_valid_until = (date.today() + timedelta(days=7)).isoformat()
        self.quote_open = True

    @rx.event
    def set_quote_open(self, value: bool):
        self.quote_open = value

    @rx.event
    async def send_quote(self, form: dict):
        tenant, actor, _ = self._guard(Role.PROFESSIONAL)
        if self.quoting is None or self.access != "ok":
            return
        self.busy = True
        yield
        if await self._call(services().quotes.send_quote, tenant, actor, self.quoting.id, form) is FAILED:
            return
        self.quote_open = False
        self._reload(tenant, actor)
        yield rx.toast.success("Quote sent. You'll see it under My quotes.")

    @rx.event
    def decline(self, request_id: int):
        tenant, actor, _ = self._guard(Role.PROFESSIONAL)
        try:
            services().quotes.decline_lead(tenant, actor, request_id)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self._reload(tenant, actor)
        return rx.toast.info("Lead hidden.")


class MyQuotesState(AppState):
    quotes: list[QuoteRow] = []
    chats: dict[str, int] = {}  # request id -> conversation id
    loaded: bool = False

    @rx.event
    def load(self):
        self.loaded = False
        tenant, actor, redirect = self._guard(Role.PROFESSIONAL)
        if redirect or self.access != "ok":
            return redirect
        self.quotes = services().quotes.my_quotes(tenant, actor)
        self.chats = {str(c.request_id): c.id for c in services().chat.conversations(tenant, actor) if c.request_id}
        self.loaded = True

    @rx.event
    def withdraw(self, quote_id: int):
        tenant, actor, _ = self._guard(Role.PROFESSIONAL)
        try:
            services().quotes.withdraw_quote(tenant, actor, quote_id)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self.quotes = services().quotes.my_quotes(tenant, actor)
        return rx.toast.info("Quote withdrawn.")
