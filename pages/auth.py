"""Sign up, log in, forgot/reset password, verify email, operator log in."""

from __future__ import annotations

import reflex as rx

from pages.registry import page

from components.buttons import a11y_styles, link_button
from components.forms import auth_card, auth_form, email_field, field, password_field
from components.layout import page_shell
from state.auth import ForgotState, LoginState, OperatorLoginState, ResetState, SignupState, VerifyState


def auth_page(title: str, subtitle: str | rx.Component, *children) -> rx.Component:
    """A marketplace's sign-in page: one card, open to everyone (the page itself decides what a signed-in user sees)."""
    return page_shell(auth_card(title, subtitle, *children), gated=False)


def _sign_in_page(state, title: str, other_way: tuple[str, str, str], *fields: rx.Component,
                  **form) -> rx.Component:
    """Sign up and log in: the card's title, the other way in under it (question, link, route), the form."""
    question, link, href = other_way
    return auth_page(title, rx.text(question, rx.link(link, href=href, underline="always"), size="2",
                                    color="var(--gray-11)"),
                     auth_form(state, *fields, **form))


def _role_option(value: str, title: str, body: str, icon: str) -> rx.Component:
    """One choice of the "I want to" radio group (Radix radio cards: Tab reaches the group, arrow keys choose).

    Focus chooses too: Radix checks an item on focus only while an arrow key is still down, and it moves focus a task
    after the keydown, so a quick press (keyup before that task) moved focus without choosing. In a radio group focus
    and choice go together (WAI-ARIA), and Tab lands on the chosen item, so choosing on focus changes nothing else."""
    selected = SignupState.role_choice == value
    return rx.radio_cards.item(
        rx.hstack(
            rx.icon(icon, size=20, color=rx.cond(selected, "var(--brand)", "var(--gray-10)")),
            rx.vstack(rx.text(title, weight="medium", size="2"), rx.text(body, size="1", color="var(--gray-11)"),
                      spacing="0"),
            spacing="2", align="start", width="100%",
        ),
        value=value, id=f"role-{value}", cursor="pointer", on_focus=SignupState.set_role_choice(value),
    )


@page("/signup", "Sign up", on_load=SignupState.load)
def signup() -> rx.Component:
    errors = SignupState.errors
    return _sign_in_page(
        SignupState, "Create your account", ("Already have one? ", "Log in", "/login"),
        rx.text("I want to", size="2", weight="medium", id="role-label"),
        rx.radio_cards.root(
            _role_option("client", "Hire a pro", "Post jobs and book services", "search"),
            _role_option("professional", "Offer services", "Get leads and grow", "briefcase"),
            value=SignupState.role_choice, on_value_change=SignupState.set_role_choice,
            columns=rx.breakpoints(initial="1", xs="2"), gap="2", width="100%", aria_labelledby="role-label",
        ),
        field("Full name", "full_name", errors, auto_complete="name", max_length=80, required=True),
        email_field(errors),
        password_field(errors, "new-password", hint="At least 10 characters"),
        submit="Create account", submit_id="signup-submit", id="signup-form",
        footer=rx.text("By signing up you agree to the marketplace terms.", size="1", color="var(--gray-11)"),
    )


@page("/login", "Log in", on_load=LoginState.load)
def login() -> rx.Component:
    return _sign_in_page(
        LoginState, "Welcome back", ("New here? ", "Create an account", "/signup"),
        email_field(LoginState.errors),
        password_field(LoginState.errors, "current-password"),
        rx.link("Forgot password?", href="/forgot", size="2", align_self="end"),
        submit="Log in", submit_id="login-submit", id="login-form",
    )


@page("/forgot", "Reset your password", on_load=ForgotState.load)
def forgot() -> rx.Component:
    return auth_page(
        "Forgot your password?", "Enter your email and we'll send you a link to choose a new one.",
        rx.cond(
            ForgotState.sent_to != "",
            rx.callout(
                rx.text("If an account exists for ", rx.text.strong(ForgotState.sent_to),
                        ", a reset link is on its way. It expires in an hour."),
                icon="mail-check", color_scheme="green", id="forgot-sent",
            ),
            auth_form(ForgotState,
                      email_field(ForgotState.errors),
                      submit="Send reset link", submit_id="forgot-submit"),
        ),
        rx.link("Back to log in", href="/login", size="2"),
    )


@page("/reset", "Choose a new password", on_load=ResetState.load)
def reset() -> rx.Component:
    return auth_page(
        "Choose a new password", "Use at least 10 characters. You'll be logged out everywhere else.",
        rx.cond(ResetState.done,
                rx.vstack(
                    rx.callout("Your password has been changed.", icon="circle-check", color_scheme="green",
                               id="reset-done"),
                    link_button("Log in", href="/login", size="3", width="100%"),
                    width="100%",
                ),
                auth_form(ResetState,
                          password_field(ResetState.errors, "new-password", label="New password"),
                          password_field(ResetState.errors, "new-password", label="Repeat new password",
                                         name="confirm"),
                          submit="Change password", submit_id="reset-submit")),
    )


@page("/verify", "Confirm your email", on_load=VerifyState.load)
def verify() -> rx.Component:
    return auth_page(
        "Email confirmation", "",
        rx.match(
            VerifyState.verify_status,
            ("done", rx.callout(VerifyState.verify_message, icon="circle-check", color_scheme="green",
                                id="verify-done")),
            ("failed", rx.callout(VerifyState.verify_message, icon="triangle-alert", color_scheme="red",
                                  id="verify-failed")),
            rx.spinner(),
        ),
        link_button("Continue", href="/", variant="soft", width="100%"),
    )


@page("/operator/login", "Platform console", on_load=OperatorLoginState.load)
def operator_login() -> rx.Component:
    errors = OperatorLoginState.errors
    return rx.el.main(
        a11y_styles(),
        auth_card(
            "Platform console",
            "For the operators of this installation. Marketplace users log in on their marketplace.",
            auth_form(OperatorLoginState, email_field(errors), password_field(errors, "current-password"),
                      submit="Log in", submit_id="operator-login-submit"),
        ),
        padding="48px 16px", min_height="100vh", background="var(--gray-3)",
    )
