"""The payment service: one facade (services().payments) over small parts, each in its own module.

- gateways.py  the providers registered here, looked up fail-closed
- checkout.py  the provider's hosted checkout for an order; demo_page.py the demo gateway's own page
- escrow.py    the money effects of order transitions: hold, release (escrow -> professional), refund
- steps.py     the write-ahead journal of refunds whose provider answer may be lost
- payouts.py   payout accounts and transfers of the released share
- reports.py   earnings, payment history, the admin overview, an order's ledger
- webhooks.py  provider events, verified and stored once, then processed by a job
- notices.py   what payments tell people: payout sent (the professional), payout or webhook failed (the admins)

Orders sit above payments and lead every use case whose heart is the order (checkout, transitions, the admin's
refund): they pass a PayableOrder in. What payments reads about orders comes through the PayableOrders port.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from backend.config import Settings
from backend.db import Database
from backend.identity import Caller, TenantPublic
from backend.notifications.ports import JobQueue
from backend.notifications.service import NotificationService
from backend.payments import demo_page
from backend.payments.checkout import Checkout
from backend.payments.demo_page import DemoCheckoutView
from backend.payments.escrow import Escrow
from backend.payments.gateways import Gateways
from backend.payments.ledger import EntryRow, Ledger
from backend.payments.notices import PaymentNotices
from backend.payments.payouts import Payouts
from backend.payments.ports import ConfirmCheckout, PayableOrders, PaymentGateway
from backend.payments.reports import (Earnings, EarningsRow, FailedPayout, FailedWebhook, PaymentReports, PaymentRow,
                                      PaymentsOverview)
from backend.payments.steps import PaymentSteps
from backend.payments.webhooks import WebhookIntake

__all__ = ["DemoCheckoutView", "Earnings", "EarningsRow", "FailedPayout", "FailedWebhook", "PaymentRow",
           "PaymentService", "PaymentsOverview"]


class PaymentService:
    """`notifications` writes payments' messages; `jobs` delivers them after commit (backend/jobqueue.py)."""

    def __init__(self, db: Database, settings: Settings, gateways: dict[str, PaymentGateway], ledger: Ledger,
                 orders: PayableOrders, *, notifications: NotificationService, jobs: JobQueue):
        self.gateways = gateways  # by provider name; every part looks them up here (tests swap fakes in)
        self.ledger = ledger
        registry = Gateways(gateways)
        self._registry = registry
        notices = PaymentNotices(db, notifications, jobs)
        self.checkout = Checkout(db, settings, registry)
        self.escrow = Escrow(registry, ledger)
        self.steps = PaymentSteps(db)
        self.payouts = Payouts(db, settings, registry, ledger, orders, notices)
        self.reports = PaymentReports(db, registry, ledger, orders, notifications)
        self.webhooks = WebhookIntake(db, registry, notices)

    # ------------------------------------------------------------------ providers

    def providers(self) -> list[str]:
        """The providers configured (registered) on this installation."""
        return self._registry.names()

    def can_take_payments(self, tenant: TenantPublic) -> bool:
        return self._registry.can_take_payments(tenant)

    def gateway_for(self, tenant: TenantPublic) -> PaymentGateway:
        """The tenant's own provider, or a refusal (DomainError): never another provider in its place."""
        return self._registry.for_tenant(tenant)

    def demo_gateway(self):
        """The test-card gateway, where it exists (development only); NotFound elsewhere."""
        return self._registry.demo()

    # ------------------------------------------------------------------ the demo gateway's hosted page

    def demo_checkout(self, session_id: str) -> DemoCheckoutView:
        """What the hosted test page shows; DomainError when there is no such checkout (or no demo gateway)."""
        return demo_page.checkout_view(self._registry.demo(), session_id)

    def pay_demo_checkout(self, session_id: str, form: dict) -> str:
        """The hosted test page's Pay button (card_number, expiry "MM/YY", cvc); returns where to send the payer."""
        gateway = self._registry.demo()  # no demo gateway (outside development): refused before the form is read
        return gateway.pay_hosted(session_id, **demo_page.card_from_form(form))

    # ------------------------------------------------------------------ payouts

    def payout_onboarding(self, tenant: TenantPublic, pro: Caller) -> str:
        return self.payouts.onboarding(tenant, pro)

    def pay_out(self, tenant: TenantPublic, pro: Caller) -> int:
        return self.payouts.pay_out(tenant, pro)

    def pay_out_order(self, tenant: TenantPublic, order_id: int) -> int:
        return self.payouts.pay_out_order(tenant, order_id)

    # ------------------------------------------------------------------ read models

    def earnings(self, tenant: TenantPublic, pro: Caller) -> Earnings:
        return self.reports.earnings(tenant, pro)

    def client_history(self, tenant: TenantPublic, client: Caller) -> list[PaymentRow]:
        return self.reports.client_history(tenant, client)

    def overview(self, tenant: TenantPublic, admin: Caller) -> PaymentsOverview:
        return self.reports.overview(tenant, admin)

    def order_ledger(self, tenant: TenantPublic, caller: Caller, order_id: int) -> list[EntryRow]:
        return self.reports.order_ledger(tenant, caller, order_id)

    def failed_payouts(self, tenant: TenantPublic, admin: Caller, limit: int = 20) -> tuple[int, list[FailedPayout]]:
        return self.reports.failed_payouts(tenant, admin, limit)

    def failed_webhooks(self, tenant: TenantPublic, admin: Caller,
                        limit: int = 20) -> tuple[int, list[FailedWebhook]]:
        return self.reports.failed_webhooks(tenant, admin, limit)

    # ------------------------------------------------------------------ webhooks

    def record_webhook(self, provider: str, payload: bytes, headers: dict[str, str]) -> int | None:
        return self.webhooks.record(provider, payload, headers)

    def process_webhook(self, event_row_id: int, confirm: ConfirmCheckout) -> str:
        return self.webhooks.process(event_row_id, confirm)

    def lost_webhooks(self, tenant_ids: Sequence[int], now: datetime) -> list[int]:
        """Stored events no job is processing (an enqueue lost while Redis was down): the timers enqueue them."""
        return self.webhooks.lost(tenant_ids, now)
