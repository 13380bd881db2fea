"""Form fields that show their own error message under the input."""

from __future__ import annotations

import reflex as rx


def field_label(text: str | rx.Var, name: str) -> rx.Component:
    """A field's visible label, tied to the input whose id is `name` (so that clicking it focuses the input and a
    screen reader names the input by it). Radix's Text takes `html_for` as a style, hence the attribute."""
    return rx.text(text, as_="label", size="2", weight="medium", custom_attrs={"htmlFor": name})


def field(label: str, name: str, errors: rx.Var, *, type: str = "text", placeholder: str = "",
          hint: str = "", default_value: str | rx.Var = "", auto_complete: str = "", max_length: int = 0,
          required: bool = False, list_id: str = "", min_value: str | rx.Var = "") -> rx.Component:
    has_error = errors.contains(name)
    return rx.vstack(
        field_label(label, name),
        rx.input(
            name=name, id=name, type=type, placeholder=placeholder, default_value=default_value,
            auto_complete=auto_complete or None, max_length=max_length or None, required=required,
            size="3", width="100%", min=min_value if isinstance(min_value, rx.Var) or min_value else None,
            custom_attrs={"list": list_id} if list_id else {},
            color_scheme=rx.cond(has_error, "red", "gray"),
            variant="surface",
        ),
        rx.cond(
            has_error,
            rx.text(errors[name], size="1", color="var(--red-11)", id=f"{name}-error"),
            rx.text(hint, size="1", color="var(--gray-10)") if hint else rx.fragment(),
        ),
        spacing="1", width="100%", align="stretch",
    )


def email_field(errors: rx.Var) -> rx.Component:
    return field("Email", "email", errors, type="email", auto_complete="email", required=True)


def password_field(errors: rx.Var, auto_complete: str, *, label: str = "Password", name: str = "password",
                   hint: str = "") -> rx.Component:
    """`auto_complete` tells the browser what to offer: "current-password" a saved one, "new-password" a new one."""
    return field(label, name, errors, type="password", auto_complete=auto_complete, hint=hint, required=True)


def field_error(errors: rx.Var, name: str) -> rx.Component:
    """A field's error message, under an input that `field` does not build (a select, a text area, an upload)."""
    return rx.cond(errors.contains(name), rx.text(errors[name], size="1", color="var(--red-11)", id=f"{name}-error"))


def text_area_field(label: str, name: str, errors: rx.Var, **props) -> rx.Component:
    return rx.vstack(
        field_label(label, name),
        rx.text_area(name=name, id=name, width="100%", **props),
        field_error(errors, name),
        spacing="1", width="100%",
    )


def form_alert(message: rx.Var) -> rx.Component:
    return rx.cond(
        message != "",
        rx.callout(message, icon="triangle-alert", color_scheme="red", size="1", width="100%", id="form-error"),
    )


def submit_button(label: str, busy: rx.Var, **props) -> rx.Component:
    return rx.button(label, type="submit", loading=busy, size="3", width="100%", **props)


def auth_form(state, *fields: rx.Component, submit: str, submit_id: str, footer: rx.Component | None = None,
              **form_props) -> rx.Component:
    """A sign-in form of a FormMixin state: its fields, the form's refusal, then the submit button (spinning while
    `state.busy`); it posts to `state.submit`."""
    return rx.form(
        rx.vstack(*fields, form_alert(state.form_error), submit_button(submit, state.busy, id=submit_id),
                  *([footer] if footer is not None else []), spacing="3", width="100%"),
        on_submit=state.submit, **form_props,
    )


def auth_card(title: str, subtitle: str | rx.Component, *children) -> rx.Component:
    return rx.center(
        rx.card(
            rx.vstack(
                rx.heading(title, size="6"),
                rx.text(subtitle, color="var(--gray-11)", size="2") if isinstance(subtitle, str) else subtitle,
                *children,
                spacing="4", width="100%",
            ),
            size="3", width="100%", max_width="440px",
        ),
        padding_y=["8px", "32px"],
    )


def form_dialog(title: str | rx.Var, *fields: rx.Component, submit: rx.Component, form_error: rx.Var, on_submit,
                open: rx.Var, on_open_change, max_width: str, description: rx.Component | None = None,
                trigger: rx.Component | None = None, form_key: rx.Var | None = None) -> rx.Component:
    """A dialog holding one form: its fields, the form's refusal, then Cancel (closes it) and the submit button."""
    return rx.dialog.root(
        *([rx.dialog.trigger(trigger)] if trigger is not None else []),
        rx.dialog.content(
            rx.dialog.title(title),
            *([description] if description is not None else []),
            rx.form(
                rx.vstack(
                    *fields,
                    form_alert(form_error),
                    rx.hstack(
                        rx.dialog.close(rx.button("Cancel", variant="soft", color_scheme="gray", type="button")),
                        submit,
                        justify="end", spacing="3", width="100%",
                    ),
                    spacing="3", width="100%",
                ),
                on_submit=on_submit, **({"key": form_key} if form_key is not None else {}),
            ),
            max_width=max_width,
        ),
        open=open, on_open_change=on_open_change,
    )
