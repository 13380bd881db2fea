"""The "App notifications on this device" card: turns web push on or off for the browser it is shown in, through the
app's service worker (assets/sw.js shows each push), and lists the user's devices.

The scripts run in the page (rx.call_script) and report to PushState: the permission prompt must come from the
click itself, and the subscription exists only in the browser until it is handed over.
"""

from __future__ import annotations

import reflex as rx

from state.push import PushState

# Resolves to the service worker's registration, or null when none is running on this page within a few seconds.
_READY = ("Promise.race([navigator.serviceWorker.ready, "
          "new Promise((resolve) => setTimeout(() => resolve(null), 5000))])")

CHECK_SCRIPT = f"""(async () => {{
  if (!('serviceWorker' in navigator) || !('PushManager' in window) || !('Notification' in window)) {{
    return {{status: 'unsupported'}};
  }}
  if (Notification.permission === 'denied') return {{status: 'blocked'}};
  const registration = await {_READY};
  if (!registration) return {{status: 'no_worker'}};
  const subscription = await registration.pushManager.getSubscription();
  return subscription && Notification.permission === 'granted'
    ? {{status: 'on', endpoint: subscription.endpoint}} : {{status: 'off'}};
}})().catch(() => ({{status: 'unsupported'}}))"""

SUBSCRIBE_SCRIPT = f"""(async () => {{
  if (!('serviceWorker' in navigator) || !('PushManager' in window)) return {{status: 'unsupported'}};
  const permission = await Notification.requestPermission();
  if (permission !== 'granted') return {{status: permission === 'denied' ? 'blocked' : 'off'}};
  const registration = await {_READY};
  if (!registration) return {{status: 'no_worker'}};
  const key = document.getElementById('push-card').dataset.key;
  const raw = atob(key.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - key.length % 4) % 4));
  const applicationServerKey = Uint8Array.from(raw, (c) => c.charCodeAt(0));
  let subscription = await registration.pushManager.getSubscription();
  if (subscription) {{
    const used = subscription.options && subscription.options.applicationServerKey;
    const same = used && new Uint8Array(used).every((byte, i) => byte === applicationServerKey[i]);
    if (!same) {{ await subscription.unsubscribe(); subscription = null; }}
  }}
  if (!subscription) {{
    subscription = await registration.pushManager.subscribe({{userVisibleOnly: true, applicationServerKey}});
  }}
  return {{status: 'on', subscription: subscription.toJSON()}};
}})().catch((e) => ({{status: 'error', error: String((e && e.message) || e)}}))"""

UNSUBSCRIBE_SCRIPT = f"""(async () => {{
  const registration = 'serviceWorker' in navigator ? await {_READY} : null;
  const subscription = registration ? await registration.pushManager.getSubscription() : null;
  const endpoint = subscription ? subscription.endpoint : '';
  if (subscription) await subscription.unsubscribe();
  return {{endpoint}};
}})().catch(() => ({{endpoint: ''}}))"""

_MESSAGES = {
    "unsupported": "This browser can't show notifications from the marketplace. On an iPhone or iPad, add the app to "
                   "your Home Screen first (Share, then Add to Home Screen) and open it from there.",
    "no_worker": "The app isn't fully loaded on this page yet. Reload the page, then try again.",
    "blocked": "Notifications are blocked for this site. Allow them in your browser's site settings, then reload "
               "this page.",
    "off": "Get a notification on this device when something needs you, even when the marketplace isn't open.",
    "on": "Notifications are on for this device. Choose which ones in the Push column above.",
}


def _when(iso) -> rx.Component:
    return rx.moment(iso, from_now=True)


def _device(device) -> rx.Component:
    return rx.flex(
        rx.vstack(
            rx.hstack(
                rx.icon("smartphone", size=16, color="var(--gray-10)"),
                rx.text(device.label, weight="medium", size="2"),
                rx.cond(device.current, rx.badge("This device", color_scheme="green", variant="soft")),
                spacing="2", align="center", wrap="wrap",
            ),
            rx.text("Added ", _when(device.added),
                    rx.cond(device.last_used != "", rx.fragment(" · last notified ", _when(device.last_used))),
                    size="1", color="var(--gray-10)"),
            spacing="1", align="start",
        ),
        rx.spacer(),
        rx.button("Remove", size="1", variant="soft", color_scheme="red", on_click=PushState.remove(device.id),
                  aria_label="Remove " + device.label, class_name="push-remove"),
        align="center", gap="12px", width="100%", wrap="wrap", class_name="push-device",
    )


def _controls() -> rx.Component:
    return rx.vstack(
        rx.box(
            rx.cond(
                PushState.browser == "checking",
                rx.hstack(rx.spinner(size="1"), rx.text("Checking this browser…", size="2"), align="center"),
                rx.text(rx.match(PushState.browser, *_MESSAGES.items(), ""), size="2", color="var(--gray-11)"),
            ),
            id="push-status", custom_attrs={"role": "status", "aria-live": "polite"},
        ),
        rx.cond(PushState.browser == "off",
                rx.button("Turn on notifications on this device", size="3", id="push-on",
                          on_click=rx.call_script(SUBSCRIBE_SCRIPT, callback=PushState.subscribed))),
        rx.cond(PushState.browser == "on",
                rx.button("Turn off", size="2", variant="soft", color_scheme="gray", id="push-off",
                          on_click=rx.call_script(UNSUBSCRIBE_SCRIPT, callback=PushState.unsubscribed))),
        spacing="2", align="start", width="100%",
    )


def push_card() -> rx.Component:
    """Loads itself when it mounts (the account page adds it with one line)."""
    return rx.card(
        rx.vstack(
            rx.heading("App notifications on this device", size="4", as_="h2"),
            rx.cond(
                ~PushState.loaded, rx.center(rx.spinner(), padding="16px", width="100%"),
                rx.cond(
                    PushState.public_key == "",
                    rx.text("Notifications on devices are not set up on this marketplace.", size="2",
                            color="var(--gray-11)", id="push-unavailable"),
                    _controls(),
                ),
            ),
            rx.cond(
                PushState.devices.length() > 0,
                rx.vstack(
                    rx.heading("Your devices", size="3", as_="h3"),
                    rx.vstack(rx.foreach(PushState.devices, _device), spacing="3", width="100%"),
                    spacing="2", width="100%", id="push-devices",
                ),
            ),
            spacing="3", width="100%",
        ),
        size="3", width="100%", id="push-card", custom_attrs={"data-key": PushState.public_key},
        on_mount=[PushState.load, rx.call_script(CHECK_SCRIPT, callback=PushState.set_browser)],
    )
