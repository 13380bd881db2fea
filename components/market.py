"""Marketplace building blocks: status badges, request and quote cards, the order timeline."""

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
                          rx.text(e.at, size="1", color="var(--gray-10)"), spacing="2", align="center",
                          wrap="wrap"),
                rx.cond(e.note != "", rx.text(e.note, size="2", color="var(--gray-11)")),
                spacing="1",
            ),
            spacing="3", align="start", class_name="timeline-event",
        )),
        spacing="3", id="timeline",
    )


def section(title: str, *children, **props) -> rx.Component:
    return rx.card(rx.vstack(rx.text(title, weight="bold", size="3"), *children, spacing="3", width="100%"),
                   size="3", width="100%", **props)
