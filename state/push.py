"""Notifications on this device (web push): the browser's side runs in the page (components/push.py calls the
service worker's pushManager through rx.call_script); these handlers get what it reports and call the notification
service off the event loop.

`browser` is what this browser says about itself: "checking" until the page's script answered, then "unsupported"
(no service worker or Push API), "no_worker" (the app's service worker is not running on this page), "blocked" (the
user denied notifications to this site), "off" or "on". `endpoint` is this browser's subscription, when it has
one, so the device list can mark "This device".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import reflex as rx

from backend.accounts.devices import device_label
from backend.bootstrap import services
from backend.errors import DomainError
from backend.notifications.push import PushDevice
from state.app_state import MEMBER_ROLES, AppState, Ctx, requires

BROWSER_STATES = ("checking", "unsupported", "no_worker", "blocked", "off", "on")


@dataclass
class DeviceRow:
    id: int
    label: str
    added: str  # ISO 8601
    last_used: str  # ISO 8601, "" = nothing sent yet
    current: bool  # this browser


class PushState(AppState):
    public_key: str = ""  # the VAPID applicationServerKey; "" = push is not set up on this deployment
    browser: str = "checking"
    devices: list[DeviceRow] = []
    busy: bool = False
    loaded: bool = False
    _endpoint: str = ""
    _devices: list[PushDevice] = []

    def _show(self, devices: list[PushDevice]) -> None:
        self._devices = devices
        self.devices = [DeviceRow(id=d.id, label=d.label, added=d.created_at, last_used=d.last_used_at,
                                  current=bool(self._endpoint) and d.endpoint == self._endpoint) for d in devices]

    @rx.event
    @requires(*MEMBER_ROLES)
    async def load(self, ctx: Ctx):
        notifications = services().notifications
        self.public_key = notifications.push_key()
        self._show(await self._run(notifications.push_devices, ctx.tenant, ctx.caller))
        self.loaded = True

    @rx.event
    def set_browser(self, report: dict):
        """The page's script: {"status": one of BROWSER_STATES, "endpoint": this browser's subscription or ""}."""
        report = report if isinstance(report, dict) else {}
        status = str(report.get("status", ""))
        self.browser = status if status in BROWSER_STATES else "unsupported"
        self._endpoint = str(report.get("endpoint") or "") if self.browser == "on" else ""
        self._show(self._devices)

    @rx.event
    @requires(*MEMBER_ROLES)
    async def subscribed(self, ctx: Ctx, report: dict):
        """The browser subscribed (or the user said no): {"status", "subscription": subscription.toJSON()}."""
        self.busy = False
        report = report if isinstance(report, dict) else {}
        status = str(report.get("status", ""))
        if status != "on":
            self.browser = status if status in BROWSER_STATES else self.browser
            if status == "blocked":
                return rx.toast.error("Notifications are blocked for this site. Allow them in the browser's site "
                                      "settings, then try again.")
            if status == "error":
                return rx.toast.error(f"This browser could not turn notifications on: {report.get('error', '')}")
            return None
        label = device_label(self.router.headers.user_agent or "")
        try:
            await self._run(services().notifications.subscribe_push, ctx.tenant, ctx.caller,
                            report.get("subscription"), label=label)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self.browser = "on"
        subscription = report.get("subscription")
        self._endpoint = str(subscription.get("endpoint", "")) if isinstance(subscription, dict) else ""
        self._show(await self._run(services().notifications.push_devices, ctx.tenant, ctx.caller))
        return rx.toast.success("Notifications are on for this device.")

    @rx.event
    @requires(*MEMBER_ROLES)
    async def unsubscribed(self, ctx: Ctx, report: dict):
        """The browser dropped its subscription: {"endpoint": the one it had, or ""}."""
        self.busy = False
        report = report if isinstance(report, dict) else {}
        endpoint = str(report.get("endpoint") or self._endpoint)
        if endpoint:
            await self._run(services().notifications.unsubscribe_push, ctx.tenant, ctx.caller, endpoint)
        self.browser, self._endpoint = "off", ""
        self._show(await self._run(services().notifications.push_devices, ctx.tenant, ctx.caller))
        return rx.toast.success("Notifications are off for this device.")

    @rx.event
    @requires(*MEMBER_ROLES)
    async def remove(self, ctx: Ctx, device_id: int):
        try:
            await self._run(services().notifications.remove_push_device, ctx.tenant, ctx.caller, int(device_id))
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self._show(await self._run(services().notifications.push_devices, ctx.tenant, ctx.caller))
        return rx.toast.success("Device removed: it gets no more notifications.")

    @rx.event
    def start(self):
        self.busy = True
