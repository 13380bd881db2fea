"""Marketplace building blocks: status badges, request and quote cards, search results, the order timeline."""

from __future__ import annotations

import reflex as rx

STATE_COLORS = (("requested", "gray"), ("accepted", "blue"), ("paid", "cyan"), ("in_progress", "amber"),
                ("delivered", "violet"), ("completed", "green"), ("cancelled", "red"), ("expired", "gray"),
                ("disputed", "orange"), ("resolved", "teal"), ("open", "green"), ("closed", "gray"),
                ("sent", "blue"), ("withdrawn", "gray"), ("declined", "red"), ("accepted", "green"))


def status_badge(state) -> rx.Component:
    return rx.badge(rx.match(state, ("in_progress", "in progress"), state),
                    color_scheme=rx.match(state, *STATE_COLORS, "gray"),
                    variant="soft", radius="full", class_name="status-badge")


def card_link(content: rx.Component, href, class_name: str = "", **link_props) -> rx.Component:
    """A card that opens a page: the whole card is the link; its border takes the brand colour on hover."""
    return rx.link(
        rx.card(content, width="100%", _hover={"border_color": "var(--accent-8)"},
                **({"class_name": class_name} if class_name else {})),
        href=href, underline="none", color="inherit", width="100%", **link_props,
    )


def meta(icon: str, text) -> rx.Component:
    return rx.hstack(rx.icon(icon, size=14), rx.text(text, size="2"), spacing="1", align="center",
                     color="var(--gray-11)")


def verified_badge() -> rx.Component:
    return rx.badge(rx.icon("badge-check", size=12), "Verified", color_scheme="green", variant="soft",
                    radius="full", class_name="verified-badge")


def phone_verified_badge() -> rx.Component:
    return rx.badge(rx.icon("smartphone", size=12), "Phone verified", color_scheme="blue", variant="soft",
                    radius="full", class_name="phone-verified-badge")


def card_rating(text, count) -> rx.Component:
    """A result's rating: "★ 4.8 (12)", read out as "Rated 4.8 out of 5 from 12 reviews"; or "No reviews yet"."""
    return rx.cond(
        count > 0,
        rx.hstack(rx.icon("star", size=14, color="var(--amber-9)", fill="currentColor"),
                  rx.text(text, size="2", weight="bold", color="var(--gray-12)"),
                  rx.text("(", count, ")", size="2", color="var(--gray-11)"),
                  spacing="1", align="center", role="img", class_name="rating-badge",
                  aria_label=f"Rated {text} out of 5 from {count} " + rx.cond(count == 1, "review", "reviews")),
        rx.text("No reviews yet", size="1", color="var(--gray-11)", class_name="rating-badge"),
    )


def pro_result_card(c) -> rx.Component:
    """One search result (a ProCard var): photo or initial, name, badge, rating, rate, distance, categories and the
    line saying why it ranks where it does. The whole card is one link to the profile: nothing inside it is a
    control of its own (a button inside a link is two targets in one, and screen readers announce it badly)."""
    return rx.link(
        rx.card(
            rx.vstack(
                rx.hstack(
                    rx.avatar(src=c.avatar_url, fallback=c.name.to(str)[0:1], size="5", radius="full",
                              flex_shrink="0"),
                    rx.vstack(
                        rx.flex(rx.text(c.name, weight="bold", size="3", color="var(--gray-12)"),
                                rx.cond(c.verified, verified_badge()), gap="4px 8px", wrap="wrap", align="center"),
                        rx.flex(card_rating(c.rating_text, c.rating_count),
                                rx.cond(c.rate != "", rx.text(c.rate, size="2", weight="medium",
                                                              color="var(--gray-12)")),
                                gap="4px 12px", wrap="wrap", align="center"),
                        spacing="1", min_width="0",
                    ),
                    spacing="3", align="center", width="100%",
                ),
                rx.text(c.headline, size="2", color="var(--gray-12)"),
                meta("map-pin", rx.cond(c.distance_text != "", rx.text.span(c.city, " · ", c.distance_text), c.city)),
                rx.flex(rx.foreach(c.categories, lambda name: rx.badge(name, variant="soft", radius="full",
                                                                      color_scheme="gray")),
                        gap="6px", wrap="wrap"),
                rx.cond(c.why != "", rx.hstack(
                    rx.icon("sparkles", size=14, color="var(--accent-9)", flex_shrink="0", margin_top="3px"),
                    rx.text(c.why, size="2", color="var(--accent-11)"),
                    spacing="2", align="start", padding_top="8px", border_top="1px solid var(--gray-a4)",
                    width="100%", class_name="why-line")),
                spacing="2", width="100%", height="100%",
            ),
            width="100%", height="100%", class_name="pro-card", _hover={"border_color": "var(--accent-8)"},
        ),
        href=f"/pros/{c.pro_id}", underline="none", color="inherit", display="block", height="100%",
        border_radius="var(--radius-4)", _focus_visible={"outline": "2px solid var(--accent-9)",
                                                         "outline_offset": "2px"},
    )


def request_summary(r) -> rx.Component:
    """Category, place, budget and dates of a service request."""
    return rx.flex(
        meta("tag", r.category), meta("map-pin", r.city), meta("wallet", r.budget), meta("calendar", r.dates),
        gap="16px", wrap="wrap",
    )


def photo_strip(urls) -> rx.Component:
    return rx.cond(
        urls.length() > 0,
        rx.flex(rx.foreach(urls, lambda u: rx.link(
            rx.image(src=u, width="96px", height="72px", object_fit="cover", border_radius="8px"),
            href=u, is_external=True)), gap="8px", wrap="wrap"),
    )


def timeline(events) -> rx.Component:
    return rx.vstack(
        rx.foreach(events, lambda e: rx.hstack(
            rx.box(width="10px", height="10px", border_radius="50%", background="var(--accent-9)",
                   margin_top="6px", flex_shrink="0"),
            rx.vstack(
                rx.hstack(status_badge(e.to_state), rx.text(e.who, size="2", weight="medium"),
                          rx.text(e.at, size="1", color="var(--gray-11)"), spacing="2", align="center",
                          wrap="wrap"),
                rx.cond(e.note != "", rx.text(e.note, size="2", color="var(--gray-11)")),
                spacing="1",
            ),
            spacing="3", align="start", class_name="timeline-event",
        )),
        spacing="3", id="timeline",
    )


def section(title: str, *children, **props) -> rx.Component:
    return rx.card(rx.vstack(rx.heading(title, as_="h2", weight="bold", size="3"), *children, spacing="3",
                             width="100%"),
                   size="3", width="100%", **props)
