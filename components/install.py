"""The "Install app" button: hidden until the browser offers to install the app.

The browser says so with a `beforeinstallprompt` event, which /pwa.js (marketplace_app/pwa_static/pwa.js) catches:
it adds a rule that shows every `.install-app` button, and a click on one opens the browser's own install dialog.
Hidden with `display: none`, so until then the button is out of the tab order and of the accessibility tree. No
state: the offer lives in the browser only, and a click needs no round trip to the server.
"""

from __future__ import annotations

import reflex as rx

INSTALL_CLASS = "install-app"


def install_button() -> rx.Component:
    return rx.button(
        rx.icon("download", size=16, aria_hidden="true"),
        # the words show from the small breakpoint up; on phones the icon alone, named by aria-label
        rx.text("Install app", as_="span", class_name="rt-r-display-none sm:rt-r-display-inline"),
        type="button", variant="soft", size="2", class_name=INSTALL_CLASS, id="install-app",
        aria_label="Install app", title="Install this marketplace as an app",
        style={"display": "none"}, min_height="36px", white_space="nowrap", flex_shrink="0",
    )
