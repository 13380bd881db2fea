"""Orders: lists for every role, and the order page with its timeline and allowed actions.

The provider calls (checkout start and return, the admin's refund) are background events: the tab's state stays
free while a provider answers, and the state is written only in short `async with self` blocks."""

from __future__ import annotations

import reflex as rx

from backend.identity import Role
from backend.bootstrap import services
from backend.errors import DomainError
from backend.orders.service import OrderView
from backend.payments.ledger import EntryRow
from backend.payments.providers import CANNOT_TAKE_PAYMENTS
from backend.reviews import RatingBadge
from state.app_state import FAILED, MEMBER_ROLES, AppState, Ctx, FormMixin, busy_while, go_to, requires, writing
from state.reviews import OrderReviewsState, rating_badges


def _order_page(ctx: Ctx, order_id: int) -> tuple[OrderView, int, list[EntryRow], dict[str, RatingBadge]]:
    """Blocking: the order, its conversation (0: none), for the admin its ledger entries, and both parties' rating
    badges (a professional sees the client's rating on a booking request)."""
    order = services().orders.get(ctx.tenant, ctx.caller, order_id)
    chat_id = services().chat.conversation_for_order(ctx.tenant, ctx.caller, order_id) or 0
    admin = ctx.caller.role == Role.ADMIN
    ledger = services().payments.order_ledger(ctx.tenant, ctx.caller, order_id) if admin else []
    return order, chat_id, ledger, rating_badges(ctx, [order.client_id, order.pro_id])


class OrdersState(AppState):
    orders: list[OrderView] = []
    loaded: bool = False

    @rx.event
    @requires(*MEMBER_ROLES)
    async def load(self, ctx: Ctx):
        self.loaded = False
        self.orders = await self._run(services().orders.list_orders, ctx.tenant, ctx.caller)
        self.loaded = True


class OrderState(FormMixin, AppState):
    order: OrderView | None = None
    loaded: bool = False
    refund_open: bool = False
    chat_id: int = 0
    ledger: list[EntryRow] = []
    party_badges: dict[str, RatingBadge] = {}  # user id -> rating badge, for the client and the professional
    note_action: str = ""  # the action waiting for a note (dispute, resolve)
    note_label: str = ""
    note_prompt: str = ""
    checkout_blocked: str = ""  # why this marketplace cannot take payments ("" = it can): shown instead of Pay

    def _checkout_session(self) -> str:
        """Back from the hosted checkout: ?checkout=<session id> or ?checkout=cancelled. Stripe and the demo
        gateway fill in ?checkout=<session>; PayPal appends ?token=<order id> itself."""
        query = self.router.url.query_parameters
        return query.get("checkout", "") or query.get("token", "")

    async def _show(self, ctx: Ctx):
        """Fetch and show the order page; an order the caller may not see shows 'Order not found', and why as a
        toast (returned)."""
        try:
            order, chat_id, ledger, badges = await self._run(_order_page, ctx, self._route_id())
        except DomainError as exc:
            async with writing(self):
                self.loaded = True
            return rx.toast.error(exc.message)
        async with writing(self):
            self.order, self.chat_id, self.ledger, self.party_badges = order, chat_id, ledger, badges
            self.loaded = True
        return None

    @rx.event
    @requires(*MEMBER_ROLES)
    async def load(self, ctx: Ctx):
        self.loaded = False
        self.order = None
        self.ledger = []
        self._reset_form()
        can_pay = await self._run(services().payments.can_take_payments, ctx.tenant)
        self.checkout_blocked = "" if can_pay else CANNOT_TAKE_PAYMENTS
        if self._checkout_session():
            return OrderState.confirm_checkout  # it shows the order once the provider has answered
        return await self._show(ctx)

    @rx.event
    @requires(*MEMBER_ROLES)
    async def refresh(self, ctx: Ctx):
        """The order changed elsewhere (the other party's step, a webhook, the invoice job): show it as it is now,
        keeping what the viewer is typing. Nothing before the page's own load has shown the order."""
        if self.order is None or self.note_action or self.refund_open:
            return None
        before = self.order.state
        refused = await self._show(ctx)
        if refused is None and self.order is not None and self.order.state != before:
            # a step that ends the order opens the review card; otherwise the card (and a reply being typed in
            # it) is left alone
            return OrderReviewsState.load
        return refused

    @rx.event(background=True)
    @requires(*MEMBER_ROLES)
    async def confirm_checkout(self, ctx: Ctx):
        """Back from the hosted checkout (chained by load): confirm the payment with the provider, then show the
        order, with the outcome as a toast."""
        session_id = self._checkout_session()
        if session_id == "cancelled":
            outcome = rx.toast.info("Payment cancelled. The order is still waiting for payment.")
        else:
            result = await self._call(services().orders.confirm_checkout, ctx.tenant, session_id, ctx.caller)
            if result is FAILED:
                outcome = self._refused()
            elif result is None:
                outcome = rx.toast.info("The payment is not confirmed yet; this page updates when it is.")
            else:
                outcome = rx.toast.success("Payment held in escrow. The professional can start.")
        return await self._show(ctx) or outcome

    @rx.event
    def ask_note(self, action: str, label: str, prompt: str):
        self._reset_form()
        self.note_action, self.note_label, self.note_prompt = action, label, prompt

    @rx.event
    def set_note_open(self, value: bool):
        if not value:
            self.note_action = ""

    async def _apply(self, ctx: Ctx, action: str, **kwargs) -> bool:
        result = await self._call(services().orders.apply, ctx.tenant, ctx.caller, self._route_id(), action, **kwargs)
        if result is FAILED:
            return False
        self.order = result
        return True

    @rx.event
    @requires(*MEMBER_ROLES)
    async def act(self, ctx: Ctx, action: str):
        if await self._apply(ctx, action):
            # completing the order opens its reviews: the review card follows the order
            return [rx.toast.success(f"Order {self.order.state.replace('_', ' ')}."), OrderReviewsState.load]
        return rx.toast.error(self.form_error or "That didn't work.")

    @rx.event
    @requires(*MEMBER_ROLES)
    async def act_with_note(self, ctx: Ctx, form: dict):
        self.busy = True
        yield
        if await self._apply(ctx, self.note_action, note=form.get("note", ""), refund=form.get("refund", "")):
            self.note_action = ""
            yield rx.toast.success(f"Order {self.order.state.replace('_', ' ')}.")
            yield OrderReviewsState.load  # a dispute resolved with a release or a split opens the reviews

    @rx.event(background=True)
    @requires(*MEMBER_ROLES)
    async def checkout(self, ctx: Ctx):
        """Pay into escrow on the provider's hosted page (the demo gateway's, Stripe's or PayPal's)."""
        async with busy_while(self):
            url = await self._call(services().orders.start_checkout, ctx.tenant, ctx.caller, self._route_id())
        return self._refused() if url is FAILED else go_to(url)

    @rx.event(background=True)
    @requires(Role.ADMIN)
    async def refund(self, ctx: Ctx, form: dict):
        async with busy_while(self):
            result = await self._call(services().orders.refund, ctx.tenant, ctx.caller, self._route_id(),
                                      form.get("amount", ""), form.get("reason", ""))
        if result is FAILED:
            return None
        order, chat_id, ledger, badges = await self._run(_order_page, ctx, self._route_id())
        async with self:
            self.refund_open = False
            self.order, self.chat_id, self.ledger, self.party_badges = order, chat_id, ledger, badges
        return rx.toast.success("Refund sent to the client.")

    @rx.event
    def set_refund_open(self, value: bool):
        self._reset_form()
        self.refund_open = value
