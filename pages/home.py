"""Client home and professional home."""

from __future__ import annotations

import reflex as rx

from pages.registry import page

from components.buttons import link_button
from components.layout import card_stack, empty_state, page_header, page_shell
from components.market import card_link
from state.app_state import HOME_FOR_ROLE
from state.auth import VerifyState
from pages.requests import request_card
from state.home import HomeState


def verify_banner() -> rx.Component:
    return rx.cond(
        ~HomeState.email_verified,
        rx.callout(
            rx.flex(
                rx.text("Please confirm your email address. We sent a link to ", rx.text.strong(HomeState.user_email),
                        "."),
                rx.spacer(),
                rx.button("Resend link", size="1", variant="soft", on_click=VerifyState.resend, id="resend-verify"),
                gap="8px", align="center", wrap="wrap", width="100%",
            ),
            icon="mail", color_scheme="amber", width="100%", id="verify-banner",
        ),
    )


def profile_card() -> rx.Component:
    return rx.card(
        rx.hstack(
            rx.avatar(src=HomeState.avatar_url, fallback=HomeState.user_initials, size="5", radius="full"),
            rx.vstack(
                rx.text(HomeState.user_name, weight="bold", size="4"),
                rx.text(HomeState.user_email, size="2", color="var(--gray-11)"),
                rx.cond(HomeState.city != "", rx.hstack(rx.icon("map-pin", size=14), rx.text(HomeState.city, size="2"),
                                                        spacing="1", align="center", color="var(--gray-11)")),
                spacing="1",
            ),
            rx.spacer(),
            link_button("Edit profile", href="/account", variant="soft"),
            align="center", spacing="4", wrap="wrap",
        ),
        size="3", width="100%",
    )


def stat_link(icon: str, value, label, href, element_id: str) -> rx.Component:
    return card_link(rx.hstack(
        rx.center(rx.icon(icon, size=20, color="var(--brand)"), width="40px", height="40px", border_radius="10px",
                  background="var(--accent-3)"),
        rx.vstack(rx.text(value, size="6", weight="bold", id=element_id), rx.text(label, size="2",
                                                                                   color="var(--gray-11)"),
                  spacing="0"),
        spacing="3", align="center"), href)


def category_tiles() -> rx.Component:
    """The marketplace's categories, each opening the search for it."""
    return rx.cond(HomeState.categories.length() > 0, rx.vstack(
        rx.heading("Browse by category", as_="h2", size="5", margin_top="8px"),
        rx.grid(
            rx.foreach(HomeState.categories, lambda c: rx.link(
                rx.hstack(rx.icon(c.icon, size=18, color="var(--brand)"),
                          rx.text(c.name, weight="medium", size="2", color="var(--gray-12)"),
                          padding="14px 16px", border_radius="12px", background="var(--color-panel-solid)",
                          border="1px solid var(--gray-a4)", spacing="3", align="center", width="100%",
                          _hover={"border_color": "var(--accent-8)"}),
                href=c.href, underline="none", class_name="category-tile")),
            columns=rx.breakpoints(initial="2", sm="3", md="5"), spacing="3", width="100%",
        ),
        spacing="3", width="100%", id="category-tiles",
    ))


@page(HOME_FOR_ROLE["client"], "My dashboard", on_load=HomeState.load_client)
def client_home() -> rx.Component:
    return page_shell(rx.vstack(
        page_header(f"Hi, {HomeState.user_name}", "What do you need done today?",
                    link_button(rx.icon("plus", size=16), "Post a request", href="/requests/new")),
        verify_banner(),
        rx.grid(stat_link("package", HomeState.active_orders, "active orders", "/orders", "active-orders"),
                stat_link("search", "Find a pro", rx.cond(HomeState.city != "",
                                                          rx.text.span("professionals near ", HomeState.city),
                                                          rx.text.span("professionals on the marketplace")),
                          HomeState.near_href, "browse-pros"),
                columns=rx.breakpoints(initial="1", sm="2"), spacing="3", width="100%"),
        category_tiles(),
        rx.heading("Recent requests", as_="h2", size="5", margin_top="8px"),
        rx.cond(HomeState.recent_requests.length() == 0,
                empty_state("clipboard-list", "No requests yet",
                            "When you post a job, it shows up here with the quotes you receive.",
                            link_button("Post a request", href="/requests/new", variant="soft")),
                card_stack(HomeState.recent_requests, request_card)),
        profile_card(),
        spacing="4", width="100%", id="client-home",
    ))


@page(HOME_FOR_ROLE["professional"], "Professional dashboard", on_load=HomeState.load_pro)
def pro_home() -> rx.Component:
    return page_shell(rx.vstack(
        page_header(f"Hi, {HomeState.user_name}", "Your leads, quotes and jobs in one place."),
        verify_banner(),
        rx.grid(stat_link("inbox", HomeState.lead_count, "new leads", "/pro/leads", "lead-count"),
                stat_link("package", HomeState.active_orders, "active orders", "/orders", "active-orders"),
                stat_link("user-cog", "Profile", "what clients see", "/pro/profile", "edit-pro-profile"),
                columns=rx.breakpoints(initial="1", sm="3"), spacing="3", width="100%"),
        profile_card(),
        spacing="4", width="100%", id="pro-home",
    ))
