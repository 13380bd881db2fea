"""My account page."""

from __future__ import annotations

import reflex as rx

from pages.registry import page

from components.buttons import named_upload
from components.forms import field, form_alert, place_field
from components.layout import page_header, page_shell
from components.notifications import phone_card, preferences_card, time_zone_card
from components.push import push_card
from state.account import AccountState
from state.notifications import PhoneState, PreferencesState, TimeZoneState


def avatar_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text("Profile photo", weight="bold"),
            rx.hstack(
                rx.avatar(src=AccountState.avatar_url, fallback=AccountState.user_initials, size="7",
                          radius="full", id="avatar-image"),
                rx.vstack(
                    named_upload(
                        "Profile photo",
                        rx.vstack(
                            rx.icon("image-up", size=20, color="var(--gray-11)"),
                            rx.text("Drop an image or click to choose", size="2"),
                            rx.text(f"JPEG, PNG, WebP or GIF, up to {AccountState.max_avatar_mb} MB", size="1",
                                    color="var(--gray-11)"),
                            align="center", spacing="1",
                        ),
                        id="avatar", max_files=1, multiple=False,
                        accept={"image/png": [".png"], "image/jpeg": [".jpg", ".jpeg"], "image/webp": [".webp"],
                                "image/gif": [".gif"]},
                        border="1px dashed var(--gray-a7)", border_radius="10px", padding="16px",
                        width="100%", cursor="pointer",
                    ),
                    rx.foreach(rx.selected_files("avatar"), lambda f: rx.text(f, size="1", color="var(--gray-11)")),
                    rx.button("Upload photo", on_click=AccountState.upload_avatar(rx.upload_files(upload_id="avatar")),
                              variant="soft", id="avatar-upload"),
                    rx.cond(AccountState.errors.contains("avatar"),
                            rx.text(AccountState.errors["avatar"], size="1", color="var(--red-11)")),
                    spacing="2", width="100%",
                ),
                spacing="5", align="center", width="100%",
                direction=rx.breakpoints(initial="column", sm="row"),
            ),
            spacing="3", width="100%",
        ),
        size="3", width="100%",
    )


def details_card() -> rx.Component:
    errors = AccountState.errors
    return rx.card(
        rx.form(
            rx.vstack(
                rx.text("Details", weight="bold"),
                field("Full name", "full_name", errors, default_value=AccountState.full_name, max_length=80,
                      auto_complete="name"),
                place_field("City", "city", errors, default_value=AccountState.city, hint="Optional"),
                rx.text("Email: ", rx.text.strong(AccountState.user_email), size="2", color="var(--gray-11)"),
                form_alert(AccountState.form_error),
                rx.button("Save changes", type="submit", size="3", id="profile-save"),
                spacing="3", width="100%",
            ),
            on_submit=AccountState.save, key=AccountState.form_key, id="profile-form",
        ),
        size="3", width="100%",
    )


@page("/account", "My account", on_load=[AccountState.load, PreferencesState.load, PhoneState.load,
                                            TimeZoneState.load])
def account() -> rx.Component:
    return page_shell(rx.vstack(
        page_header("My account", "How you appear to others on the marketplace."),
        avatar_card(), details_card(), preferences_card(), phone_card(), time_zone_card(),
        push_card(),
        spacing="4", width="100%", max_width="720px",
    ))
