"""Notifications on the web: the live bell, the notifications page, the preference matrix, the phone, the unsubscribe
page and the admin's deliveries.

The bell is a shared state per user (`NotificationBell`, token `bell_token(tenant, user)`): every page links the tab
to it on load (`BellState.link`, chained to each page's on_load by pages/registry.py), and whatever changes it, here
or in marketplace_app/bell_push.py when the backend rings after a commit, reaches every open tab of that user over
the WebSocket. Nothing polls for notifications: the bell's only timer is a keepalive every few minutes, which keeps
the link (and Reflex's copy of the shared state) from expiring on a tab left open for hours.
"""

from __future__ import annotations

from dataclasses import dataclass

import reflex as rx

from backend.accounts.timezones import ZoneGroup, zone_groups
from backend.bootstrap import services
from backend.errors import DomainError
from backend.identity import Caller, Role, TenantPublic
from backend.notifications.catalogue import GROUP_CHANNELS, Group
from backend.notifications.models import Channel
from backend.notifications.service import BellView, DeliveryRow, InAppItem, PreferenceRow
from state.app_state import FAILED, MEMBER_ROLES, AppState, Ctx, FormMixin, requires

BELL_ITEMS = 5  # the latest items the bell's menu shows
PAGE_ITEMS = 100
KEEPALIVE_MS = 5 * 60 * 1000  # well inside Reflex's state expiry (an hour) and the bell's watch (15 minutes)
LINK_REUSES_CALLER_FOR = 30  # seconds: the page's own on_load has just looked the caller up

CHANNEL_NAMES = {Channel.EMAIL.value: "Email", Channel.SMS.value: "Text", Channel.IN_APP.value: "In-app",
                 Channel.PUSH.value: "Push"}
CHANNEL_PHRASES = {Channel.EMAIL.value: "by email", Channel.SMS.value: "by text message",
                   Channel.IN_APP.value: "in the app", Channel.PUSH.value: "on your devices"}
CHANNEL_WORDS = {Channel.EMAIL.value: "emails", Channel.SMS.value: "text messages",
                 Channel.IN_APP.value: "in-app notifications", Channel.PUSH.value: "push notifications"}
LOCKED_NOTE = "Always on: these messages keep your account safe."


def bell_token(tenant_id: int, user_id: int) -> str:
    """The shared bell of one user of one marketplace (Reflex refuses "_" in link tokens)."""
    return f"bell-t{tenant_id}-u{user_id}"


# ------------------------------------------------------------------------------------------------ the bell

class NotificationBell(rx.SharedState):
    """One per user, shared by all their tabs: the unread count and the latest items."""

    unread: int = 0
    items: list[InAppItem] = []
    # Counts the pushes this bell received: a page showing something that changes (the order page) keys a
    # component on it, whose remount reloads what the page shows (components/notifications.py `on_push`).
    pulse: int = 0

    @rx.var
    def label(self) -> str:
        """The bell's accessible name."""
        return f"Notifications, {self.unread} unread" if self.unread else "Notifications, none unread"

    @rx.var
    def badge(self) -> str:
        return "99+" if self.unread > 99 else str(self.unread)


def _watch_and_view(tenant_id: int, user_id: int) -> BellView:
    """Blocking: say this bell is open (so pushes come to it) and read what it shows."""
    notifications = services().notifications
    if notifications.bell is not None:
        notifications.bell.watch(tenant_id, user_id)
    return notifications.bell_view(tenant_id, user_id, limit=BELL_ITEMS)


async def show_on_bell(state: rx.State, ctx: Ctx) -> None:
    """After this tab changed the caller's notifications (read one, read all): the bell at once, in every tab of
    theirs (the backend's ring after commit brings the same numbers a moment later)."""
    view = await state._run(services().notifications.bell_view, ctx.tenant.id, ctx.caller.id, limit=BELL_ITEMS)
    bell = await state.get_state(NotificationBell)
    bell.unread, bell.items = view.unread, view.items


def _member(tenant: TenantPublic | None, caller: Caller | None) -> bool:
    return (tenant is not None and tenant.is_active and caller is not None and not caller.is_operator
            and caller.tenant_id == tenant.id)


class BellState(AppState):
    """Links the tab to its user's bell. Not guarded: it must never change what the page shows (`access`)."""

    @rx.event
    async def link(self):
        """Chained after every page's on_load: a signed-in member's tab joins their bell and reads it; a tab whose
        user logged out leaves the bell it was linked to."""
        admitted = self._recently_admitted((), LINK_REUSES_CALLER_FOR)
        tenant, caller = (admitted.tenant, admitted.caller) if admitted else await self._identify()
        bell = await self.get_state(NotificationBell)
        if not _member(tenant, caller):
            if bell._linked_to:
                return await bell._unlink()
            return None
        bell = await bell._link_to(bell_token(tenant.id, caller.id))
        view = await self._run(_watch_and_view, tenant.id, caller.id)
        bell.unread, bell.items = view.unread, view.items
        return None

    @rx.event
    async def keepalive(self, _value: str = ""):
        """Every few minutes while a page is open (see KEEPALIVE_MS)."""
        return await self.link()

    @rx.event
    @requires(*MEMBER_ROLES)
    async def open_item(self, ctx: Ctx, notification_id: int, link: str):
        """A bell item was chosen: it is read now, and its link opens."""
        if not await self._run(_read_one, ctx.caller, notification_id):
            return rx.toast.error("This notification no longer exists.")
        await show_on_bell(self, ctx)
        return rx.redirect(link) if link.startswith("/") else rx.redirect("/notifications")

    @rx.event
    @requires(*MEMBER_ROLES)
    async def read_all(self, ctx: Ctx):
        await self._run(services().notifications.mark_all_read, ctx.caller)
        await show_on_bell(self, ctx)
        notes = await self.get_state(NotificationsState)
        if notes.loaded:
            await notes._reload(ctx)
        return rx.toast.success("All notifications marked as read.")


def _read_one(caller: Caller, notification_id: int) -> bool:
    try:
        services().notifications.mark_read(caller, notification_id)
    except DomainError:
        return False
    return True


# ------------------------------------------------------------------------------------------------ /notifications

class NotificationsState(AppState):
    items: list[InAppItem] = []
    show: str = "all"  # all | unread
    loaded: bool = False

    async def _reload(self, ctx: Ctx) -> None:
        self.items = await self._run(services().notifications.inbox, ctx.caller, unread_only=self.show == "unread",
                                     limit=PAGE_ITEMS)
        self.loaded = True

    @rx.event
    @requires(*MEMBER_ROLES)
    async def load(self, ctx: Ctx):
        self.loaded = False
        await self._reload(ctx)

    @rx.event
    @requires(*MEMBER_ROLES)
    async def set_show(self, ctx: Ctx, value: str | list[str]):
        self.show = "unread" if value == "unread" else "all"
        await self._reload(ctx)

    @rx.event
    @requires(*MEMBER_ROLES)
    async def mark_read(self, ctx: Ctx, notification_id: int):
        if not await self._run(_read_one, ctx.caller, notification_id):
            return rx.toast.error("This notification no longer exists.")
        await self._reload(ctx)
        await show_on_bell(self, ctx)
        return None

    @rx.event
    @requires(*MEMBER_ROLES)
    async def mark_all_read(self, ctx: Ctx):
        count = await self._run(services().notifications.mark_all_read, ctx.caller)
        await self._reload(ctx)
        await show_on_bell(self, ctx)
        return rx.toast.success(f"{count} notification{'' if count == 1 else 's'} marked as read." if count
                                else "Nothing unread.")

    @rx.event
    @requires(*MEMBER_ROLES)
    async def open_item(self, ctx: Ctx, notification_id: int, link: str):
        await self._run(_read_one, ctx.caller, notification_id)
        await show_on_bell(self, ctx)
        if link.startswith("/"):
            return rx.redirect(link)
        await self._reload(ctx)
        return None

    @rx.var
    def unread_here(self) -> int:
        return sum(1 for item in self.items if not item.read)


# ------------------------------------------------------------------------------------------------ preferences

@dataclass
class MatrixCell:
    group: str
    channel: str
    enabled: bool
    changeable: bool  # a switch the user may flip
    shown: bool  # a switch at all (else a dash and `note` says why)
    label: str  # the switch's accessible name: "Quotes by email"
    note: str  # why it cannot be changed, or is not offered
    key: str  # the element id: "pref-quotes-email"


@dataclass
class MatrixRow:
    group: str
    label: str
    note: str
    cells: list[MatrixCell]


def _unavailable_note(group: Group, channel: str, offered: frozenset[Channel], sms_ready: bool) -> str:
    words = CHANNEL_WORDS[channel]
    if Channel(channel) not in GROUP_CHANNELS[group]:
        return f"Not sent as {words}."
    if channel == Channel.SMS.value and not sms_ready:
        return "Text messages are not set up on this marketplace."
    if channel == Channel.PUSH.value:
        return "Notifications on devices are not set up on this marketplace."
    if Channel(channel) not in offered:
        return f"This marketplace does not send {words}."
    return "Not available."


def _matrix(rows: list[PreferenceRow], offered: frozenset[Channel], sms_ready: bool) -> list[MatrixRow]:
    matrix = []
    for row in rows:
        group = Group(row.group)
        is_locked = any(cell.locked for cell in row.cells)
        cells = [MatrixCell(group=row.group, channel=cell.channel, enabled=cell.enabled,
                            changeable=cell.available and not cell.locked, shown=cell.available,
                            label=f"{row.label} {CHANNEL_PHRASES[cell.channel]}",
                            note=LOCKED_NOTE if cell.available and cell.locked
                            else "" if cell.available else _unavailable_note(group, cell.channel, offered, sms_ready),
                            key=f"pref-{row.group}-{cell.channel}")
                 for cell in row.cells]
        matrix.append(MatrixRow(group=row.group, label=row.label, note=LOCKED_NOTE if is_locked else "",
                                cells=cells))
    return matrix


def _preferences(tenant: TenantPublic, caller: Caller) -> tuple[list[MatrixRow], frozenset[Channel], bool]:
    notifications = services().notifications
    offered = notifications.channels(tenant.id)
    sms_ready = notifications.sms is not None
    return _matrix(notifications.preferences(caller), offered, sms_ready), offered, sms_ready


class PreferencesState(AppState):
    rows: list[MatrixRow] = []
    sms_offered: bool = False  # the marketplace texts (and has an SMS provider)
    loaded: bool = False

    async def _reload(self, ctx: Ctx) -> None:
        self.rows, offered, sms_ready = await self._run(_preferences, ctx.tenant, ctx.caller)
        self.sms_offered = sms_ready and Channel.SMS in offered
        self.loaded = True

    @rx.event
    @requires(*MEMBER_ROLES)
    async def load(self, ctx: Ctx):
        await self._reload(ctx)

    @rx.event
    @requires(*MEMBER_ROLES)
    async def toggle(self, ctx: Ctx, group: str, channel: str, enabled: bool):
        try:
            await self._run(services().notifications.set_preference, ctx.caller, group, channel, bool(enabled))
        except DomainError as exc:
            await self._reload(ctx)  # the switch goes back to what is stored
            return rx.toast.error(exc.message)
        await self._reload(ctx)
        label = next((r.label for r in self.rows if r.group == group), group)
        return rx.toast.success(f"{label} {CHANNEL_PHRASES.get(channel, channel)}: {'on' if enabled else 'off'}.")


# ------------------------------------------------------------------------------------------------ phone

class PhoneState(FormMixin, AppState):
    masked: str = ""
    verified: bool = False
    code_pending: bool = False
    texts_paused: bool = False  # the number replied STOP to our texts
    editing: bool = False  # the number form is open over a number already there
    loaded: bool = False

    async def _reload(self, ctx: Ctx) -> None:
        view = await self._run(services().accounts.phone, ctx.tenant, ctx.caller)
        self.masked, self.verified, self.code_pending = view.masked, view.verified, view.code_pending
        self.texts_paused = view.texts_paused
        self.loaded = True

    @rx.event
    @requires(*MEMBER_ROLES)
    async def load(self, ctx: Ctx):
        self._reset_form()
        self.editing = False
        await self._reload(ctx)

    @rx.event
    def start_editing(self):
        self._clear_errors()
        self.editing = True

    @rx.event
    def stop_editing(self):
        self._clear_errors()
        self.editing = False

    @rx.event
    @requires(*MEMBER_ROLES)
    async def send_code(self, ctx: Ctx, form: dict):
        phone = str(form.get("phone", "")).strip()
        if not phone:
            self.errors = {"phone": "Enter your mobile number."}
            return
        self.busy = True
        yield
        masked = await self._call(services().accounts.start_phone_verification, ctx.tenant, ctx.caller, phone)
        if masked is FAILED:
            yield self._refused("phone")
            return
        self.editing = False
        await self._reload(ctx)
        yield rx.toast.success(f"We texted a 6-digit code to {masked}.")

    @rx.event
    @requires(*MEMBER_ROLES)
    async def resend(self, ctx: Ctx):
        """A new code to the number already on the account (texts paused: verifying it again resumes them)."""
        self.busy = True
        yield
        masked = await self._call(services().accounts.resend_phone_code, ctx.tenant, ctx.caller)
        if masked is FAILED:
            yield self._refused()
            return
        await self._reload(ctx)
        yield rx.toast.success(f"We texted a 6-digit code to {masked}.")

    @rx.event
    @requires(*MEMBER_ROLES)
    async def verify(self, ctx: Ctx, form: dict):
        self.busy = True
        yield
        if await self._call(services().accounts.verify_phone, ctx.tenant, ctx.caller,
                            str(form.get("code", ""))) is FAILED:
            await self._reload(ctx)  # too many tries or expired: the code is gone
            yield self._refused("code")
            return
        await self._reload(ctx)
        yield rx.toast.success("Your phone number is verified.")
        yield TimeZoneState.load  # a number in one time zone gives an account without one its zone

    @rx.event
    @requires(*MEMBER_ROLES)
    async def remove(self, ctx: Ctx):
        if await self._call(services().accounts.remove_phone, ctx.tenant, ctx.caller) is FAILED:
            return self._refused()
        self.editing = False
        await self._reload(ctx)
        return rx.toast.success("Phone number removed. You will get no more text messages.")


# ------------------------------------------------------------------------------------------------ /unsubscribe

class UnsubscribeState(AppState):
    """The footer link of an email. The change is made by this page's on_load, an event over the WebSocket once the
    page runs in a browser: a mail scanner that prefetches the link's HTML changes nothing."""

    outcome: str = "working"  # working | done | failed
    message: str = ""

    @rx.event
    @requires()
    async def load(self, ctx: Ctx):
        self.outcome, self.message = "working", ""
        token = self.router.url.query_parameters.get("token", "")
        try:
            self.message = await self._run(services().notifications.unsubscribe, ctx.tenant, token)
        except DomainError as exc:
            self.outcome, self.message = "failed", exc.message
            return
        self.outcome = "done"


# ------------------------------------------------------------------------------------------------ admin

@dataclass
class ChannelChoice:
    channel: str
    label: str
    chosen: bool
    changeable: bool
    note: str


def _admin_view(ctx: Ctx) -> tuple[list[DeliveryRow], list[ChannelChoice]]:
    notifications = services().notifications
    rows = notifications.failed_deliveries(ctx.caller)
    offered = notifications.channels(ctx.tenant.id)
    choices = []
    for channel in Channel:
        if channel == Channel.IN_APP:
            note, changeable = "Always on: everything shows in the app.", False
        elif channel == Channel.SMS and notifications.sms is None:
            note, changeable = "No SMS provider is configured (TWILIO_* settings).", False
        elif channel == Channel.PUSH:  # each member turns it on per device
            note = ("Members turn it on per device on their account page." if notifications.push is not None
                    else "No web push keys are configured (VAPID_* settings).")
            choices.append(ChannelChoice(channel=channel.value, label=CHANNEL_NAMES[channel.value],
                                         chosen=notifications.push is not None, changeable=False, note=note))
            continue
        else:
            note, changeable = "", True
        choices.append(ChannelChoice(channel=channel.value, label=CHANNEL_NAMES[channel.value],
                                     chosen=channel in offered and (changeable or channel == Channel.IN_APP),
                                     changeable=changeable, note=note))
    return rows, choices


def _retry(ctx: Ctx, notification_id: int) -> None:
    note_id = services().notifications.retry(ctx.caller, notification_id)
    services().jobs.deliver_notification(ctx.tenant.id, note_id)  # after retry()'s commit


def _set_channel(ctx: Ctx, channel: str, chosen: bool) -> None:
    """One channel on or off, the others as stored (an SMS channel kept while no provider is configured)."""
    notifications = services().notifications
    stored = {c.value for c in notifications.channels(ctx.tenant.id)}
    notifications.set_channels(ctx.caller, sorted((stored | {channel}) if chosen else (stored - {channel})))


class AdminDeliveriesState(AppState):
    rows: list[DeliveryRow] = []
    channels: list[ChannelChoice] = []
    loaded: bool = False

    async def _reload(self, ctx: Ctx) -> None:
        self.rows, self.channels = await self._run(_admin_view, ctx)
        self.loaded = True

    @rx.event
    @requires(Role.ADMIN)
    async def load(self, ctx: Ctx):
        self.loaded = False
        await self._reload(ctx)

    @rx.event
    @requires(Role.ADMIN)
    async def retry(self, ctx: Ctx, notification_id: int):
        await self._run(_retry, ctx, notification_id)
        await self._reload(ctx)
        still = next((r for r in self.rows if r.id == notification_id), None)
        if still is not None and still.status == "failed":
            return rx.toast.error(f"It failed again: {still.last_error}")
        return rx.toast.success("Sent again.")

    @rx.event
    @requires(Role.ADMIN)
    async def set_channel(self, ctx: Ctx, channel: str, chosen: bool):
        await self._run(_set_channel, ctx, channel, bool(chosen))
        await self._reload(ctx)
        name = CHANNEL_WORDS.get(channel, channel).capitalize()
        return rx.toast.success(f"{name} {'on' if chosen else 'off'} for this marketplace.")


# ------------------------------------------------------------------------------------------------ time zone

# The select's options, built once from the tz database (grouped: common zones first, then each area's, sorted).
TIME_ZONE_GROUPS: list[ZoneGroup] = zone_groups()
_OFFERED_ZONES = frozenset(option.value for group in TIME_ZONE_GROUPS for option in group.options)


class TimeZoneState(FormMixin, AppState):
    time_zone: str = ""  # IANA name; "" = not set (UTC)
    unlisted: str = ""  # the stored name when the list does not offer it (an alias such as "US/Eastern")
    local_time: str = ""
    quiet_hours: str = ""
    form_key: int = 0  # remounts the select on its stored value after each load
    loaded: bool = False

    def _show(self, view) -> None:
        self.time_zone, self.local_time, self.quiet_hours = view.name, view.local_time, view.quiet_hours
        self.unlisted = view.name if view.name and view.name not in _OFFERED_ZONES else ""
        self.form_key += 1
        self.loaded = True

    @rx.event
    @requires(*MEMBER_ROLES)
    async def load(self, ctx: Ctx):
        self._reset_form()
        self._show(await self._run(services().accounts.time_zone, ctx.tenant, ctx.caller))

    @rx.event
    @requires(*MEMBER_ROLES)
    async def save(self, ctx: Ctx, form: dict):
        self.busy = True
        yield
        view = await self._call(services().accounts.set_time_zone, ctx.tenant, ctx.caller,
                                str(form.get("time_zone", "")))
        if view is FAILED:
            yield self._refused("time_zone")
            return
        self._show(view)
        yield rx.toast.success(f"Time zone: {view.name}." if view.name else "Time zone cleared: we go by UTC.")
