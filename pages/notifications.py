"""Notifications: the member's list (/notifications), the email footer's unsubscribe page (/unsubscribe, public) and
the admin's channels and undelivered messages (/admin/notifications). The bell is in components/layout.py's header,
the preference matrix and the phone on the account page."""

from __future__ import annotations

import reflex as rx

from components.buttons import link_button
from components.layout import data_table, empty_state, loaded_list, loading_panel, page_header, page_shell, status_panel
from components.notifications import channel_choices, delivery_row, notification_card
from pages.registry import page
from state.notifications import AdminDeliveriesState, NotificationBell, NotificationsState, UnsubscribeState


def _filter() -> rx.Component:
    return rx.segmented_control.root(
        rx.segmented_control.item("All", value="all"),
        rx.segmented_control.item("Unread", value="unread"),
        value=NotificationsState.show, on_change=NotificationsState.set_show, size="2", id="notes-filter",
    )


def _new_arrivals() -> rx.Component:
    """The bell counts more unread than this list shows: something came in while the page was open."""
    return rx.cond(
        NotificationsState.loaded & (NotificationBell.unread > NotificationsState.unread_here),
        rx.callout(
            rx.flex(rx.text("New notifications arrived."), rx.spacer(),
                    rx.button("Show them", size="1", variant="soft", on_click=NotificationsState.load,
                              id="show-new"),
                    align="center", gap="8px", width="100%", wrap="wrap"),
            icon="bell-ring", size="1", width="100%", id="new-arrivals",
        ),
    )


@page("/notifications", "Notifications", on_load=NotificationsState.load)
def notifications() -> rx.Component:
    return page_shell(rx.vstack(
        page_header("Notifications", "Updates about your requests, jobs, payments and account.",
                    rx.button("Mark all as read", variant="soft", on_click=NotificationsState.mark_all_read,
                              disabled=NotificationBell.unread == 0, id="mark-all-read")),
        rx.flex(_filter(), rx.spacer(),
                rx.link("Notification settings", href="/account#notifications", size="2"),
                align="center", width="100%", gap="12px", wrap="wrap"),
        _new_arrivals(),
        loaded_list(
            NotificationsState.loaded, NotificationsState.items,
            rx.cond(NotificationsState.show == "unread",
                    empty_state("bell", "Nothing unread", "You have read everything. New updates show here and on "
                                "the bell as they happen."),
                    empty_state("bell", "No notifications yet", "When something happens on your requests, jobs or "
                                "payments, you will see it here.")),
            rx.vstack(rx.foreach(NotificationsState.items, lambda item: notification_card(
                item, on_open=NotificationsState.open_item(item.id, item.link),
                on_read=NotificationsState.mark_read(item.id))), spacing="2", width="100%", id="notes-list"),
        ),
        spacing="4", width="100%", max_width="760px",
    ))


@page("/unsubscribe", "Unsubscribe", on_load=UnsubscribeState.load)
def unsubscribe() -> rx.Component:
    return page_shell(rx.box(rx.match(
        UnsubscribeState.outcome,
        ("done", status_panel("bell-off", "You're unsubscribed", UnsubscribeState.message,
                              link_button("Notification settings", href="/account#notifications", variant="soft"))),
        ("failed", status_panel("link-2-off", "This link didn't work", UnsubscribeState.message,
                                link_button("Notification settings", href="/account#notifications", variant="soft"))),
        loading_panel(),
    ), id="unsubscribe"))


@page("/admin/notifications", "Deliveries", on_load=AdminDeliveriesState.load)
def admin_deliveries() -> rx.Component:
    return page_shell(rx.vstack(
        page_header("Deliveries", "Messages that could not be sent, and the channels this marketplace uses."),
        rx.cond(AdminDeliveriesState.loaded, channel_choices()),
        rx.heading("Not delivered", size="4", as_="h2", margin_top="8px"),
        rx.text("Failed messages can be sent again once the cause is fixed. Skipped ones were never sent, for the "
                "reason shown.", size="2", color="var(--gray-11)"),
        loaded_list(
            AdminDeliveriesState.loaded, AdminDeliveriesState.rows,
            empty_state("mail-check", "Everything was delivered", "Messages that fail or are skipped show here."),
            data_table(("When", "Message", "Channel", "To", "Status", "Why", ""), AdminDeliveriesState.rows,
                       delivery_row, id="deliveries-table"),
        ),
        spacing="3", width="100%",
    ))
