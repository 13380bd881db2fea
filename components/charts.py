"""Charts and report tables for the admin dashboard: each a titled card with its "Export CSV" button, a chart with an
accessible name and a text alternative under it, tables whose headers sort them, and skeletons while loading.

Nothing here knows the dashboard's state: the page passes the vars and handlers (pages/analytics.py)."""

from __future__ import annotations

from collections.abc import Callable

import reflex as rx

# The dashboard's series colours: the tenant's brand and accent, then neutral Radix scales.
BRAND, ACCENT, SECOND, THIRD = "var(--brand)", "var(--brand-accent)", "var(--teal-9)", "var(--gray-9)"
CHART_HEIGHT = 260

# Hidden on screen, read by screen readers (what Radix's VisuallyHidden and Tailwind's sr-only do).
VISUALLY_HIDDEN = {"position": "absolute", "width": "1px", "height": "1px", "padding": "0", "margin": "-1px",
                   "overflow": "hidden", "clip": "rect(0, 0, 0, 0)", "white_space": "nowrap", "border": "0"}


def visually_hidden(*children) -> rx.Component:
    return rx.el.span(*children, style=VISUALLY_HIDDEN)


def export_button(what: str, on_click, busy: rx.Var | bool = False) -> rx.Component:
    """"Export CSV", named for what it exports ("Export GMV CSV") so that a screen reader tells the buttons apart."""
    return rx.button(rx.icon("download", size=14), "Export", visually_hidden(f" {what}"), " CSV", size="1",
                     variant="soft", color_scheme="gray", on_click=on_click, loading=busy, flex_shrink="0")


def panel(title: str, export: rx.Component | None, *children, panel_id: str, subtitle: str | rx.Var = "",
          **props) -> rx.Component:
    """A dashboard card: its heading (the section's name), the export button, then the content."""
    heading = rx.vstack(rx.heading(title, as_="h2", size="3", id=f"{panel_id}-title"),
                        (rx.text(subtitle, size="1", color="var(--gray-11)") if isinstance(subtitle, rx.Var) or subtitle
                         else rx.fragment()),
                        spacing="1", min_width="0")
    return rx.card(
        rx.vstack(
            rx.flex(heading, rx.spacer(), *([export] if export is not None else []),
                    align="start", gap="8px", width="100%"),
            *children,
            spacing="3", width="100%",
        ),
        width="100%", min_width="0", id=panel_id, role="region", aria_labelledby=f"{panel_id}-title", **props,
    )


def figure(name: str, chart: rx.Component, summary: rx.Var | str, figure_id: str) -> rx.Component:
    """A chart as a figure named `name`, its text alternative (`summary`: what the chart shows, in words) as the
    visible caption."""
    return rx.el.figure(
        rx.box(chart, width="100%", height=f"{CHART_HEIGHT}px", font_size="12px"),
        rx.el.figcaption(rx.text(summary, size="1", color="var(--gray-11)"), margin_top="8px"),
        aria_label=name, id=figure_id, margin="0", width="100%", min_width="0",
    )


def _axes(x_key: str, *, y_format: bool = True, legend: bool = True, slanted: bool = False) -> list[rx.Component]:
    """Grid, axes and tooltip; a legend when there are several series; `slanted` x labels, all of them, for
    categories with long names (order states)."""
    x_axis = (rx.recharts.x_axis(data_key=x_key, tick_line=False, interval=0, angle=-35, text_anchor="end",
                                 height=64) if slanted
              else rx.recharts.x_axis(data_key=x_key, tick_line=False, min_tick_gap=16))
    return [
        rx.recharts.cartesian_grid(stroke_dasharray="3 3", vertical=False, stroke="var(--gray-a5)"),
        x_axis,
        rx.recharts.y_axis(tick_line=False, width=52, allow_decimals=y_format),
        rx.recharts.graphing_tooltip(),
        *([rx.recharts.legend(icon_size=10)] if legend else []),
    ]


def area_chart(data: rx.Var, x_key: str, series: list[tuple[str, str, str]]) -> rx.Component:
    """Areas over time: `series` is (data key, legend name, colour) each."""
    return rx.recharts.area_chart(
        *[rx.recharts.area(data_key=key, name=name, stroke=colour, fill=colour, fill_opacity=0.18,
                           type_="monotone", is_animation_active=False, dot=False)
          for key, name, colour in series],
        *_axes(x_key),
        data=data, width="100%", height=CHART_HEIGHT, margin={"top": 8, "right": 8, "left": 0, "bottom": 0},
    )


def bars_and_line(data: rx.Var, x_key: str, bar: tuple[str, str, str], line: tuple[str, str, str]) -> rx.Component:
    """A count per day as bars and another as a line, on one axis."""
    (bar_key, bar_name, bar_colour), (line_key, line_name, line_colour) = bar, line
    return rx.recharts.composed_chart(
        rx.recharts.bar(data_key=bar_key, name=bar_name, fill=bar_colour, is_animation_active=False),
        rx.recharts.line(data_key=line_key, name=line_name, stroke=line_colour, dot=False, type_="monotone",
                         stroke_width=2, is_animation_active=False),
        *_axes(x_key, y_format=False),
        data=data, width="100%", height=CHART_HEIGHT, margin={"top": 8, "right": 8, "left": 0, "bottom": 0},
    )


def bar_chart(data: rx.Var, x_key: str, y_key: str, name: str, colour: str = BRAND,
              label_key: str = "", slanted: bool = False) -> rx.Component:
    """One bar per row (one series: no legend, the chart's name says what it counts); `label_key` prints a value
    above each bar (a funnel step's conversion)."""
    labels = [rx.recharts.label_list(data_key=label_key, position="top")] if label_key else []
    return rx.recharts.bar_chart(
        rx.recharts.bar(*labels, data_key=y_key, name=name, fill=colour, radius=[4, 4, 0, 0],
                        is_animation_active=False),
        *_axes(x_key, y_format=False, legend=False, slanted=slanted),
        data=data, width="100%", height=CHART_HEIGHT, margin={"top": 20, "right": 8, "left": 0, "bottom": 0},
    )


def sort_header(label: str, column: str, sorted_by: rx.Var, descending: rx.Var, on_sort: Callable,
                numeric: bool = True) -> rx.Component:
    """A column header that sorts the table by its column (again: the other way), telling assistive technology
    the current order through aria-sort."""
    active = sorted_by == column
    arrow = rx.cond(active, rx.cond(descending, "↓", "↑"), "")
    return rx.table.column_header_cell(
        rx.button(label, rx.text(arrow, as_="span", aria_hidden="true", min_width="0.8em"), variant="ghost",
                  size="1", color_scheme="gray", on_click=on_sort(column), white_space="nowrap",
                  high_contrast=active),
        aria_sort=rx.cond(active, rx.cond(descending, "descending", "ascending"), "none"),
        text_align="right" if numeric else "left", white_space="nowrap",
    )


def report_table(header_cells: list[rx.Component], rows: rx.Var, row: Callable, table_id: str,
                 caption: str = "") -> rx.Component:
    """A compact table that scrolls sideways on a narrow screen; `caption` names it for screen readers."""
    return rx.box(
        rx.table.root(
            *([rx.el.caption(caption, style=VISUALLY_HIDDEN)] if caption else []),
            rx.table.header(rx.table.row(*header_cells)),
            rx.table.body(rx.foreach(rows, row)),
            size="1", variant="ghost", width="100%", id=table_id,
        ),
        overflow_x="auto", width="100%",
    )


def header_cell(label: str, numeric: bool = True) -> rx.Component:
    return rx.table.column_header_cell(label, text_align="right" if numeric else "left", white_space="nowrap")


def number_cell(value, **props) -> rx.Component:
    return rx.table.cell(value, text_align="right", white_space="nowrap",
                         font_variant_numeric="tabular-nums", **props)


def chart_skeleton() -> rx.Component:
    return rx.skeleton(rx.box(height=f"{CHART_HEIGHT}px", width="100%"), loading=True)


def card_skeleton() -> rx.Component:
    return rx.card(rx.vstack(rx.skeleton(rx.text("Gross merchandise value"), loading=True),
                             rx.skeleton(rx.text("$00,000.00", size="6"), loading=True),
                             rx.skeleton(rx.text("previous $0,000.00"), loading=True), spacing="2"),
                   width="100%")
