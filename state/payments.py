"""Payments: the demo gateway's hosted checkout, earnings and payouts, payment history, the admin overview."""

from __future__ import annotations

import reflex as rx

from backend.identity import Role
from backend.bootstrap import services
from backend.errors import DomainError
from backend.money import format_money
from backend.payments.service import Earnings, PaymentRow, PaymentsOverview
from state.app_state import FAILED, AppState, FormMixin, go_to


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
    def load(self):
        self._reset_form()
        try:
            charge = services().payments.demo_gateway().session_details(self._session_id())
        except DomainError as exc:
            self.found, self.missing = False, exc.message
            return
        self.found = True
        self.amount = format_money(charge.amount_minor, charge.currency)
        self.description, self.cancel_url = charge.description, charge.cancel_url

    @rx.event
    async def pay(self, form: dict):
        expiry = (form.get("expiry", "") or "").replace(" ", "")
        month, _, year = expiry.partition("/")
        if not (month.isdigit() and year.isdigit()):
            self.errors = {"expiry": "Use MM/YY"}
            return
        self.busy = True
        yield
        url = await self._call(self._pay_hosted, self._session_id(),
                               number=form.get("card_number", ""), exp_month=int(month),
                               exp_year=2000 + int(year) if len(year) == 2 else int(year), cvc=form.get("cvc", ""))
        if url is FAILED:
            self.errors, self.form_error = {"card_number": self.form_error}, ""
            return
        yield go_to(url)


    @staticmethod
    def _pay_hosted(session_id: str, **card):
        return services().payments.demo_gateway().pay_hosted(session_id, **card)


class EarningsState(AppState):
    earnings: Earnings | None = None

    def _reload(self, tenant, actor) -> None:
        self.earnings = services().payments.earnings(tenant, actor)

    @rx.event
    def load(self):
        self.earnings = None
        tenant, actor, redirect = self._guard(Role.PROFESSIONAL)
        if redirect or self.access != "ok":
            return redirect
        self._reload(tenant, actor)

    @rx.event
    def set_up_payouts(self):
        tenant, actor, _ = self._guard(Role.PROFESSIONAL)
        try:
            url = services().payments.payout_onboarding(tenant, actor)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self._reload(tenant, actor)
        return go_to(url) if url else rx.toast.success("Payouts are set up.")

    @rx.event
    def pay_out(self):
        tenant, actor, _ = self._guard(Role.PROFESSIONAL)
        try:
            total = services().payments.pay_out(tenant, actor)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self._reload(tenant, actor)
        return rx.toast.success(f"{format_money(total, tenant.currency)} is on its way to you.")


class PaymentHistoryState(AppState):
    payments: list[PaymentRow] = []
    loaded: bool = False

    @rx.event
    def load(self):
        self.loaded = False
        tenant, actor, redirect = self._guard(Role.CLIENT)
        if redirect or self.access != "ok":
            return redirect
        self.payments = services().payments.client_history(tenant, actor)
        self.loaded = True


class AdminPaymentsState(AppState):
    overview: PaymentsOverview | None = None

    @rx.event
    def load(self):
        self.overview = None
        tenant, actor, redirect = self._guard(Role.ADMIN)
        if redirect or self.access != "ok":
            return redirect
        self.overview = services().payments.overview(tenant, actor)



