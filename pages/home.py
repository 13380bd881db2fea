"""Client home and professional home."""

from __future__ import annotations

import reflex as rx

from pages.registry import page

from components.layout import empty_state, page_header, page_shell
from state.auth import VerifyState
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
            rx.link(rx.button("Edit profile", variant="soft"), href="/account"),
            align="center", spacing="4", wrap="wrap",
        ),
        size="3", width="100%",
    )


def dashboard(subtitle: str, section: str, empty_icon: str, empty_title: str, empty_body: str,
              element_id: str) -> rx.Component:
    return page_shell(rx.vstack(
        page_header(f"Hi, {HomeState.user_name}", subtitle),
        verify_banner(),
        profile_card(),
        rx.heading(section, size="5", margin_top="8px"),
        empty_state(empty_icon, empty_title, empty_body),
        spacing="4", width="100%", id=element_id,
    ))


@page("/client", "My dashboard", on_load=HomeState.load_client)
def client_home() -> rx.Component:
    return dashboard("What do you need done today?", "My requests", "clipboard-list", "No requests yet",
                     "When you post a job, it shows up here with the quotes you receive.", "client-home")


@page("/pro", "Professional dashboard", on_load=HomeState.load_pro)
def pro_home() -> rx.Component:
    return dashboard("Your leads, quotes and jobs in one place.", "New leads", "inbox", "No leads yet",
                     "Requests from clients that match your services and area will appear here.", "pro-home")
