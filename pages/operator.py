"""Platform operator console."""

from __future__ import annotations

import reflex as rx

from pages.registry import page

from components.buttons import a11y_styles, skip_link
from components.forms import field, form_dialog
from components.charts import header_cell, number_cell, panel, report_table
from components.layout import empty_state, loading_panel, page_header
from state.analytics import PRESETS
from state.operator import OperatorState


def branding_fields(defaults: dict | None = None) -> list[rx.Component]:
    errors = OperatorState.errors
    d = defaults or {}
    return [
        field("Marketplace name", "name", errors, default_value=d.get("name", ""), max_length=80, required=True),
        rx.grid(
            field("Brand colour", "primary_color", errors, type="color", default_value=d.get("primary_color",
                                                                                             "#4F46E5"),
                  hint="Buttons show white text on it: dark enough for 4.5:1"),
            field("Accent colour", "accent_color", errors, type="color", default_value=d.get("accent_color",
                                                                                             "#F59E0B")),
            columns="2", spacing="3", width="100%",
        ),
        field("Logo URL (optional)", "logo_url", errors, default_value=d.get("logo_url", ""),
              placeholder="https://…/logo.png"),
        rx.grid(
            rx.vstack(rx.text("Currency", size="2", weight="medium"),
                      rx.select(OperatorState.currencies, name="currency", default_value=d.get("currency", "USD")),
                      spacing="1"),
            field("Platform fee %", "platform_fee_percent", errors, type="number",
                  default_value=d.get("platform_fee_percent", "10")),
            columns="2", spacing="3", width="100%",
        ),
        rx.grid(
            field("Requests expire after (days)", "request_expiry_days", errors, type="number",
                  default_value=d.get("request_expiry_days", "30")),
            field("Review window (days)", "review_window_days", errors, type="number",
                  default_value=d.get("review_window_days", "14"),
                  hint="After an order completes, both sides can review until then"),
            columns="2", spacing="3", width="100%",
        ),
        field("Instant match (pros per request)", "instant_match_count", errors, type="number",
              default_value=d.get("instant_match_count", "5"),
              hint="A new request goes first to this many best-matching pros (0 to 20; 0 turns it off)"),
        rx.vstack(rx.text("Checkout", size="2", weight="medium"),
                  rx.select(OperatorState.providers, name="payment_provider",
                            default_value=d.get("payment_provider", OperatorState.default_provider)),
                  rx.text("Only providers configured on this installation are offered; with none, clients can't pay.",
                          size="1", color="var(--gray-11)"),
                  rx.cond(errors.contains("payment_provider"),
                          rx.text(errors["payment_provider"], size="1", color="var(--red-11)")),
                  spacing="1"),
    ]


def create_dialog() -> rx.Component:
    errors = OperatorState.errors
    return form_dialog(
        "New marketplace",
        field("Address", "slug", errors, placeholder="acme", hint=f"Served at <address>.{OperatorState.base_domain}",
              max_length=40, required=True),
        *branding_fields(),
        rx.separator(),
        rx.text("First admin", weight="bold", size="2"),
        field("Admin name", "admin_name", errors, default_value="Marketplace admin", max_length=80),
        field("Admin email", "admin_email", errors, type="email", required=True),
        field("Admin password", "admin_password", errors, type="password", hint="At least 10 characters",
              auto_complete="new-password", required=True),
        trigger=rx.button(rx.icon("plus", size=16), "New marketplace", id="new-tenant"),
        submit=rx.button("Create", type="submit", loading=OperatorState.busy, id="create-tenant"),
        form_error=OperatorState.form_error, on_submit=OperatorState.create, max_width="520px",
        open=OperatorState.create_open, on_open_change=OperatorState.set_create_open,
    )


def edit_dialog() -> rx.Component:
    e = OperatorState.editing
    return form_dialog(
        "Branding",
        *branding_fields({"name": e["name"], "primary_color": e["primary_color"], "accent_color": e["accent_color"],
                          "logo_url": e["logo_url"], "currency": e["currency"],
                          "platform_fee_percent": e["platform_fee_percent"],
                          "request_expiry_days": e["request_expiry_days"], "review_window_days": e["review_window_days"],
                          "instant_match_count": e["instant_match_count"],
                          "payment_provider": rx.cond(e["payment_provider"] == "", "none", e["payment_provider"])}),
        submit=rx.button("Save", type="submit", id="save-branding"),
        form_error=OperatorState.form_error, on_submit=OperatorState.save_branding, form_key=e["id"],
        max_width="520px", open=OperatorState.edit_open, on_open_change=OperatorState.set_edit_open,
    )


def tenant_card(t) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.box(width="14px", height="14px", border_radius="4px", background=t["primary_color"]),
                rx.text(t["name"], weight="bold", size="4"),
                rx.spacer(),
                rx.badge(t["status"], color_scheme=rx.cond(t["status"] == "active", "green", "red")),
                align="center", width="100%",
            ),
            rx.text(t["slug"], " · ", t["users"], " users · ", t["currency"], " · fee ", t["platform_fee_percent"],
                    "% · checkout: ", rx.cond(t["payment_provider"] == "", "none", t["payment_provider"]),
                    size="2", color="var(--gray-11)"),
            rx.cond(t["checkout_ready"], rx.fragment(),
                    rx.callout(t["checkout_hint"], icon="triangle-alert", color_scheme="amber", size="1",
                               width="100%", class_name="checkout-hint")),
            rx.hstack(
                rx.button("Branding", size="1", variant="soft", on_click=OperatorState.open_edit(t)),
                rx.cond(
                    t["status"] == "active",
                    rx.button("Suspend", size="1", variant="soft", color_scheme="red",
                              on_click=OperatorState.set_status(t["id"], "suspended"), id=f"suspend-{t['slug']}"),
                    rx.button("Reinstate", size="1", variant="soft",
                              on_click=OperatorState.set_status(t["id"], "active"), id=f"reinstate-{t['slug']}"),
                ),
                spacing="2",
            ),
            spacing="2", width="100%",
        ),
        width="100%", data_slug=t["slug"], class_name="tenant-card",
    )


def kpi_row(r) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(rx.vstack(rx.text(r.name, weight="medium"),
                                           rx.text(r.slug, " · ", r.currency, size="1", color="var(--gray-11)"),
                                           spacing="0"), white_space="nowrap"),
        rx.foreach(r.cells, lambda c: number_cell(rx.vstack(
            rx.text(c.value), rx.text(c.change, size="1", color=rx.match(c.tone, ("green", "var(--green-11)"),
                                                                        ("red", "var(--red-11)"), "var(--gray-11)")),
            spacing="0", align="end"))),
        data_slug=r.slug,
    )


def kpi_table() -> rx.Component:
    """Every marketplace's KPIs for the chosen range, each against the period before (AnalyticsService.overview)."""
    return panel(
        "Marketplaces at a glance", None,
        rx.flex(
            rx.text("Range", size="2", weight="medium", id="kpi-range-label"),
            rx.segmented_control.root(*[rx.segmented_control.item(label, value=value) for value, label, _ in PRESETS],
                                      value=OperatorState.kpi_preset, on_change=OperatorState.set_kpi_preset,
                                      size="1", aria_labelledby="kpi-range-label"),
            rx.cond(OperatorState.kpi_loading, rx.spinner(size="1")),
            rx.text(OperatorState.kpi_period, size="1", color="var(--gray-11)"),
            gap="8px", align="center", wrap="wrap",
        ),
        rx.cond(
            OperatorState.kpi_rows.length() == 0,
            rx.text(rx.cond(OperatorState.kpi_loading, "Reading every marketplace's numbers…", "No marketplace yet."),
                    size="2", color="var(--gray-11)"),
            report_table([header_cell("Marketplace", numeric=False),
                          rx.foreach(OperatorState.kpi_columns, lambda label: header_cell(label))],
                         OperatorState.kpi_rows, kpi_row, "operator-kpis",
                         caption="Each marketplace's KPIs for the period, with the change on the period before"),
        ),
        panel_id="marketplace-kpis", subtitle="Money in each marketplace's currency; changes on the period before",
    )


@page("/operator", "Platform console", on_load=OperatorState.load)
def operator_console() -> rx.Component:
    content = rx.vstack(
        page_header("Marketplaces", "Every marketplace on this installation.", create_dialog()),
        rx.cond(OperatorState.setup_hint != "",
                rx.callout(OperatorState.setup_hint, icon="credit-card", color_scheme="red", width="100%",
                           id="payments-setup-hint")),
        rx.cond(
            OperatorState.tenants.length() == 0,
            empty_state("store", "No marketplaces yet", "Create the first one."),
            rx.grid(rx.foreach(OperatorState.tenants, tenant_card), columns=rx.breakpoints(initial="1", md="2"),
                    spacing="3", width="100%"),
        ),
        kpi_table(),
        edit_dialog(),
        spacing="4", width="100%",
    )
    return rx.box(
        a11y_styles(),
        skip_link(),
        rx.el.header(
            rx.hstack(
                rx.hstack(rx.icon("layers", size=20), rx.text("Platform console", weight="bold"), align="center"),
                rx.spacer(),
                rx.text(OperatorState.operator_name, size="2", color="var(--gray-11)"),
                rx.button("Log out", size="1", variant="ghost", on_click=OperatorState.operator_logout,
                          id="operator-logout"),
                align="center", max_width="1120px", margin="0 auto", padding_x="16px", height="56px",
            ),
            border_bottom="1px solid var(--gray-a5)", background="var(--color-panel-solid)",
        ),
        rx.el.main(
            rx.cond(OperatorState.operator_access == "ok", content, loading_panel()),
            max_width="1120px", margin="0 auto", padding="24px 16px", id="main-content", tab_index=-1,
            outline="none",
        ),
        min_height="100vh", background="var(--gray-2)",
    )
