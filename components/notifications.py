"""Notification pieces: the live bell in the navigation, one notification in a list, the preference matrix, the phone
form, the time zone (quiet hours) and the admin's list of deliveries that did not go out."""

from __future__ import annotations

import reflex as rx

from state.notifications import (KEEPALIVE_MS, TIME_ZONE_GROUPS, AdminDeliveriesState, BellState, NotificationBell,
                                 PhoneState, PreferencesState, TimeZoneState)

CHANNEL_COLUMNS = (("email", "Email"), ("sms", "Text"), ("in_app", "In-app"), ("push", "Push"))


def _when(iso: rx.Var) -> rx.Component:
    return rx.text(rx.moment(iso, from_now=True), size="1", color="var(--gray-11)", white_space="nowrap")


def _unread_dot(read: rx.Var) -> rx.Component:
    return rx.box(width="8px", height="8px", border_radius="50%", flex_shrink="0", margin_top="6px",
                  background=rx.cond(read, "transparent", "var(--accent-9)"))  # the menu is portaled: no --brand


# ---------------------------------------------------------------------------------------------- the bell


def _bell_item(item) -> rx.Component:
    return rx.box(
        rx.hstack(
            _unread_dot(item.read),
            rx.vstack(
                rx.text(item.title, size="2", weight=rx.cond(item.read, "regular", "bold"), color="var(--gray-12)"),
                rx.text(item.body, size="1", color="var(--gray-11)", class_name="rt-r-lc-2",
                        style={"display": "-webkit-box", "-webkit-line-clamp": "2",
                               "-webkit-box-orient": "vertical", "overflow": "hidden"}),
                _when(item.created_at),
                spacing="1", align="start", min_width="0",
            ),
            spacing="2", align="start", width="100%",
        ),
        on_click=BellState.open_item(item.id, item.link),
        role="button", tab_index=0, class_name="bell-item", padding="10px 12px", border_radius="8px",
        cursor="pointer", _hover={"background": "var(--gray-a3)"},
        custom_attrs={"data-read": rx.cond(item.read, "yes", "no")},
    )


def notification_bell() -> rx.Component:
    """The bell in the header: its accessible name says how many are unread; it opens the latest ones, a way to read
    them all, and the notifications page. Live: it is the user's shared NotificationBell."""
    return rx.popover.root(
        rx.popover.trigger(
            rx.button(
                rx.icon("bell", size=20, color="var(--gray-11)"),
                rx.cond(NotificationBell.unread > 0,
                        rx.badge(NotificationBell.badge, color_scheme="red", variant="solid", radius="full", size="1",
                                 background="var(--red-11)", position="absolute", top="-6px", right="-8px",
                                 id="bell-badge",
                                 custom_attrs={"aria-hidden": "true"})),
                variant="ghost", color_scheme="gray", position="relative", padding="4px", id="bell",
                aria_label=NotificationBell.label,
            ),
        ),
        rx.popover.content(
            rx.vstack(
                rx.hstack(
                    rx.text("Notifications", weight="bold", size="3"),
                    rx.spacer(),
                    rx.cond(NotificationBell.unread > 0,
                            rx.button("Mark all as read", size="1", variant="ghost", on_click=BellState.read_all,
                                      id="bell-read-all")),
                    align="center", width="100%",
                ),
                rx.cond(
                    NotificationBell.items.length() > 0,
                    rx.vstack(rx.foreach(NotificationBell.items, _bell_item), spacing="0", width="100%"),
                    rx.text("You're all caught up.", size="2", color="var(--gray-11)", padding_y="12px"),
                ),
                rx.popover.close(rx.link("See all notifications", href="/notifications", size="2",
                                         weight="medium", id="bell-see-all")),
                spacing="2", width="100%",
            ),
            width="min(360px, calc(100vw - 24px))", align="end", id="bell-menu",
        ),
    )


def bell_keepalive() -> rx.Component:
    """Renews the tab's link to its bell every few minutes (see state/notifications.py); reads nothing new itself."""
    return rx.moment(interval=KEEPALIVE_MS, on_change=BellState.keepalive, display="none")


def on_push(reload) -> rx.Component:
    """Fires `reload` whenever this user's bell receives a push (a notification, or a change to something they may
    have open): keyed on the bell's pulse, the element is mounted anew by each push, and mounting fires the event.
    The first mount (the page's own load) is left to the page: `reload` skips a page not loaded yet."""
    return rx.fragment(rx.el.span(on_mount=reload, display="none"), key=NotificationBell.pulse.to_string())


# ---------------------------------------------------------------------------------------------- a notification


def notification_card(item, *, on_open, on_read) -> rx.Component:
    """One notification on the notifications page: unread ones stand out and can be marked read; a link opens it."""
    return rx.card(
        rx.hstack(
            _unread_dot(item.read),
            rx.vstack(
                rx.text(item.title, weight=rx.cond(item.read, "medium", "bold"), size="3"),
                rx.text(item.body, size="2", color="var(--gray-11)"),
                rx.flex(
                    _when(item.created_at),
                    rx.spacer(),
                    rx.hstack(
                        rx.cond(~item.read,
                                rx.button("Mark as read", size="1", variant="soft", color_scheme="gray",
                                          on_click=on_read, class_name="note-read")),
                        rx.cond(item.link != "",
                                rx.button("Open", rx.icon("arrow-right", size=14), size="1", variant="soft",
                                          on_click=on_open, class_name="note-open")),
                        spacing="2",
                    ),
                    align="center", gap="8px", width="100%", wrap="wrap",
                ),
                spacing="2", width="100%", align="start", min_width="0",
            ),
            spacing="3", align="start", width="100%",
        ),
        width="100%", class_name="note-card",
        custom_attrs={"data-read": rx.cond(item.read, "yes", "no")},
        background=rx.cond(item.read, "var(--color-panel-solid)", "var(--accent-2)"),
    )


# ---------------------------------------------------------------------------------------------- preferences


def _cell(cell) -> rx.Component:
    return rx.table.cell(
        rx.cond(
            cell.shown,
            rx.tooltip(
                rx.box(rx.switch(checked=cell.enabled, disabled=~cell.changeable, size="2", id=cell.key,
                                 on_change=PreferencesState.toggle(cell.group, cell.channel),
                                 aria_label=cell.label)),
                content=rx.cond(cell.note != "", cell.note, cell.label),
            ),
            rx.tooltip(
                rx.icon("minus", size=16, color="var(--gray-8)",
                        custom_attrs={"role": "img", "aria-label": cell.label + ": " + cell.note}),
                content=cell.note,
            ),
        ),
        text_align="center", vertical_align="middle",
    )


def _matrix_row(row) -> rx.Component:
    return rx.table.row(
        rx.table.row_header_cell(
            rx.vstack(
                rx.text(row.label, size="2", weight="medium"),
                rx.cond(row.note != "",
                        rx.text(rx.icon("lock", size=11, display="inline", vertical_align="-1px",
                                        margin_right="4px"),
                                row.note, size="1", color="var(--gray-11)")),
                spacing="1",
            ),
        ),
        rx.foreach(row.cells, _cell),
        align="center", custom_attrs={"data-group": row.group},
    )


def preferences_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.vstack(
                rx.heading("Notifications", size="4", as_="h2"),
                rx.text("Choose how we tell you about each kind of update.", size="2", color="var(--gray-11)"),
                spacing="1",
            ),
            rx.cond(
                PreferencesState.loaded,
                rx.box(
                    rx.table.root(
                        rx.table.header(rx.table.row(
                            rx.table.column_header_cell(rx.text("Notify me about", size="1")),
                            *[rx.table.column_header_cell(rx.text(name, size="1"), text_align="center")
                              for _, name in CHANNEL_COLUMNS],
                        )),
                        rx.table.body(rx.foreach(PreferencesState.rows, _matrix_row)),
                        size="1", width="100%", id="preference-matrix",
                    ),
                    overflow_x="auto", width="100%",
                ),
                rx.center(rx.spinner(), padding="24px", width="100%"),
            ),
            rx.hstack(rx.icon("minus", size=14, color="var(--gray-8)"),
                      rx.text("Not sent that way. Hover or focus it to see why.", size="1", color="var(--gray-11)"),
                      spacing="1", align="center"),
            rx.cond(PreferencesState.sms_offered & ~PhoneState.verified,
                    rx.callout("Text messages go only to a verified mobile number: add yours below.", icon="info",
                               size="1", color_scheme="blue", width="100%", id="sms-needs-phone")),
            spacing="3", width="100%",
        ),
        size="3", width="100%", id="notifications",
    )


# ---------------------------------------------------------------------------------------------- phone


def _error(name: str, element_id: str) -> rx.Component:
    return rx.cond(PhoneState.errors.contains(name),
                   rx.text(PhoneState.errors[name], size="1", color="var(--red-11)", id=element_id))


def _input_with_label(label: str, element_id: str, name: str, error_id: str, **props) -> rx.Component:
    has_error = PhoneState.errors.contains(name)
    return rx.vstack(
        rx.text(label, as_="label", size="2", weight="medium", custom_attrs={"htmlFor": element_id}),
        rx.input(name=name, id=element_id, size="3", width="100%", variant="surface",
                 color_scheme=rx.cond(has_error, "red", "gray"),
                 custom_attrs={"aria-invalid": rx.cond(has_error, "true", "false"),
                               "aria-describedby": error_id}, **props),
        _error(name, error_id),
        spacing="1", width="100%", align="stretch",
    )


def _number_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            _input_with_label("Mobile number", "mobile-phone", "phone", "mobile-phone-error", type="tel",
                              placeholder="+1 415 555 0123", auto_complete="tel", max_length=24),
            rx.text("We text a 6-digit code to check it is yours. Numbers without a country code are read as US "
                    "numbers.", size="1", color="var(--gray-11)"),
            rx.cond(PhoneState.form_error != "",
                    rx.callout(PhoneState.form_error, icon="triangle-alert", color_scheme="red", size="1",
                               width="100%", id="phone-form-error")),
            rx.hstack(
                rx.cond(PhoneState.editing,
                        rx.button("Cancel", type="button", variant="soft", color_scheme="gray",
                                  on_click=PhoneState.stop_editing)),
                rx.button("Text me a code", type="submit", loading=PhoneState.busy, id="phone-send-code"),
                spacing="2", justify="end", width="100%",
            ),
            spacing="2", width="100%",
        ),
        on_submit=PhoneState.send_code, reset_on_submit=False, width="100%", id="phone-form",
    )


def _code_form() -> rx.Component:
    return rx.form(
        rx.vstack(
            rx.text("Enter the code we texted to ", rx.text.strong(PhoneState.masked), ". It works for 10 minutes.",
                    size="2"),
            _input_with_label("Verification code", "phone-code", "code", "phone-code-error",
                              placeholder="123456", auto_complete="one-time-code", max_length=12,
                              input_mode="numeric"),
            rx.cond(PhoneState.form_error != "",
                    rx.callout(PhoneState.form_error, icon="triangle-alert", color_scheme="red", size="1",
                               width="100%", id="phone-form-error")),
            rx.flex(
                rx.button("Use another number or send a new code", type="button", variant="ghost", size="2",
                          on_click=PhoneState.start_editing),
                rx.spacer(),
                rx.button("Verify", type="submit", loading=PhoneState.busy, id="phone-verify"),
                spacing="2", width="100%", align="center", wrap="wrap",
            ),
            spacing="2", width="100%",
        ),
        on_submit=PhoneState.verify, reset_on_submit=True, width="100%", id="phone-code-form",
    )


def _verified_number() -> rx.Component:
    return rx.flex(
        rx.hstack(
            rx.icon("circle-check", size=18, color="var(--green-10)"),
            rx.text(PhoneState.masked, weight="medium", id="phone-masked"),
            rx.badge("Verified", color_scheme="green", variant="soft", id="phone-verified"),
            rx.cond(PhoneState.texts_paused,
                    rx.badge("Texts paused", color_scheme="orange", variant="soft", id="phone-paused-badge")),
            spacing="2", align="center", wrap="wrap",
        ),
        rx.spacer(),
        rx.hstack(
            rx.cond(PhoneState.texts_paused,
                    rx.button("Text me a new code", size="2", loading=PhoneState.busy, on_click=PhoneState.resend,
                              id="phone-resend")),
            rx.button("Change", size="2", variant="soft", on_click=PhoneState.start_editing),
            rx.button("Remove", size="2", variant="soft", color_scheme="red", on_click=PhoneState.remove,
                      id="phone-remove"),
            spacing="2", wrap="wrap",
        ),
        gap="12px", align="center", wrap="wrap", width="100%",
    )


def _texts_paused() -> rx.Component:
    return rx.callout(
        rx.text(rx.text.strong("Texts paused: you replied STOP."),
                " To get text messages again, reply START to our last text, then verify your number again with a "
                "new code.", size="2"),
        icon="circle-pause", color_scheme="orange", size="1", width="100%", id="phone-texts-paused",
        custom_attrs={"role": "status"},
    )


def phone_card() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.vstack(
                rx.heading("Mobile phone", size="4", as_="h2"),
                rx.text("For text messages you choose above, and a verified badge on your profile.", size="2",
                        color="var(--gray-11)"),
                spacing="1",
            ),
            rx.cond(
                ~PhoneState.loaded, rx.center(rx.spinner(), padding="16px", width="100%"),
                rx.cond(
                    ~PreferencesState.sms_offered & ~PhoneState.verified,
                    rx.text("This marketplace does not send text messages, so there is no number to verify.",
                            size="2", color="var(--gray-11)", id="phone-unavailable"),
                    rx.vstack(
                        rx.cond(PhoneState.texts_paused & ~PhoneState.editing, _texts_paused()),
                        rx.cond(
                            PhoneState.editing, _number_form(),
                            rx.cond(PhoneState.code_pending, _code_form(),
                                    rx.cond(PhoneState.verified, _verified_number(), _number_form())),
                        ),
                        spacing="3", width="100%",
                    ),
                ),
            ),
            spacing="3", width="100%",
        ),
        size="3", width="100%", id="phone",
    )


# ---------------------------------------------------------------------------------------------- time zone

_SELECT_STYLE = {
    "width": "100%", "height": "var(--space-7)", "padding": "0 var(--space-2)", "font_size": "var(--font-size-2)",
    "color": "var(--gray-12)", "background": "var(--color-surface)", "border": "1px solid var(--gray-a7)",
    "border_radius": "var(--radius-2)",
}


def _zone_options() -> list[rx.Component]:
    """The options, written into the page once (they change only with the server's tz database)."""
    return [rx.el.optgroup(*[rx.el.option(option.label, value=option.value) for option in group.options],
                           label=group.label)
            for group in TIME_ZONE_GROUPS]


def time_zone_card() -> rx.Component:
    has_error = TimeZoneState.errors.contains("time_zone")
    return rx.card(
        rx.form(
            rx.vstack(
                rx.vstack(
                    rx.heading("Time zone", size="4", as_="h2"),
                    rx.text("Text messages and push notifications that can wait are not sent between ",
                            TimeZoneState.quiet_hours, " on your clock: they come in the morning. Security codes are "
                            "sent at once.", size="2",
                            color="var(--gray-11)"),
                    spacing="1",
                ),
                rx.vstack(
                    rx.text("Time zone", as_="label", size="2", weight="medium", custom_attrs={"htmlFor": "time-zone"}),
                    rx.el.select(
                        rx.el.option("Not set (UTC)", value=""),
                        rx.cond(TimeZoneState.unlisted != "",
                                rx.el.option(TimeZoneState.unlisted, value=TimeZoneState.unlisted)),
                        *_zone_options(),
                        name="time_zone", id="time-zone", default_value=TimeZoneState.time_zone,
                        key=TimeZoneState.form_key, style=_SELECT_STYLE,
                        custom_attrs={"aria-invalid": rx.cond(has_error, "true", "false"),
                                      "aria-describedby": "time-zone-error time-zone-now"},
                    ),
                    rx.cond(has_error, rx.text(TimeZoneState.errors["time_zone"], size="1", color="var(--red-11)",
                                               id="time-zone-error")),
                    rx.cond(TimeZoneState.loaded,
                            rx.text("It is ", TimeZoneState.local_time, " there now.", size="1",
                                    color="var(--gray-11)", id="time-zone-now")),
                    spacing="1", width="100%", align="stretch",
                ),
                rx.cond(TimeZoneState.form_error != "",
                        rx.callout(TimeZoneState.form_error, icon="triangle-alert", color_scheme="red", size="1",
                                   width="100%")),
                rx.hstack(rx.button("Save time zone", type="submit", loading=TimeZoneState.busy,
                                    id="time-zone-save"),
                          justify="end", width="100%"),
                spacing="3", width="100%",
            ),
            on_submit=TimeZoneState.save, reset_on_submit=False, width="100%", id="time-zone-form",
        ),
        size="3", width="100%", id="time-zone-card",
    )


# ---------------------------------------------------------------------------------------------- admin


def channel_choices() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Channels", size="4", as_="h2"),
            rx.text("How this marketplace may reach its members. Members choose within these on their account page.",
                    size="2", color="var(--gray-11)"),
            rx.flex(
                rx.foreach(AdminDeliveriesState.channels, lambda c: rx.vstack(
                    rx.checkbox(c.label, checked=c.chosen, disabled=~c.changeable, size="2",
                                on_change=AdminDeliveriesState.set_channel(c.channel)),
                    rx.cond(c.note != "", rx.text(c.note, size="1", color="var(--gray-11)")),
                    spacing="1", min_width="180px",
                )),
                gap="20px", wrap="wrap",
            ),
            spacing="3", width="100%",
        ),
        size="3", width="100%", id="channels",
    )


def delivery_row(row) -> rx.Component:
    return rx.table.row(
        rx.table.cell(_when(row.created_at)),
        rx.table.cell(rx.vstack(rx.text(row.subject, size="2", weight="medium"),
                                rx.text(row.event, size="1", color="var(--gray-11)"), spacing="0",
                                min_width="160px")),
        rx.table.cell(rx.badge(row.channel, variant="surface", color_scheme="gray")),
        rx.table.cell(rx.text(row.recipient, size="2", word_break="break-all")),
        rx.table.cell(rx.badge(row.status, color_scheme=rx.cond(row.status == "failed", "red", "amber"),
                               variant="soft")),
        rx.table.cell(rx.text(row.last_error, size="1", color="var(--gray-11)", min_width="200px")),
        rx.table.cell(rx.cond(row.can_retry,
                              rx.button("Retry", size="1", variant="soft",
                                        on_click=AdminDeliveriesState.retry(row.id), class_name="retry"),
                              rx.text("—", color="var(--gray-11)"))),
        align="center", custom_attrs={"data-id": row.id},
    )
