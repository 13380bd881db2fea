"""Orders: lists for every role, and the order page with its timeline and allowed actions."""

from __future__ import annotations

import reflex as rx

from backend.bootstrap import services
from backend.errors import DomainError
from backend.orders.service import OrderView
from backend.payments.ports import CardDetails
from state.app_state import FAILED, AppState, FormMixin

MEMBER_ROLES = ("client", "professional", "admin")


class OrdersState(AppState):
    orders: list[OrderView] = []
    loaded: bool = False

    @rx.event
    def load(self):
        self.loaded = False
        tenant, actor, redirect = self._guard(*MEMBER_ROLES)
        if redirect or self.access != "ok":
            return redirect
        self.orders = services().orders.list_orders(tenant, actor)
        self.loaded = True


class OrderState(FormMixin, AppState):
    order: OrderView | None = None
    loaded: bool = False
    pay_open: bool = False
    note_action: str = ""  # the action waiting for a note (dispute, resolve)
    note_label: str = ""
    note_prompt: str = ""
    test_mode: bool = True

    def _reload(self, tenant, actor) -> None:
        self.order = services().orders.get(tenant, actor, self._route_id())
        self.loaded = True

    @rx.event
    def load(self):
        self.loaded = False
        self.order = None
        self._reset_form()
        tenant, actor, redirect = self._guard(*MEMBER_ROLES)
        if redirect or self.access != "ok":
            return redirect
        try:
            self._reload(tenant, actor)
        except DomainError as exc:
            self.loaded = True
            return rx.toast.error(exc.message)

    @rx.event
    def set_pay_open(self, value: bool):
        self._reset_form()
        self.pay_open = value

    @rx.event
    def ask_note(self, action: str, label: str, prompt: str):
        self._reset_form()
        self.note_action, self.note_label, self.note_prompt = action, label, prompt

    @rx.event
    def set_note_open(self, value: bool):
        if not value:
            self.note_action = ""

    async def _apply(self, action: str, **kwargs):
        tenant, actor, _ = self._guard(*MEMBER_ROLES)
        result = await self._call(services().orders.apply, tenant, actor, self._route_id(), action, **kwargs)
        if result is FAILED:
            return False
        self.order = result
        return True

    @rx.event
    async def act(self, action: str):
        if await self._apply(action):
            yield rx.toast.success(f"Order {self.order.state.replace('_', ' ')}.")
        else:
            yield rx.toast.error(self.form_error or "That didn't work.")

    @rx.event
    async def act_with_note(self, form: dict):
        self.busy = True
        yield
        if await self._apply(self.note_action, note=form.get("note", "")):
            self.note_action = ""
            yield rx.toast.success(f"Order {self.order.state.replace('_', ' ')}.")

    @rx.event
    async def pay(self, form: dict):
        expiry = (form.get("expiry", "") or "").replace(" ", "")
        month, _, year = expiry.partition("/")
        if not (month.isdigit() and year.isdigit()):
            self.errors = {"expiry": "Use MM/YY"}
            return
        card = CardDetails(number=form.get("card_number", ""), exp_month=int(month),
                           exp_year=2000 + int(year) if len(year) == 2 else int(year), cvc=form.get("cvc", ""))
        self.busy = True
        yield
        if await self._apply("pay", card=card):
            self.pay_open = False
            yield rx.toast.success("Payment held in escrow. The professional can start.")
        elif not self.errors:
            self.errors = {"card_number": self.form_error}
            self.form_error = ""



