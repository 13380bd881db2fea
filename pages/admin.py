"""Tenant admin: users list (/admin/users), categories and the dev outbox. The dashboard at /admin is
pages/analytics.py."""

from __future__ import annotations

import reflex as rx

from pages.registry import page

from components.layout import card_stack, data_table, empty_state, loaded_list, page_header, page_shell
from state.admin import AdminCategoriesState, AdminUsersState, OutboxState


def stat(label: str, value) -> rx.Component:
    return rx.card(rx.vstack(rx.text(label, size="1", color="var(--gray-11)"),
                             rx.text(value, size="6", weight="bold"), spacing="1"), size="2")


def role_badge(role) -> rx.Component:
    return rx.badge(role, color_scheme=rx.match(role, ("client", "blue"), ("professional", "green"), "purple"),
                    variant="soft")


def status_badge(status) -> rx.Component:
    return rx.badge(status, color_scheme=rx.cond(status == "active", "green", "red"), variant="surface")


def user_actions(u) -> rx.Component:
    return rx.cond(
        u["role"] == "admin",
        rx.text("—", color="var(--gray-11)"),
        rx.cond(
            u["status"] == "active",
            rx.alert_dialog.root(
                rx.alert_dialog.trigger(rx.button("Suspend", size="1", color_scheme="red", variant="soft",
                                                  id=f"suspend-{u['email']}")),
                rx.alert_dialog.content(
                    rx.alert_dialog.title("Suspend this user?"),
                    rx.alert_dialog.description(
                        rx.text(u["full_name"], " (", u["email"], ") will be logged out and can't log in "
                                "until you reinstate them.")),
                    rx.hstack(
                        rx.alert_dialog.cancel(rx.button("Cancel", variant="soft", color_scheme="gray")),
                        rx.alert_dialog.action(rx.button("Suspend", color_scheme="red",
                                                         on_click=AdminUsersState.suspend(u["id"]),
                                                         id="confirm-suspend")),
                        spacing="3", justify="end", margin_top="16px",
                    ),
                ),
            ),
            rx.button("Reinstate", size="1", variant="soft", on_click=AdminUsersState.reinstate(u["id"]),
                      id=f"reinstate-{u['email']}"),
        ),
    )


def verify_toggle(u) -> rx.Component:
    return rx.cond(
        u["role"] == "professional",
        rx.button(rx.cond(u["verified"], "Verified ✓", "Verify"), size="1",
                  variant=rx.cond(u["verified"], "solid", "outline"), color_scheme="green", high_contrast=True,
                  on_click=AdminUsersState.set_verified(u["id"], ~u["verified"].to(bool)),
                  id=f"verify-{u['email']}"),
    )


def user_row(u) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.vstack(rx.text(u["full_name"], weight="medium"),
                                rx.text(u["email"], size="1", color="var(--gray-11)"), spacing="0")),
        rx.table.cell(role_badge(u["role"])),
        rx.table.cell(status_badge(u["status"])),
        rx.table.cell(rx.cond(u["email_verified"], rx.icon("circle-check", size=16, color="var(--green-10)"),
                              rx.icon("circle-dashed", size=16, color="var(--gray-9)"))),
        rx.table.cell(rx.text(u["last_login_at"], size="1", color="var(--gray-11)")),
        rx.table.cell(rx.hstack(verify_toggle(u), user_actions(u), spacing="2")),
        align="center", data_email=u["email"],
    )


@page("/admin/users", "Users", on_load=AdminUsersState.load)
def admin_users() -> rx.Component:
    counts = AdminUsersState.counts
    return page_shell(rx.vstack(
        page_header("Users", f"Everyone on {AdminUsersState.tenant_name}"),
        rx.grid(stat("Clients", counts["client"]), stat("Professionals", counts["professional"]),
                stat("Admins", counts["admin"]), stat("Suspended", counts["suspended"]),
                columns=rx.breakpoints(initial="2", md="4"), spacing="3", width="100%"),
        rx.flex(
            rx.input(rx.input.slot(rx.icon("search", size=16)), placeholder="Search name or email",
                     aria_label="Search name or email",
                     value=AdminUsersState.search, on_change=AdminUsersState.set_search.debounce(300),
                     width="100%", max_width="360px", id="user-search"),
            rx.select.root(
                rx.select.trigger(placeholder="All roles", aria_label="Role"),
                rx.select.content(*[rx.select.item(label, value=value) for value, label in
                                    (("all", "All roles"), ("client", "Clients"),
                                     ("professional", "Professionals"), ("admin", "Admins"))]),
                value=AdminUsersState.role_filter, on_change=AdminUsersState.set_role_filter,
            ),
            gap="12px", width="100%", wrap="wrap",
        ),
        loaded_list(AdminUsersState.loaded, AdminUsersState.users,
                    empty_state("users", "No users match", "Try another search or role."),
                    data_table(("Name", "Role", "Status", "Email", "Last login", ""), AdminUsersState.users,
                               user_row, variant="surface", id="users-table")),
        spacing="4", width="100%",
    ))


def message_card(m) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.flex(
                rx.cond(m["channel"] == "sms", rx.badge(rx.icon("smartphone", size=12), "Text message",
                                                       variant="soft", color_scheme="blue")),
                rx.text(m["subject"], weight="bold"),
                rx.spacer(),
                rx.badge(m["status"], color_scheme=rx.match(m["status"], ("sent", "green"), ("failed", "red"),
                                                             "gray")),
                gap="8px", width="100%", wrap="wrap",
            ),
            rx.text("To ", m["recipient"], " · ", m["created_at"], " UTC · attempts ", m["attempts"], size="1",
                    color="var(--gray-11)"),
            rx.box(rx.text(m["body"], white_space="pre-wrap", size="2", font_family="var(--code-font-family)"),
                   background="var(--gray-2)", padding="12px", border_radius="8px", width="100%",
                   overflow_x="auto", word_break="break-word"),
            spacing="2", width="100%",
        ),
        width="100%", class_name="outbox-message",
    )


@page("/admin/outbox", "Dev outbox", on_load=OutboxState.load)
def admin_outbox() -> rx.Component:
    return page_shell(rx.vstack(
        page_header("Dev outbox", "Emails and text messages this marketplace sent, as the development channels "
                                  "delivered them."),
        rx.callout(
            "A development tool: this page exists only with ENVIRONMENT=development. It shows every email and text "
            "message, one-time links and phone codes included, so that you can follow them without a mail server "
            "or a phone. In production no page shows other people's messages.",
            icon="flask-conical", color_scheme="amber", width="100%"),
        rx.cond(
            OutboxState.unavailable != "", empty_state("mail-x", "No dev outbox here", OutboxState.unavailable),
            loaded_list(OutboxState.loaded, OutboxState.messages,
                        empty_state("mail", "No messages yet", "Sign-ups and password resets send emails here."),
                        card_stack(OutboxState.messages, message_card, spacing="3")),
        ),
        spacing="4", width="100%",
    ))


def category_row(c) -> rx.Component:
    return rx.table.row(
        rx.table.cell(rx.hstack(rx.icon(c.icon, size=16), rx.text(c.name, weight="medium"), spacing="2",
                                align="center")),
        rx.table.cell(rx.code(c.slug)),
        rx.table.cell(rx.badge(rx.cond(c.active, "active", "hidden"),
                               color_scheme=rx.cond(c.active, "green", "gray"))),
        rx.table.cell(rx.button(rx.cond(c.active, "Hide", "Show"), size="1", variant="soft",
                                on_click=AdminCategoriesState.toggle(c))),
        align="center", data_slug=c.slug,
    )


@page("/admin/categories", "Categories", on_load=AdminCategoriesState.load)
def admin_categories() -> rx.Component:
    return page_shell(rx.vstack(
        page_header("Categories", "What clients can ask for on this marketplace."),
        rx.card(rx.form(
            rx.flex(
                rx.input(name="name", placeholder="New category, e.g. Pet care", size="3", max_length=60,
                         aria_label="New category",
                         id="category-name", flex="1", min_width="200px"),
                rx.select.root(
                    rx.select.trigger(aria_label="Icon"),
                    rx.select.content(rx.foreach(AdminCategoriesState.icons, lambda i: rx.select.item(i, value=i))),
                    value=AdminCategoriesState.new_icon, on_change=AdminCategoriesState.set_new_icon, size="3"),
                rx.button("Add category", type="submit", size="3", id="add-category"),
                gap="8px", wrap="wrap", width="100%",
            ),
            rx.cond(AdminCategoriesState.errors.contains("name"),
                    rx.text(AdminCategoriesState.errors["name"], size="1", color="var(--red-11)")),
            on_submit=AdminCategoriesState.add, reset_on_submit=True,
        ), width="100%"),
        data_table(("Name", "Slug", "Status", ""), AdminCategoriesState.categories, category_row, variant="surface",
                   id="categories-table"),
        spacing="4", width="100%",
    ))
