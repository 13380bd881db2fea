"""Form fields that show their own error message under the input."""

from __future__ import annotations

from collections.abc import Callable

import reflex as rx

from state.places import PlaceSuggestState


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
            rx.text(hint, size="1", color="var(--gray-11)") if hint else rx.fragment(),
        ),
        spacing="1", width="100%", align="stretch",
    )


def place_field(label: str, name: str, errors: rx.Var, *, default_value: str | rx.Var = "",
                value: rx.Var | None = None, on_change: Callable | None = None, field_id: str = "",
                required: bool = False, hint: str = "", placeholder: str = "Start typing a city",
                auto_complete: str = "address-level2", size: str = "3") -> rx.Component:
    """A city, chosen from the gazetteer as it is typed: a native input with a `<datalist>` of suggestions
    (PlaceSuggestState, debounced), which browsers show under the input and expose to screen readers as a combobox;
    the label names the input (htmlFor/id) and an error or hint under it describes it (aria-describedby).

    In a form (uncontrolled): pass `default_value`; the form's data carries `name`. Bound to a state (controlled):
    pass `value` and `on_change` (called with the text, as on any input); suggestions are asked for as well.
    `field_id` (default `name`) keeps ids unique when one form is drawn twice. The service resolves what is
    submitted, so a typed "austin" is fine too; an unknown place comes back as this field's error."""
    field_id = field_id or name
    list_id = f"{field_id}-places"
    has_error = errors.contains(name)
    error_id, hint_id = f"{field_id}-error", f"{field_id}-hint"
    common = dict(
        name=name, id=field_id, placeholder=placeholder, required=required, size=size, width="100%",
        max_length=80, auto_complete=auto_complete or None, color_scheme=rx.cond(has_error, "red", "gray"),
        variant="surface",
        custom_attrs={"list": list_id, "aria-invalid": rx.cond(has_error, "true", "false"),
                      "aria-describedby": rx.cond(has_error, error_id, hint_id if hint else "")},
    )
    if value is None:
        box = rx.input(default_value=default_value,
                       on_change=lambda text: PlaceSuggestState.suggest(field_id, text).debounce(250), **common)
    else:
        box = rx.input(value=value, debounce_timeout=250, on_change=lambda text: [
            *([on_change(text)] if on_change is not None else []), PlaceSuggestState.suggest(field_id, text)],
            **common)
    return rx.vstack(
        field_label(label, field_id),
        box,
        rx.el.datalist(
            rx.cond(PlaceSuggestState.field_id == field_id,
                    rx.foreach(PlaceSuggestState.suggestions, lambda place: rx.el.option(value=place))),
            id=list_id,
        ),
        rx.cond(
            has_error,
            rx.text(errors[name], size="1", color="var(--red-11)", id=error_id),
            rx.text(hint, size="1", color="var(--gray-11)", id=hint_id) if hint else rx.fragment(),
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
                rx.heading(title, as_="h1", size="6"),
                rx.text(subtitle, color="var(--gray-11)", size="2") if isinstance(subtitle, str) else subtitle,
                *children,
                spacing="4", width="100%",
            ),
            size="3", width="100%", max_width="440px",
        ),
        padding_y=["8px", "32px"],
    )


# A dialog opened from state (no Radix trigger) has no element to give focus back to when it closes: Radix then drops
# focus on the page's body. These remember what had focus when the dialog opened (the button that asked for it) and
# return focus there on close (Escape, Cancel, submit), or to the main content if that button is gone.
REMEMBER_OPENER = rx.vars.FunctionStringVar.create(
    "((_e) => { window.__dialogOpener = document.activeElement; })")
RETURN_TO_OPENER = rx.vars.FunctionStringVar.create(
    "((e) => { e.preventDefault(); const o = window.__dialogOpener; window.__dialogOpener = null;"
    " const back = o && o.isConnected && o !== document.body ? o : document.getElementById('main-content');"
    " if (back) back.focus(); })")


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
            **({} if trigger is not None else {"on_open_auto_focus": REMEMBER_OPENER,
                                               "on_close_auto_focus": RETURN_TO_OPENER}),
        ),
        open=open, on_open_change=on_open_change,
    )
