"""Orders: the list for every role, and the order page with timeline, actions and payment."""

from __future__ import annotations

import reflex as rx

from components.buttons import link_button
from components.forms import field, field_error, form_dialog
from components.layout import card_stack, data_table, empty_state, list_page, loading_panel, page_header, page_shell
from components.market import card_link, meta, section, status_badge, timeline
from components.notifications import on_push
from components.reviews import rating_badge
from pages.registry import page
from pages.reviews import order_reviews
from state.orders import OrderState, OrdersState
from state.reviews import OrderReviewsState


def order_row(o) -> rx.Component:
    return card_link(
        rx.flex(
            rx.vstack(rx.text(o.title, weight="bold"),
                      rx.flex(meta("user", rx.cond(o.viewer_role == "client", o.pro_name, o.client_name)),
                              meta("calendar", o.scheduled_for), gap="12px", wrap="wrap"),
                      spacing="1"),
            rx.spacer(),
            rx.hstack(rx.text(o.price, weight="bold"), status_badge(o.state), spacing="3", align="center"),
            gap="12px", align="center", wrap="wrap", width="100%",
        ),
        f"/orders/{o.id}", "order-row",
    )


@page("/orders", "Orders", on_load=OrdersState.load)
def orders() -> rx.Component:
    return list_page("Orders", "Bookings in progress and done.",
                     loaded=OrdersState.loaded, items=OrdersState.orders,
                     empty=empty_state("package", "No orders yet",
                                       "An order starts when a client accepts a quote or books a professional."),
                     shown=card_stack(OrdersState.orders, order_row, id="orders"))


def refund_dialog() -> rx.Component:
    errors = OrderState.errors
    return form_dialog(
        "Refund from escrow",
        field("Amount", "amount", errors, placeholder="25.00", required=True),
        field("Reason", "reason", errors, placeholder="Part of the job was not done", required=True, max_length=500),
        trigger=rx.button(rx.icon("undo-2", size=14), "Refund part", variant="soft", color_scheme="red",
                          id="refund-open"),
        description=rx.dialog.description("The money goes back to the client; the order carries on with the rest.",
                                          margin_bottom="12px"),
        submit=rx.button("Refund", type="submit", color_scheme="red", loading=OrderState.busy, id="refund-submit"),
        form_error=OrderState.form_error, on_submit=OrderState.refund, max_width="440px",
        open=OrderState.refund_open, on_open_change=OrderState.set_refund_open,
    )


def ledger_section() -> rx.Component:
    return section(
        "Ledger entries",
        rx.cond(
            OrderState.ledger.length() == 0,
            rx.text("No money has moved yet.", size="2", color="var(--gray-11)"),
            data_table(("Tx", "Kind", "Account", "Amount (minor)", "Memo"), OrderState.ledger, lambda e: rx.table.row(
                rx.table.cell(e.transaction_id), rx.table.cell(e.kind), rx.table.cell(rx.code(e.account)),
                rx.table.cell(rx.text(e.amount_minor, " ", e.currency, color=rx.cond(
                    e.amount_minor < 0, "var(--red-11)", "var(--green-11)"))),
                rx.table.cell(rx.text(e.memo, size="1"))), size="1", id="ledger"),
        ),
    )


def note_dialog() -> rx.Component:
    return form_dialog(
        OrderState.note_label,
        rx.cond(OrderState.note_action == "resolve_split",
                field("Refund to the client", "refund", OrderState.errors, placeholder="50.00",
                      hint="The rest goes to the professional, minus the platform fee")),
        rx.text_area(name="note", id="note", rows="4", width="100%", max_length=500),
        field_error(OrderState.errors, "note"),
        description=rx.dialog.description(OrderState.note_prompt, margin_bottom="12px"),
        submit=rx.button("Submit", type="submit", loading=OrderState.busy, id="note-submit"),
        form_error=OrderState.form_error, on_submit=OrderState.act_with_note, max_width="480px",
        open=OrderState.note_action != "", on_open_change=OrderState.set_note_open,
    )


def action_button(a) -> rx.Component:
    color = rx.match(a.tone, ("danger", "red"), ("neutral", "gray"), "accent")
    variant = rx.cond(a.tone == "accent", "solid", "soft")
    return rx.cond(
        a.action == "pay",
        rx.cond(OrderState.checkout_blocked == "",
                rx.button(rx.icon("lock", size=14), "Pay into escrow", on_click=OrderState.checkout,
                          loading=OrderState.busy, id="action-pay"),
                rx.callout(OrderState.checkout_blocked, icon="circle-alert", color_scheme="amber", size="1",
                           width="100%", id="checkout-unavailable")),
        rx.cond(
            a.needs_note,
            rx.button(a.label, color_scheme=color, variant=variant, id=f"action-{a.action}",
                      on_click=OrderState.ask_note(a.action, a.label, a.confirm)),
            rx.cond(
                a.confirm != "",
                rx.alert_dialog.root(
                    rx.alert_dialog.trigger(rx.button(a.label, color_scheme=color, variant=variant,
                                                      id=f"action-{a.action}")),
                    rx.alert_dialog.content(
                        rx.alert_dialog.title(a.label),
                        rx.alert_dialog.description(a.confirm),
                        rx.hstack(
                            rx.alert_dialog.cancel(rx.button("Back", variant="soft", color_scheme="gray")),
                            rx.alert_dialog.action(rx.button(a.label, color_scheme=color,
                                                             on_click=OrderState.act(a.action),
                                                             id=f"confirm-{a.action}")),
                            spacing="3", justify="end", margin_top="16px",
                        ),
                    ),
                ),
                rx.button(a.label, color_scheme=color, variant=variant, on_click=OrderState.act(a.action),
                          id=f"action-{a.action}"),
            ),
        ),
    )


def money_line(label: str, value, strong: bool = False) -> rx.Component:
    return rx.hstack(rx.text(label, size="2", color="var(--gray-11)"), rx.spacer(),
                     rx.text(value, size="2", weight=rx.cond(strong, "bold", "regular")), width="100%")


def party_rating(user_id, who: str) -> rx.Component:
    badges = OrderState.party_badges
    key = user_id.to_string()
    return rx.cond(badges.contains(key) & (badges[key].count > 0), rating_badge(badges[key], who=who))


@page("/orders/[order_id]", "Order", on_load=[OrderState.load, OrderReviewsState.load])
def order_detail() -> rx.Component:
    o = OrderState.order
    body = rx.vstack(
        on_push(OrderState.refresh),  # the other party's step, the invoice: shown without a reload
        page_header(o.title, f"Order #{o.id} · placed {o.created_at}",
                    rx.cond(OrderState.chat_id != 0,
                            link_button(rx.icon("message-circle", size=16), "Order chat", variant="soft",
                                href=f"/messages/{OrderState.chat_id}", id="order-chat"))),
        rx.grid(
            rx.vstack(
                section("Status", rx.hstack(status_badge(o.state), id="order-state"),
                        rx.cond(o.status_note != "", rx.text(o.status_note, size="2", color="var(--gray-11)")),
                        rx.cond(o.can_refund, refund_dialog()),
                        rx.cond(o.actions.length() > 0,
                                rx.flex(rx.foreach(o.actions, action_button), gap="8px", wrap="wrap",
                                        id="order-actions"),
                                rx.text("Nothing for you to do right now.", size="2", color="var(--gray-11)"))),
                order_reviews(o.id),
                section("Timeline", timeline(o.events)),
                spacing="3", width="100%",
            ),
            rx.vstack(
                section("Summary",
                        rx.flex(meta("user", rx.text("Client: ", o.client_name)),
                                party_rating(o.client_id, "Client rated"), gap="4px 12px", wrap="wrap",
                                align="center"),
                        rx.flex(rx.link(meta("briefcase", rx.text("Professional: ", o.pro_name)),
                                        href=f"/pros/{o.pro_id}"),
                                party_rating(o.pro_id, "Professional rated"), gap="4px 12px", wrap="wrap",
                                align="center"),
                        meta("calendar", o.scheduled_for),
                        rx.separator(),
                        money_line("Price", o.price, True),
                        rx.cond(o.viewer_role != "client",
                                rx.vstack(money_line("Platform fee", o.fee), money_line("Professional receives",
                                                                                       o.payout), width="100%")),
                        rx.cond(o.has_invoice,
                                link_button(rx.icon("file-down", size=14), "Download invoice (PDF)", variant="soft",
                                            width="100%", href=f"/api/v1/orders/{o.id}/invoice", external=True,
                                            id="invoice-link"))),
                rx.cond(o.request_id, rx.cond(o.viewer_role == "client",
                                              rx.link("Back to the request", href=f"/requests/{o.request_id}",
                                                      size="2"))),
                spacing="3", width="100%",
            ),
            columns=rx.breakpoints(initial="1", md="2"), spacing="4", width="100%",
        ),
        rx.cond(o.viewer_role == "admin", ledger_section()),
        note_dialog(),
        spacing="4", width="100%",
    )
    return page_shell(rx.cond(
        OrderState.loaded,
        rx.cond(OrderState.order, body,
                rx.box(empty_state("search-x", "Order not found", "It doesn't exist or isn't yours."),
                       id="order-missing")),
        loading_panel(),
    ))
