"""Payments: the demo gateway's hosted checkout, earnings and payouts, payment history, the admin overview.

Payout set-up and payouts talk to the provider: they are background events that write state only in short
`async with self` blocks, with a busy flag for the buttons."""

from __future__ import annotations

import reflex as rx

from backend.identity import Role
from backend.bootstrap import services
from backend.errors import DomainError
from backend.money import format_money
from backend.payments.service import Earnings, PaymentRow, PaymentsOverview
from state.app_state import FAILED, AppState, Ctx, FormMixin, busy_while, go_to, requires


class DemoCheckoutState(FormMixin, AppState):
    """Stands in for Stripe's hosted page: card data is entered here, never on the marketplace's pages.
    Development only: where the demo gateway is not registered (production) the page finds nothing and
    paying is refused by the service."""

    amount: str = ""
    description: str = ""
    cancel_url: str = ""
    found: bool = True
    missing: str = ""  # why there is nothing to pay here

    def _session_id(self) -> str:
        return self.router.url.path.rstrip("/").rsplit("/", 1)[-1]

    @rx.event
    async def load(self):
        self._reset_form()
        try:
            checkout = await self._run(services().payments.demo_checkout, self._session_id())
        except DomainError as exc:
            self.found, self.missing = False, exc.message
            return
        self.found = True
        self.amount, self.description, self.cancel_url = checkout.amount, checkout.description, checkout.cancel_url

    @rx.event
    async def pay(self, form: dict):
        self.busy = True
        yield
        url = await self._call(services().payments.pay_demo_checkout, self._session_id(), form)
        if url is FAILED:
            if self.form_error:  # the card was refused: say so at the card number, as a hosted page does
                self.errors, self.form_error = {"card_number": self.form_error}, ""
            return
        yield go_to(url)


class EarningsState(AppState):
    earnings: Earnings | None = None
    busy: bool = False  # a payout step is with the provider

    async def _payout_step(self, ctx: Ctx, step):
        """One payout step with the provider (it may take seconds: off the state lock), then the earnings again.
        A refusal escapes to the guard's toast."""
        async with busy_while(self):
            result = await self._run(step, ctx.tenant, ctx.caller)
            earnings = await self._run(services().payments.earnings, ctx.tenant, ctx.caller)
        async with self:
            self.earnings = earnings
        return result

    @rx.event
    @requires(Role.PROFESSIONAL)
    async def load(self, ctx: Ctx):
        self.earnings = await self._run(services().payments.earnings, ctx.tenant, ctx.caller)

    @rx.event(background=True)
    @requires(Role.PROFESSIONAL)
    async def set_up_payouts(self, ctx: Ctx):
        url = await self._payout_step(ctx, services().payments.payout_onboarding)
        return go_to(url) if url else rx.toast.success("Payouts are set up.")

    @rx.event(background=True)
    @requires(Role.PROFESSIONAL)
    async def pay_out(self, ctx: Ctx):
        total = await self._payout_step(ctx, services().payments.pay_out)
        return rx.toast.success(f"{format_money(total, ctx.tenant.currency)} is on its way to you.")


class PaymentHistoryState(AppState):
    payments: list[PaymentRow] = []
    loaded: bool = False

    @rx.event
    @requires(Role.CLIENT)
    async def load(self, ctx: Ctx):
        self.loaded = False
        self.payments = await self._run(services().payments.client_history, ctx.tenant, ctx.caller)
        self.loaded = True


class AdminPaymentsState(AppState):
    overview: PaymentsOverview | None = None

    @rx.event
    @requires(Role.ADMIN)
    async def load(self, ctx: Ctx):
        self.overview = await self._run(services().payments.overview, ctx.tenant, ctx.caller)
