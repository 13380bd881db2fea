"""The search page's parts: the search box, the filters (a sidebar, a drawer on phones), the results and paging.

The filters are drawn twice, with different element ids: once in the sidebar (shown from 768 px) and once in the
drawer (phones), which exists in the page only while it is open. Ids stay unique, so every label names its own
input.
"""

from __future__ import annotations

import reflex as rx

from components.buttons import VISUALLY_HIDDEN
from components.forms import field_label, place_field
from components.layout import brand_style, empty_state, loading_panel
from components.market import pro_result_card
from state.pros import RADII, RATINGS, SORTS, SearchState

SUGGESTIONS_ID = "search-suggestions"
WIDE = "sm"  # Radix's breakpoint at 768 px: the sidebar from here, the drawer below


def field_error(name: str, prefix: str) -> rx.Component:
    return rx.cond(SearchState.errors.contains(name),
                   rx.text(SearchState.errors[name], size="1", color="var(--red-11)", id=f"{prefix}{name}-error"))


def _described(name: str, prefix: str) -> dict:
    """aria-invalid and aria-describedby of an input whose error shows under it."""
    has_error = SearchState.errors.contains(name)
    return {"aria-invalid": rx.cond(has_error, "true", "false"),
            "aria-describedby": rx.cond(has_error, f"{prefix}{name}-error", "")}


def text_filter(label: str, name: str, prefix: str, value, on_change, **props) -> rx.Component:
    """A labelled text input bound to the state (debounced), its error under it."""
    return rx.vstack(
        field_label(label, f"{prefix}{name}"),
        rx.input(id=f"{prefix}{name}", name=name, value=value, on_change=on_change, debounce_timeout=250,
                 width="100%", size="2", color_scheme=rx.cond(SearchState.errors.contains(name), "red", "gray"),
                 custom_attrs=_described(name, prefix), **props),
        field_error(name, prefix),
        spacing="1", width="100%",
    )


def search_bar() -> rx.Component:
    """The keyword box: suggestions as you type (a native datalist, which browsers and screen readers already
    know how to offer), Enter or the button searches."""
    return rx.form(
        rx.flex(
            rx.box(
                rx.input(
                    rx.input.slot(rx.icon("search", size=16)),
                    id="q", name="q", type="search", value=SearchState.q, on_change=SearchState.type_query,
                    debounce_timeout=250, placeholder="What do you need? e.g. plumber, deep clean, piano movers",
                    list=SUGGESTIONS_ID, auto_complete="off", size="3", width="100%", max_length=100,
                    custom_attrs={"aria-label": "Search professionals", **_described("q", "")},
                ),
                rx.el.datalist(rx.foreach(SearchState.suggestions, lambda s: rx.el.option(value=s)),
                               id=SUGGESTIONS_ID),
                field_error("q", ""),
                flex="1", min_width="0",
            ),
            rx.button(rx.icon("search", size=16), "Search", type="submit", size="3"),
            gap="8px", width="100%", align="start",
        ),
        on_submit=SearchState.submit_search, role="search", width="100%",
    )


def category_facets() -> rx.Component:
    """Categories with how many pros match every other filter; the chosen one is marked (aria-current) and links
    back to all categories."""
    def item(label, count, href, selected) -> rx.Component:
        return rx.link(
            rx.text(label, size="2", weight=rx.cond(selected, "bold", "regular"), flex="1"),
            rx.cond(count >= 0, rx.text(count, rx.el.span(rx.cond(count == 1, " professional", " professionals"),
                                                          style=VISUALLY_HIDDEN),
                                        size="1", color=rx.cond(selected, "inherit", "var(--gray-11)"))),
            href=href, underline="none", display="flex", align_items="center", gap="8px", padding="6px 10px",
            width="100%", border_radius="8px", color=rx.cond(selected, "var(--accent-contrast)", "var(--gray-12)"),
            background=rx.cond(selected, "var(--accent-9)", "transparent"),
            _hover={"background": rx.cond(selected, "var(--accent-10)", "var(--gray-a3)")},
            aria_current=rx.cond(selected, "true", "false"), class_name="category-facet",
        )

    none_chosen = ~SearchState.applied.contains("category")
    return rx.el.nav(
        rx.text("Category", size="2", weight="bold", as_="div", margin_bottom="4px"),
        rx.vstack(
            item("All categories", -1, SearchState.all_categories_href, none_chosen),
            rx.foreach(SearchState.facets, lambda f: item(f.name, f.count, f.href, f.selected)),
            spacing="1", width="100%",
        ),
        aria_label="Categories", style={"width": "100%"},
    )


def _select(label: str, name: str, prefix: str, value, on_change, options, placeholder: str = "") -> rx.Component:
    return rx.vstack(
        field_label(label, f"{prefix}{name}"),
        rx.select.root(
            rx.select.trigger(id=f"{prefix}{name}", width="100%", placeholder=placeholder),
            rx.select.content(*[rx.select.item(text, value=v) for v, text in options]),
            name=name, value=value, on_change=on_change, size="2",
        ),
        field_error(name, prefix),
        spacing="1", width="100%",
    )


def rating_filter(prefix: str) -> rx.Component:
    return rx.el.fieldset(
        rx.el.legend(rx.text("Minimum rating", size="2", weight="medium")),
        rx.radio_group.root(
            rx.vstack(*[rx.text(rx.hstack(rx.radio_group.item(value=v, id=f"{prefix}rating-{v}"),
                                          rx.cond(v == RATINGS[0][0], rx.fragment(),
                                                  rx.icon("star", size=13, color="var(--amber-9)",
                                                          fill="currentColor")),
                                          text, spacing="2", align="center"),
                                as_="label", size="2", custom_attrs={"htmlFor": f"{prefix}rating-{v}"})
                        for v, text in RATINGS], spacing="2"),
            name="min_rating", value=SearchState.min_rating, on_change=SearchState.choose_rating,
        ),
        field_error("min_rating", prefix),
        style={"border": "none", "padding": "0", "margin": "0", "minWidth": "0", "width": "100%"},
    )


def filters(prefix: str) -> rx.Component:
    """Every filter but the category (links, above) and the sort (over the results). Choices apply at once;
    typed ones on Enter or Apply."""
    return rx.form(
        rx.vstack(
            place_field("Location", "place", SearchState.errors, value=SearchState.place,
                        on_change=SearchState.set_place, field_id=f"{prefix}place", placeholder="City or town",
                        auto_complete="off", size="2"),
            _select("Within", "radius", prefix, SearchState.radius, SearchState.choose_radius,
                    [(r, f"{r} km") for r in RADII]),
            rx.el.fieldset(
                rx.el.legend(rx.text("Price per hour", size="2", weight="medium")),
                rx.grid(
                    text_filter("Min", "price_min", prefix, SearchState.price_min, SearchState.set_price_min,
                                input_mode="decimal", placeholder="Any"),
                    text_filter("Max", "price_max", prefix, SearchState.price_max, SearchState.set_price_max,
                                input_mode="decimal", placeholder="Any"),
                    columns="2", spacing="2", width="100%",
                ),
                style={"border": "none", "padding": "0", "margin": "0", "minWidth": "0", "width": "100%"},
            ),
            rating_filter(prefix),
            rx.vstack(
                rx.checkbox("Verified pros only", checked=SearchState.verified,
                            on_change=SearchState.choose_verified, id=f"{prefix}verified", name="verified", size="2"),
                field_error("verified", prefix),
                spacing="1",
            ),
            text_filter("Available on", "date", prefix, SearchState.date, SearchState.set_date, type="date",
                        min=SearchState.min_day),
            rx.button("Apply filters", type="submit", variant="soft", width="100%"),
            spacing="4", width="100%",
        ),
        on_submit=SearchState.apply_filters, width="100%", id=f"{prefix}filters",
    )


def sidebar() -> rx.Component:
    return rx.box(
        rx.vstack(category_facets(), rx.separator(size="4"), filters("side-"), spacing="4", width="100%"),
        display=rx.breakpoints(initial="none", **{WIDE: "block"}), padding="16px", border_radius="12px",
        background="var(--color-panel-solid)", border="1px solid var(--gray-a4)", align_self="start",
        id="search-sidebar",
    )


def filters_drawer() -> rx.Component:
    """Phones: the filters slide in from the left, behind a "Filters" button that says how many are on. The drawer
    renders in place (no portal); Reflex wraps its content in a theme of its own, which takes the app's settings
    but Radix's indigo for the accent, hence the brand's colours again on it."""
    count = SearchState.active_filters
    return rx.box(
        rx.drawer.root(
            rx.drawer.trigger(rx.button(
                rx.icon("sliders-horizontal", size=16), "Filters",
                rx.cond(count > 0, rx.badge(count, radius="full", variant="solid", size="1")),
                variant="outline", size="2", aria_label=rx.cond(count > 0, f"Filters, {count} on", "Filters"),
            )),
            rx.drawer.overlay(z_index="40", background="rgba(0, 0, 0, 0.4)", position="fixed", inset="0"),
            rx.drawer.content(
                rx.vstack(
                    rx.hstack(
                        rx.drawer.title(rx.text("Filters", size="5", weight="bold")),
                        rx.spacer(),
                        rx.drawer.close(rx.icon_button(rx.icon("x", size=18), variant="ghost", color_scheme="gray",
                                                       aria_label="Close filters")),
                        width="100%", align="center",
                    ),
                    rx.drawer.description(rx.text("Narrow the results; they update behind this panel.", size="2",
                                                  color="var(--gray-11)")),
                    category_facets(),
                    rx.separator(size="4"),
                    filters("drawer-"),
                    rx.drawer.close(rx.button(
                        rx.cond(SearchState.searching, "Searching…", f"Show {SearchState.total} results"),
                        size="3", width="100%")),
                    spacing="4", width="100%",
                ),
                position="fixed", top="0", left="0", bottom="0", width="min(340px, 88vw)", z_index="50",
                padding="20px 16px", overflow_y="auto", background="var(--color-panel-solid)",
                box_shadow="var(--shadow-5)", style=brand_style(),
            ),
            direction="left", open=SearchState.filters_open, on_open_change=SearchState.set_filters_open,
        ),
        display=rx.breakpoints(initial="block", **{WIDE: "none"}),
    )


def filter_chips() -> rx.Component:
    return rx.cond(SearchState.chips.length() > 0, rx.flex(
        rx.foreach(SearchState.chips, lambda c: rx.link(
            rx.badge(c.label, rx.icon("x", size=12), variant="soft", radius="full", size="2"),
            href=c.href, underline="none", aria_label=f"Remove filter: {c.label}")),
        rx.link("Clear filters", href=SearchState.clear_href, size="2", id="clear-filters"),
        gap="8px", wrap="wrap", align="center", width="100%",
    ))


def toolbar() -> rx.Component:
    """Filters (phones), the summary, the sort. On phones the summary takes a line of its own under the buttons."""
    return rx.flex(
        filters_drawer(),
        rx.hstack(
            rx.cond(SearchState.loaded & ~SearchState.unavailable & (SearchState.errors.length() == 0),
                    rx.text(SearchState.summary, size="2", weight="medium", id="search-summary")),
            rx.cond(SearchState.searching, rx.spinner(size="1")),
            spacing="2", align="center", min_width="0", role="status", aria_live="polite",
            flex=rx.breakpoints(initial="1 1 100%", **{WIDE: "1 1 0"}),
            order=rx.breakpoints(initial="3", **{WIDE: "0"}),
        ),
        rx.hstack(
            field_label("Sort by", "sort"),
            rx.select.root(
                rx.select.trigger(id="sort"),
                rx.select.content(*[rx.select.item(text, value=v) for v, text in SORTS]),
                value=SearchState.sort, on_change=SearchState.choose_sort, size="2",
            ),
            spacing="2", align="center", flex_shrink="0", margin_left="auto",
        ),
        gap="8px 12px", align="center", wrap="wrap", width="100%",
    )


def link_button(*children, href, **props) -> rx.Component:
    """A link drawn as a button: Radix's Button on the link itself (as_child), one element and one target."""
    return rx.button(rx.link(*children, href=href, underline="none"), as_child=True, **props)


def pager() -> rx.Component:
    def step(label: str, icon: str, href, first: bool) -> rx.Component:
        inner = [rx.icon(icon, size=14), label] if first else [label, rx.icon(icon, size=14)]
        return rx.cond(href != "", link_button(*inner, href=href, variant="soft", size="2"),
                       rx.button(*inner, variant="soft", size="2", disabled=True))

    return rx.cond(SearchState.pages > 1, rx.el.nav(
        rx.hstack(
            step("Previous", "chevron-left", SearchState.previous_href, True),
            rx.text("Page ", SearchState.page, " of ", SearchState.pages, size="2", color="var(--gray-11)",
                    id="search-page"),
            step("Next", "chevron-right", SearchState.next_href, False),
            spacing="3", align="center", justify="center", width="100%",
        ),
        aria_label="Pages of results", style={"width": "100%"},
    ))


def results() -> rx.Component:
    listing = rx.cond(
        SearchState.cards.length() == 0,
        empty_state("search-x", "No professionals match", "Try other words, fewer filters or a wider distance.",
                    link_button("Clear filters", href=SearchState.clear_href, variant="soft")),
        rx.grid(rx.foreach(SearchState.cards, pro_result_card),
                columns=rx.breakpoints(initial="1", xs="2", sm="1", md="2"), spacing="3", width="100%",
                id="search-results"),
    )
    body = rx.cond(
        SearchState.unavailable,
        empty_state("cloud-off", "Search is unavailable right now", "Please try again in a minute.",
                    rx.button("Try again", variant="soft", on_click=SearchState.load)),
        rx.cond(SearchState.errors.length() > 0,
                rx.callout("Check the highlighted filters: the search could not run as it is.",
                           icon="triangle-alert", color_scheme="red", width="100%", id="search-errors"),
                listing),
    )
    return rx.vstack(
        toolbar(),
        filter_chips(),
        rx.cond(SearchState.loaded,
                rx.box(body, opacity=rx.cond(SearchState.searching, "0.55", "1"), transition="opacity 0.15s",
                       width="100%", aria_busy=rx.cond(SearchState.searching, "true", "false")),
                loading_panel()),
        pager(),
        spacing="3", width="100%", min_width="0",
    )


def search_layout() -> rx.Component:
    return rx.vstack(
        search_bar(),
        rx.grid(
            sidebar(), results(),
            columns=rx.breakpoints(initial="1", **{WIDE: "240px minmax(0, 1fr)", "md": "260px minmax(0, 1fr)"}),
            gap="20px", width="100%", align_items="start",
        ),
        spacing="4", width="100%",
    )
