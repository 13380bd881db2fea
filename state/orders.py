"""Orders: lists for every role, and the order page with its timeline and allowed actions."""

from __future__ import annotations

import reflex as rx

from backend.bootstrap import services
from backend.errors import DomainError
from backend.orders.service import OrderView
from backend.payments.ledger import EntryRow
from backend.payments.providers import CANNOT_TAKE_PAYMENTS
from state.app_state import FAILED, AppState, FormMixin, go_to

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
    refund_open: bool = False
    chat_id: int = 0
    ledger: list[EntryRow] = []
    note_action: str = ""  # the action waiting for a note (dispute, resolve)
    note_label: str = ""
    note_prompt: str = ""
    checkout_blocked: str = ""  # why this marketplace cannot take payments ("" = it can): shown instead of Pay

    def _reload(self, tenant, actor) -> None:
        self.order = services().orders.get(tenant, actor, self._route_id())
        self.loaded = True

    @rx.event
    async def load(self):
        self.loaded = False
        self.order = None
        self.ledger = []
        self._reset_form()
        tenant, actor, redirect = self._guard(*MEMBER_ROLES)
        if redirect or self.access != "ok":
            yield redirect
            return
        self.checkout_blocked = "" if services().payments.can_take_payments(tenant) else CANNOT_TAKE_PAYMENTS
        toast = await self._confirm_return(tenant, actor)
        try:
            self._reload(tenant, actor)
            self.chat_id = services().chat.conversation_for_order(tenant, actor, self._route_id()) or 0
            if actor.role == "admin":
                self.ledger = services().payments.order_ledger(tenant, actor, self._route_id())
        except DomainError as exc:
            self.loaded = True
            yield rx.toast.error(exc.message)
            return
        if toast:
            yield toast

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
        if await self._apply(self.note_action, note=form.get("note", ""), refund=form.get("refund", "")):
            self.note_action = ""
            yield rx.toast.success(f"Order {self.order.state.replace('_', ' ')}.")

    @rx.event
    async def checkout(self):
        """Pay into escrow on the provider's hosted page (the demo gateway's, Stripe's or PayPal's)."""
        tenant, actor, _ = self._guard(*MEMBER_ROLES)
        self.busy = True
        yield
        url = await self._call(services().payments.start_checkout, tenant, actor, self._route_id())
        if url is FAILED:
            yield rx.toast.error(self.form_error)
            return
        yield go_to(url)

    async def _confirm_return(self, tenant, actor):
        """Back from the hosted checkout: ?checkout=<session id> or ?checkout=cancelled."""
        query = self.router.url.query_parameters
        # Stripe and the demo gateway fill in ?checkout=<session>; PayPal appends ?token=<order id> itself.
        session_id = query.get("checkout", "") or query.get("token", "")
        if not session_id:
            return None
        if session_id == "cancelled":
            return rx.toast.info("Payment cancelled. The order is still waiting for payment.")
        result = await self._call(services().payments.confirm_checkout, tenant, session_id, actor)
        if result is FAILED:
            return rx.toast.error(self.form_error)
        if result is None:
            return rx.toast.info("The payment is not confirmed yet; this page updates when it is.")
        return rx.toast.success("Payment held in escrow. The professional can start.")

    @rx.event
    async def refund(self, form: dict):
        tenant, actor, _ = self._guard("admin")
        self.busy = True
        yield
        result = await self._call(services().payments.admin_refund, tenant, actor, self._route_id(),
                                  form.get("amount", ""), form.get("reason", ""))
        if result is FAILED:
            return
        self.refund_open = False
        self._reload(tenant, actor)
        self.ledger = services().payments.order_ledger(tenant, actor, self._route_id())
        yield rx.toast.success("Refund sent to the client.")

    @rx.event
    def set_refund_open(self, value: bool):
        self._reset_form()
        self.refund_open = value
