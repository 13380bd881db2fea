"""Payments pages: the demo hosted checkout, earnings, payment history, the admin overview."""

from __future__ import annotations

import reflex as rx

from components.buttons import a11y_styles
from components.forms import field, form_alert
from components.layout import data_table, empty_state, list_page, loading_panel, page_header, page_shell
from components.market import status_badge
from pages.registry import page
from state.payments import AdminPaymentsState, DemoCheckoutState, EarningsState, PaymentHistoryState


@page("/pay/demo/[session_id]", "Checkout (test mode)", on_load=DemoCheckoutState.load)
def demo_checkout() -> rx.Component:
    errors = DemoCheckoutState.errors
    card = rx.card(
        rx.vstack(
            rx.hstack(rx.icon("credit-card", size=20), rx.heading("Demo Payments", as_="h1", size="3"), rx.spacer(),
                      rx.badge("TEST MODE", color_scheme="amber", variant="solid", id="test-mode"), width="100%"),
            rx.text(DemoCheckoutState.description, color="var(--gray-11)", size="2"),
            rx.text(DemoCheckoutState.amount, size="8", weight="bold", id="checkout-amount"),
            rx.callout(rx.text("No real money moves. ", rx.code("4242 4242 4242 4242"), " succeeds, ",
                               rx.code("4000 0000 0000 0002"), " is declined, ", rx.code("4000 0000 0000 9995"),
                               " has insufficient funds."), icon="flask-conical", color_scheme="amber", size="1"),
            rx.form(
                rx.vstack(
                    field("Card number", "card_number", errors, default_value="4242 4242 4242 4242",
                          auto_complete="cc-number", required=True),
                    rx.grid(field("Expiry (MM/YY)", "expiry", errors, default_value="12/30", auto_complete="cc-exp",
                                  required=True),
                            field("CVC", "cvc", errors, default_value="123", auto_complete="cc-csc", required=True),
                            columns="2", spacing="3", width="100%"),
                    form_alert(DemoCheckoutState.form_error),
                    rx.button("Authorise ", DemoCheckoutState.amount, type="submit", size="3", width="100%",
                              loading=DemoCheckoutState.busy, id="checkout-pay"),
                    rx.link("Cancel and return", href=DemoCheckoutState.cancel_url, size="2", align_self="center",
                            id="checkout-cancel"),
                    spacing="3", width="100%",
                ),
                on_submit=DemoCheckoutState.pay,
            ),
            rx.text("The amount is held, not charged, until the work is approved.", size="1",
                    color="var(--gray-11)"),
            spacing="3", width="100%",
        ),
        size="4", width="100%", max_width="440px",
    )
    return rx.el.main(a11y_styles(), rx.center(
        rx.cond(DemoCheckoutState.found, card,
                rx.card(rx.heading("Checkout", as_="h1", size="3"), rx.text(DemoCheckoutState.missing),
                        id="checkout-missing")),
        min_height="100vh", padding="24px 16px", background="linear-gradient(160deg, #eef2ff, #f8fafc)",
    ))


def money_stat(label: str, value, element_id: str) -> rx.Component:
    return rx.card(rx.vstack(rx.text(label, size="1", color="var(--gray-11)"),
                             rx.text(value, size="6", weight="bold", id=element_id), spacing="1"), size="2")


@page("/pro/earnings", "Earnings", on_load=EarningsState.load)
def earnings() -> rx.Component:
    e = EarningsState.earnings
    body = rx.vstack(
        page_header("Earnings", "Money held in escrow, available to you, and paid out.",
                    rx.cond(e.payout_ready,
                            rx.button(rx.icon("banknote", size=16), "Pay out now", on_click=EarningsState.pay_out,
                                      disabled=e.available_minor <= 0, loading=EarningsState.busy, id="pay-out"),
                            rx.button("Set up payouts", on_click=EarningsState.set_up_payouts,
                                      loading=EarningsState.busy, id="set-up-payouts"))),
        rx.grid(money_stat("Held in escrow", e.held, "earnings-held"),
                money_stat("Available", e.available, "earnings-available"),
                money_stat("Paid out", e.paid_out, "earnings-paid-out"),
                columns=rx.breakpoints(initial="1", sm="3"), spacing="3", width="100%"),
        rx.cond(e.rows.length() == 0,
                empty_state("wallet", "No earnings yet", "Paid orders show up here."),
                data_table(("Order", "Date", "Your share", "Status"), e.rows, lambda r: rx.table.row(
                    rx.table.cell(rx.link(r.title, href=f"/orders/{r.order_id}")), rx.table.cell(r.date),
                    rx.table.cell(r.amount), rx.table.cell(rx.badge(r.status, variant="soft")),
                    class_name="earning-row"), variant="surface")),
        spacing="4", width="100%",
    )
    return page_shell(rx.cond(e, body, loading_panel()))


def payment_row(p) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.link(p.title, href=f"/orders/{p.order_id}")),
        rx.table.cell(p.created_at), rx.table.cell(p.amount), rx.table.cell(p.escrow),
        rx.table.cell(p.refunded), rx.table.cell(status_badge(p.order_state)),
        rx.table.cell(rx.cond(p.has_invoice, rx.link(
            "PDF", href=f"/api/v1/orders/{p.order_id}/invoice", is_external=True), "—")))


@page("/payments", "Payments", on_load=PaymentHistoryState.load)
def payment_history() -> rx.Component:
    return list_page("Payments", "What you paid, what is held, what came back.",
                     loaded=PaymentHistoryState.loaded, items=PaymentHistoryState.payments,
                     empty=empty_state("receipt", "No payments yet", "Payments for your orders appear here."),
                     shown=data_table(("Order", "Date", "Amount", "Held", "Refunded", "Order status", "Invoice"),
                                      PaymentHistoryState.payments, payment_row, variant="surface", id="payments"))


@page("/admin/payments", "Payments", on_load=AdminPaymentsState.load)
def admin_payments() -> rx.Component:
    o = AdminPaymentsState.overview
    body = rx.vstack(
        page_header("Payments", "Escrow, fees, refunds and payouts across the marketplace."),
        rx.cond(o.checkout_ready, rx.fragment(),
                rx.callout("This marketplace can't take payments: no payment provider is set up for it. Clients "
                           "see a notice instead of a Pay button. Ask the platform operator to configure one.",
                           icon="triangle-alert", color_scheme="red", width="100%", id="checkout-not-ready")),
        rx.grid(money_stat("Held in escrow", o.held, "total-held"), money_stat("Platform fees", o.fees, "total-fees"),
                money_stat("Refunded", o.refunded, "total-refunded"),
                money_stat("Paid out to pros", o.paid_out, "total-paid-out"),
                columns=rx.breakpoints(initial="2", md="4"), spacing="3", width="100%"),
        rx.cond(o.rows.length() == 0, empty_state("receipt", "No payments yet", "Paid orders appear here."),
                data_table(("Order", "Client", "Professional", "Provider", "Amount", "In escrow", "Refunded",
                            "Order status"), o.rows, lambda p: rx.table.row(
                    rx.table.cell(rx.link(p.title, href=f"/orders/{p.order_id}")), rx.table.cell(p.client_name),
                    rx.table.cell(p.pro_name), rx.table.cell(rx.badge(p.provider, variant="outline")),
                    rx.table.cell(p.amount), rx.table.cell(p.escrow), rx.table.cell(p.refunded),
                    rx.table.cell(status_badge(p.order_state))), variant="surface", id="admin-payments")),
        spacing="4", width="100%",
    )
    return page_shell(rx.cond(o, body, loading_panel()))
