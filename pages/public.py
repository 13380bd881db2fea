"""The tenant's landing page."""

from __future__ import annotations

import reflex as rx

from pages.registry import page

from components.buttons import link_button
from components.layout import page_shell
from state.app_state import AppState

STEPS = [
    ("file-pen-line", "Describe the job", "Tell us what you need, where and when. It takes two minutes."),
    ("messages-square", "Compare quotes", "Local pros send quotes. Chat, compare reviews and pick one."),
    ("shield-check", "Pay safely", "Your money is held in escrow and released when the work is done."),
]
CATEGORIES = [("sparkles", "Cleaning"), ("wrench", "Plumbing"), ("zap", "Electrical"), ("hammer", "Handyman"),
              ("truck", "Moving"), ("graduation-cap", "Tutoring"), ("camera", "Photography"), ("palette", "Design")]


# side by side from 30em, the two calls to action share the row; stacked on a phone each keeps its own height
# (flex: 1 in a column would size them from zero, squeezing the outline one)
SHARE_ROW = rx.breakpoints(initial="none", xs="1")


def hero() -> rx.Component:
    return rx.box(
        rx.vstack(
            # The page is in the prerendered HTML, painted before the app connects (page_shell(prerendered=True)):
            # what depends on the marketplace sits in this one-line badge, so that nothing moves when it arrives.
            rx.badge(rx.cond(AppState.tenant_name != "", "Welcome to " + AppState.tenant_name,
                             "Trusted local professionals"),
                     variant="soft", radius="full", size="2", white_space="nowrap", max_width="100%",
                     overflow="hidden", text_overflow="ellipsis", id="landing-brand"),
            rx.heading("Get things done with ", rx.text.span("trusted local pros", color="var(--brand)"), as_="h1",
                       size=rx.breakpoints(initial="8", md="9"), weight="bold", line_height="1.1",
                       id="landing-title"),
            rx.text("Post a job, compare quotes from vetted pros, chat, and pay only when you're happy.",
                    size=rx.breakpoints(initial="3", md="4"), color="var(--gray-11)", max_width="560px"),
            rx.cond(
                AppState.user_id != 0,
                link_button("Go to my dashboard", href=AppState.home_path, size="4"),
                rx.flex(
                    link_button("Find a pro", href="/signup?role=client", size="4", width="100%", flex=SHARE_ROW),
                    link_button("Join as a pro", href="/signup?role=professional", size="4", variant="outline",
                                width="100%", flex=SHARE_ROW),
                    gap="12px", direction=rx.breakpoints(initial="column", xs="row"), width="100%",
                ),
            ),
            spacing="5", align="start", max_width="640px",
        ),
        padding=rx.breakpoints(initial="32px 20px", md="64px 48px"), border_radius="20px",
        background="linear-gradient(135deg, var(--accent-3) 0%, var(--color-panel-solid) 70%)",
        border="1px solid var(--gray-a4)", width="100%",
    )


def steps() -> rx.Component:
    return rx.grid(
        *[rx.card(rx.vstack(
            rx.center(rx.icon(icon, size=22, color="var(--brand)"), width="44px", height="44px",
                      border_radius="12px", background="var(--accent-3)"),
            rx.text(title, weight="bold", size="4"), rx.text(body, color="var(--gray-11)", size="2"),
            spacing="2"), size="3") for icon, title, body in STEPS],
        columns=rx.breakpoints(initial="1", sm="3"), spacing="4", width="100%",
    )


def categories() -> rx.Component:
    return rx.vstack(
        rx.heading("Popular services", as_="h2", size="5"),
        rx.grid(
            *[rx.link(rx.hstack(rx.icon(icon, size=18, color="var(--brand)"),
                                rx.text(name, weight="medium", size="2", color="var(--gray-12)"),
                                padding="14px 16px", border_radius="12px", background="var(--color-panel-solid)",
                                border="1px solid var(--gray-a4)", spacing="3", align="center",
                                _hover={"border_color": "var(--accent-8)"}),
                      href=f"/pros?category={name.lower()}", underline="none")
              for icon, name in CATEGORIES],
            columns=rx.breakpoints(initial="2", sm="4"), spacing="3", width="100%",
        ),
        spacing="3", width="100%",
    )


@page("/", "Home", on_load=AppState.load_public)
def index() -> rx.Component:
    return page_shell(rx.vstack(hero(), steps(), categories(), spacing="7", width="100%"), gated=False,
                      prerendered=True)
