"""The admin's dashboard (/admin, the admin's home): KPIs against the previous period, charts, the funnel, cohorts,
supply and demand, and the glossary that defines every number. Each chart and table exports its numbers as CSV.
The operations queues are pages/operations.py."""

from __future__ import annotations

import reflex as rx

from components.charts import (ACCENT, BRAND, SECOND, area_chart, bar_chart, bars_and_line, card_skeleton,
                               chart_skeleton, export_button, figure, header_cell, number_cell, panel, report_table,
                               sort_header, visually_hidden)
from components.forms import field_label, form_alert
from components.layout import empty_state, page_header, page_shell
from pages.registry import page
from state.analytics import ALL, PRESETS, DashboardState
from state.app_state import HOME_FOR_ROLE

S = DashboardState


def export(what: str, table: str) -> rx.Component:
    return export_button(what, S.export(table), busy=S.exporting == table)


# ------------------------------------------------------------------------------------------------ filters

def _date_field(label: str, name: str, value: rx.Var, on_change) -> rx.Component:
    has_error = S.errors.contains(name)
    return rx.vstack(
        field_label(label, name),
        rx.input(type="date", name=name, id=name, value=value, on_change=on_change, size="2", width="100%",
                 color_scheme=rx.cond(has_error, "red", "gray"), variant="surface",
                 custom_attrs={"aria-invalid": rx.cond(has_error, "true", "false"),
                               "aria-describedby": rx.cond(has_error, f"{name}-error", "")}),
        rx.cond(has_error, rx.text(S.errors[name], size="1", color="var(--red-11)", id=f"{name}-error")),
        spacing="1", min_width="140px", flex="1",
    )


def _presets() -> rx.Component:
    return rx.vstack(
        rx.text("Range", size="2", weight="medium", id="range-label"),
        rx.flex(
            *[rx.button(label, type="button", size="2", on_click=S.choose_preset(value),
                        variant=rx.cond(S.preset == value, "solid", "soft"),
                        aria_pressed=rx.cond(S.preset == value, "true", "false"), id=f"preset-{value}")
              for value, label, _ in PRESETS],
            gap="6px", wrap="wrap", role="group", aria_labelledby="range-label",
        ),
        spacing="1",
    )


def _category_select() -> rx.Component:
    return rx.vstack(
        field_label("Category", "category-filter"),
        rx.select.root(
            rx.select.trigger(placeholder="All categories", id="category-filter", width="100%"),
            rx.select.content(
                rx.select.item("All categories", value=ALL),
                rx.foreach(S.categories, lambda c: rx.select.item(c["name"], value=c["id"])),
            ),
            value=S.category, on_change=S.set_category, size="2",
        ),
        spacing="1", min_width="180px", flex="1", width=rx.breakpoints(initial="100%", md="auto"),
    )


def filters() -> rx.Component:
    """Presets, the two dates with their button, the category: side by side on a wide screen, stacked on a phone."""
    return rx.card(
        rx.form(
            rx.flex(
                _presets(),
                rx.flex(
                    _date_field("Start date", "start", S.start, S.set_start),
                    _date_field("End date", "end", S.end, S.set_end),
                    rx.box(rx.button("Apply dates", type="submit", size="2", variant="outline", id="apply-dates"),
                           padding_top=rx.breakpoints(initial="0", xs="22px")),
                    gap="8px", wrap="wrap", align="start", width=rx.breakpoints(initial="100%", md="auto"),
                ),
                _category_select(),
                direction=rx.breakpoints(initial="column", md="row"), gap="16px", align="start", width="100%",
            ),
            on_submit=S.apply_range,
        ),
        width="100%",
    )


# ------------------------------------------------------------------------------------------------ KPIs

def kpi_card(k) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text(k["label"], size="2", color="var(--gray-11)", title=k["hint"]),
            rx.text(k["value"], size=rx.breakpoints(initial="4", sm="6"), weight="bold", overflow_wrap="anywhere",
                    class_name="kpi-value"),
            rx.cond(
                k["previous"] != "",
                rx.flex(
                    rx.badge(rx.text(k["change"], aria_hidden="true"), visually_hidden(k["spoken"]),
                             color_scheme=k["tone"], variant="soft", class_name="kpi-change"),
                    rx.text("previous ", k["previous"], size="1", color="var(--gray-11)"),
                    gap="6px", align="center", wrap="wrap",
                ),
                rx.text("now, not compared", size="1", color="var(--gray-11)"),
            ),
            spacing="1", min_width="0",
        ),
        width="100%", min_width="0", data_kpi=k["key"], class_name="kpi-card", role="group", aria_label=k["label"],
    )


def kpis() -> rx.Component:
    return panel(
        "Key figures", export("key figures", "kpis"),
        rx.cond(S.currencies.length() > 1,
                rx.text("Money figures are in ", S.currency, ", the marketplace's main currency.", size="1",
                        color="var(--gray-11)")),
        rx.grid(rx.foreach(S.kpis, kpi_card), columns=rx.breakpoints(initial="2", md="4"),
                spacing=rx.breakpoints(initial="2", sm="3"), width="100%"),
        panel_id="kpis",
    )


# ------------------------------------------------------------------------------------------------ charts

def gmv_chart() -> rx.Component:
    return panel(
        "GMV and fees over time", export("GMV", "series"),
        figure("GMV and platform fees per day",
               area_chart(S.series, "day", [("gmv", "GMV", BRAND), ("fees", "Platform fees", ACCENT)]),
               S.summaries["series"], "gmv-chart"),
        panel_id="gmv", subtitle=rx.cond(S.currency != "", "In " + S.currency, ""),
    )


def activity_chart() -> rx.Component:
    return panel(
        "Orders and sign-ups", export("orders and sign-ups", "activity"),
        figure("Orders created and sign-ups per day",
               bars_and_line(S.series, "day", ("orders", "Orders created", BRAND), ("signups", "Sign-ups", SECOND)),
               S.summaries["activity"], "activity-chart"),
        panel_id="activity",
    )


def orders_by_state() -> rx.Component:
    return panel(
        "Orders by state", export("orders by state", "orders_by_state"),
        figure("Orders reaching each state", bar_chart(S.orders_by_state, "label", "count", "Orders", slanted=True),
               S.summaries["orders_by_state"], "orders-by-state-chart"),
        report_table([header_cell("State", numeric=False), header_cell("Orders")], S.orders_by_state,
                     lambda r: rx.table.row(rx.table.cell(r["label"]), number_cell(r["count"]),
                                            data_state=r["state"]),
                     "orders-by-state-table", caption="Orders by state"),
        panel_id="orders-by-state",
    )


def funnel() -> rx.Component:
    return panel(
        "Funnel", export("funnel", "funnel"),
        figure("Funnel from request to completed order, with conversion at each step",
               bar_chart(S.funnel, "label", "count", "Count", colour=SECOND, label_key="conversion"),
               S.summaries["funnel"], "funnel-chart"),
        panel_id="funnel", subtitle="Requests created in the period, and how far they got",
    )


FUNNEL_COLUMNS = [("requests", "Requests"), ("quoted", "Quoted"), ("hired", "Hired"), ("paid", "Paid"),
                  ("completed", "Completed")]


def sortable_table(table: str, text_columns: list[tuple[str, str]], number_columns: list[tuple[str, str]],
                   rows: rx.Var, table_id: str, caption: str) -> rx.Component:
    """A report table whose headers sort it (the state keeps the column and direction per table)."""
    sorted_by, desc = S.sort_column[table], S.sort_descending[table]
    by = lambda column: S.sort_by(table, column)  # noqa: E731
    return report_table(
        [*[sort_header(label, key, sorted_by, desc, by, numeric=False) for key, label in text_columns],
         *[sort_header(label, key, sorted_by, desc, by) for key, label in number_columns]],
        rows,
        lambda r: rx.table.row(*[rx.table.cell(r[key], white_space="nowrap") for key, _ in text_columns],
                               *[number_cell(r[key]) for key, _ in number_columns]),
        table_id, caption=caption)


def funnel_by_category() -> rx.Component:
    return panel(
        "Funnel by category", export("funnel by category", "funnel_by_category"),
        rx.cond(
            S.funnel_by_category.length() == 0,
            rx.text("No requests in this period.", size="2", color="var(--gray-11)"),
            sortable_table("funnel_by_category", [("category", "Category")], FUNNEL_COLUMNS,
                           S.funnel_by_category_sorted, "funnel-by-category-table", "Funnel by category"),
        ),
        panel_id="funnel-by-category", subtitle="Select a column header to sort",
    )


def cohorts() -> rx.Component:
    months = [f"m{k}" for k in range(12)]
    return panel(
        "Cohort retention", export("cohorts", "cohorts"),
        rx.cond(
            S.cohorts.length() == 0,
            rx.text("No clients signed up in the last twelve months.", size="2", color="var(--gray-11)"),
            report_table(
                [header_cell("Signed up", numeric=False), header_cell("Clients"),
                 *[header_cell(f"M{k}") for k in range(12)]],
                S.cohorts,
                lambda r: rx.table.row(
                    rx.table.row_header_cell(r["cohort"], white_space="nowrap"), number_cell(r["clients"]),
                    *[number_cell(r[m], background=r[f"{m}_bg"], color=r[f"{m}_fg"]) for m in months]),
                "cohorts-table", caption="Share of each sign-up month's clients who paid for an order, by month"),
        ),
        panel_id="cohorts",
        subtitle="Clients by sign-up month; M0 = paid in the month they signed up, Mk = paid k months later",
    )


SUPPLY_COLUMNS = [("open_requests", "Open requests"), ("unanswered", "Unanswered"), ("active_pros", "Active pros")]


def supply_demand() -> rx.Component:
    return panel(
        "Supply and demand", export("supply and demand", "supply_demand"),
        rx.cond(
            S.supply_demand.length() == 0,
            rx.text("No open requests right now.", size="2", color="var(--gray-11)"),
            sortable_table("supply_demand", [("category", "Category"), ("place", "Place")], SUPPLY_COLUMNS,
                           S.supply_demand_sorted, "supply-demand-table", "Supply and demand by category and place"),
        ),
        rx.cond(S.supply_demand.length() > S.supply_demand_sorted.length(),
                rx.button("Show all ", S.supply_demand.length(), " rows", size="1", variant="soft",
                          on_click=S.show_all_supply_demand)),
        panel_id="supply-demand", subtitle="Open requests now, by category and place; select a header to sort",
    )


def glossary() -> rx.Component:
    return panel(
        "Glossary", None,
        rx.el.dl(
            rx.foreach(S.glossary, lambda g: rx.box(
                rx.el.dt(rx.text(g["term"], weight="bold", size="2")),
                rx.el.dd(rx.text(g["definition"], size="2", color="var(--gray-11)"), margin_left="0"),
                padding_y="6px", border_bottom="1px solid var(--gray-a4)")),
            margin="0", width="100%",
        ),
        panel_id="glossary", subtitle="Every number on this page, exactly as it is computed",
    )


# ------------------------------------------------------------------------------------------------ the page

def skeletons() -> rx.Component:
    return rx.vstack(
        rx.grid(*[card_skeleton() for _ in range(4)], columns=rx.breakpoints(initial="2", md="4"),
                spacing="3", width="100%"),
        rx.grid(*[rx.card(chart_skeleton(), width="100%") for _ in range(2)],
                columns=rx.breakpoints(initial="1", md="2"), spacing="3", width="100%"),
        spacing="3", width="100%", id="dashboard-loading", aria_busy="true",
    )


def no_activity() -> rx.Component:
    return rx.box(empty_state("chart-no-axes-column", "Nothing to chart yet",
                              "No requests or orders in this period. The charts fill in as clients post requests "
                              "and book professionals; a longer range may show earlier activity."),
                  id="no-activity")


def content() -> rx.Component:
    two = rx.breakpoints(initial="1", md="2")
    return rx.vstack(
        kpis(),
        rx.cond(
            S.has_activity,
            rx.grid(gmv_chart(), activity_chart(), orders_by_state(), funnel(), columns=two, spacing="3",
                    width="100%"),
            no_activity(),
        ),
        funnel_by_category(),
        cohorts(),
        supply_demand(),
        glossary(),
        spacing="3", width="100%", id="dashboard",
    )


def status_line() -> rx.Component:
    return rx.flex(
        rx.cond(S.loading, rx.spinner(size="1")),
        rx.text(rx.cond(S.loading, "Updating…", rx.cond(S.loaded, "Updated " + S.generated_at, "")),
                size="1", color="var(--gray-11)"),
        gap="6px", align="center", aria_live="polite", id="dashboard-status",
    )


@page(HOME_FOR_ROLE["admin"], "Dashboard", on_load=DashboardState.load)
def dashboard() -> rx.Component:
    return page_shell(rx.vstack(
        page_header("Dashboard", rx.cond(S.loaded, S.period_label, "How your marketplace is doing")),
        filters(),
        form_alert(S.form_error),
        status_line(),
        rx.cond(S.loaded, content(), skeletons()),
        spacing="4", width="100%",
    ))
