"""Public pages: the search for professionals (/pros) and a professional's profile with booking."""

from __future__ import annotations

import reflex as rx

from components.buttons import link_button
from components.forms import field, form_dialog
from components.layout import empty_state, loading_panel, page_header, page_shell
from components.market import meta, phone_verified_badge, section, verified_badge
from components.reviews import stars
from components.search import search_layout
from pages.registry import page
from pages.reviews import profile_reviews
from state.pros import DAY_NAMES, PublicProState, SearchState
from state.reviews import ProReviewsState


@page("/pros", "Find a professional", on_load=SearchState.load)
def directory() -> rx.Component:
    return page_shell(rx.vstack(
        page_header("Find a professional", "Search local pros by what you need, where and when."),
        search_layout(),
        spacing="4", width="100%",
    ), gated=False)


def book_dialog() -> rx.Component:
    errors = PublicProState.errors
    return form_dialog(
        rx.fragment("Book ", PublicProState.pro.full_name),
        rx.grid(field("Day", "day", errors, type="date", min_value=PublicProState.min_day, required=True),
                field("Hours", "hours", errors, type="number", default_value="2", required=True),
                columns="2", spacing="3", width="100%"),
        rx.vstack(rx.text("Note for the professional", size="2", weight="medium"),
                  rx.text_area(name="note", rows="3", width="100%", max_length=1000),
                  spacing="1", width="100%"),
        description=rx.dialog.description(rx.text("At ", PublicProState.pro.hourly_rate, " per hour. You pay after the "
                                                  "professional accepts."), margin_bottom="12px"),
        submit=rx.button("Request booking", type="submit", loading=PublicProState.busy, id="book-submit"),
        form_error=PublicProState.form_error, on_submit=PublicProState.book, max_width="480px",
        open=PublicProState.book_open, on_open_change=PublicProState.set_book_open,
    )


def header_rating(pro_id: rx.Var) -> rx.Component:
    """Stars and count beside the name, linking to the reviews below."""
    s = ProReviewsState.summary
    return rx.cond(s & (s.subject_id == pro_id) & (s.count > 0), rx.link(
        rx.hstack(stars(ProReviewsState.whole_stars, label=f"Rated {s.average_text} out of 5"),
                  rx.text(s.average_text, size="2", weight="bold"),
                  rx.text("· ", s.count, rx.cond(s.count == 1, " review", " reviews"), size="2"),
                  spacing="2", align="center"),
        href="#reviews", color="inherit", underline="hover", id="header-rating"))


@page("/pros/[pro_id]", "Professional", on_load=[PublicProState.load, ProReviewsState.load])
def pro_public() -> rx.Component:
    p = PublicProState.pro
    header = rx.card(
        rx.flex(
            rx.avatar(src=p.avatar_url, fallback=p.full_name.to(str)[0:1], size="7", radius="full"),
            rx.vstack(
                rx.hstack(rx.heading(p.full_name, as_="h1", size="6"), rx.cond(p.verified, verified_badge()),
                          rx.cond(p.phone_verified, phone_verified_badge()), align="center", wrap="wrap"),
                rx.text(p.headline, color="var(--gray-11)"),
                header_rating(p.user_id),
                rx.flex(meta("map-pin", rx.text(p.city, " · serves ", p.radius_km, " km around")),
                        meta("wallet", rx.text(p.hourly_rate, " per hour")), gap="12px", wrap="wrap"),
                rx.flex(rx.foreach(p.categories, lambda c: rx.badge(c, variant="soft", radius="full")),
                        gap="6px", wrap="wrap"),
                spacing="2",
            ),
            rx.spacer(),
            rx.vstack(
                link_button("Request a quote", href="/requests/new", size="3", width="100%", id="request-quote"),
                rx.button("Book now", size="3", variant="outline", width="100%",
                          on_click=PublicProState.set_book_open(True), id="book-now"),
                spacing="2", min_width="180px",
            ),
            gap="20px", direction=rx.breakpoints(initial="column", md="row"), align=rx.breakpoints(
                initial="start", md="center"), width="100%",
        ),
        size="3", width="100%",
    )
    body = rx.vstack(
        header,
        rx.grid(
            section("About", rx.text(rx.cond(p.bio != "", p.bio, "No description yet."), white_space="pre-wrap",
                                     size="2"),
                    rx.flex(rx.foreach(p.skills, lambda s: rx.badge(s, variant="outline")), gap="6px",
                            wrap="wrap")),
            section("Availability", *[rx.hstack(
                rx.text(name, size="2", width="110px"),
                rx.cond(p.availability.contains(day),
                        rx.text(p.availability[day][0], "–", p.availability[day][1], size="2"),
                        rx.text("—", size="2", color="var(--gray-11)"))) for day, name in DAY_NAMES.items()]),
            columns=rx.breakpoints(initial="1", md="2"), spacing="4", width="100%",
        ),
        section("Portfolio", rx.cond(
            p.portfolio.length() == 0, rx.text("No photos yet.", size="2", color="var(--gray-11)"),
            rx.grid(rx.foreach(p.portfolio, lambda i: rx.link(
                rx.image(src=i.thumb_url, width="100%", aspect_ratio="1", object_fit="cover", border_radius="10px",
                         alt=i.caption), href=i.url, is_external=True)),
                columns=rx.breakpoints(initial="2", sm="3", md="4"), spacing="2", width="100%", id="gallery"))),
        profile_reviews(p.user_id),
        book_dialog(),
        spacing="4", width="100%",
    )
    return page_shell(rx.cond(
        PublicProState.missing,
        empty_state("user-x", "Professional not found", "This profile doesn't exist on this marketplace."),
        rx.cond(PublicProState.pro, body, loading_panel()),
    ), gated=False)
