"""Page chrome: tenant-branded header, responsive nav, and the states every page can be in."""

from __future__ import annotations

import reflex as rx

from state.analytics import OpsBadgeState
from state.app_state import HOME_FOR_ROLE, AppState
from state.chat import InboxState

from components.buttons import VISUALLY_HIDDEN, a11y_styles, link_button, page_start, skip_link
from components.install import install_button
from components.notifications import bell_keepalive, notification_bell

CONTENT_WIDTH = "1120px"


def brand_style() -> dict:
    """Map the tenant's brand colour onto Radix's accent scale, so every solid/soft
    component (buttons, badges, links, focus rings) wears the tenant's colours."""
    brand = AppState.brand_primary
    tint = lambda pct: f"color-mix(in srgb, {brand} {pct}%, white)"  # noqa: E731
    shade = lambda pct: f"color-mix(in srgb, {brand} {100 - pct}%, black)"  # noqa: E731
    return {
        "--brand": brand,
        "--brand-accent": AppState.brand_accent,
        "--accent-1": tint(2), "--accent-2": tint(5), "--accent-3": tint(10), "--accent-4": tint(15),
        "--accent-5": tint(22), "--accent-6": tint(30), "--accent-7": tint(45), "--accent-8": tint(65),
        "--accent-9": brand, "--accent-10": shade(10), "--accent-11": shade(20), "--accent-12": shade(45),
        # Alpha variants drive links, outline and soft buttons.
        "--accent-a1": tint(2), "--accent-a2": tint(5), "--accent-a3": tint(10), "--accent-a4": tint(15),
        "--accent-a5": tint(22), "--accent-a6": tint(30), "--accent-a7": tint(45), "--accent-a8": tint(65),
        "--accent-a9": brand, "--accent-a10": shade(10), "--accent-a11": shade(20), "--accent-a12": shade(45),
        "--accent-surface": tint(5), "--accent-indicator": brand, "--accent-track": brand,
        "--accent-contrast": "white", "--focus-8": brand,
    }


def brand_mark() -> rx.Component:
    return rx.link(
        rx.hstack(
            rx.cond(
                AppState.tenant_logo != "",
                rx.image(src=AppState.tenant_logo, height="32px", width="auto", alt=AppState.tenant_name),
                rx.center(
                    rx.text(AppState.tenant_name.to(str)[0:1], weight="bold", color="white"),
                    width="32px", height="32px", border_radius="8px", background="var(--brand)",
                ),
            ),
            rx.text(AppState.tenant_name, weight="bold", size="4", color="var(--gray-12)",
                    white_space="nowrap", overflow="hidden", text_overflow="ellipsis", max_width=["40vw", "60vw"]),
            align="center", spacing="2",
        ),
        href="/", underline="none", id="brand",
    )


OPERATIONS = "/admin/operations"
# In the user menu only: the header's row has no room for all of the admin's pages beside the bell at 1280 px.
MENU_ONLY = {"/admin/categories", "/admin/outbox"}


def _nav_items() -> list[tuple[str, str, rx.Var]]:
    role = AppState.user_role
    return [
        ("Home", HOME_FOR_ROLE["client"], role == "client"),
        ("My requests", "/requests", role == "client"),
        ("Find pros", "/pros", role == "client"),
        ("Payments", "/payments", role == "client"),
        ("Home", HOME_FOR_ROLE["professional"], role == "professional"),
        ("Leads", "/pro/leads", role == "professional"),
        ("Quotes", "/pro/quotes", role == "professional"),
        ("Earnings", "/pro/earnings", role == "professional"),
        ("Profile", "/pro/profile", role == "professional"),
        ("Reviews", "/reviews", (role == "client") | (role == "professional")),
        ("Dashboard", HOME_FOR_ROLE["admin"], role == "admin"),
        ("Operations", OPERATIONS, role == "admin"),
        ("Users", "/admin/users", role == "admin"),
        ("Categories", "/admin/categories", role == "admin"),
        ("Payments", "/admin/payments", role == "admin"),
        ("Reviews", "/admin/reviews", role == "admin"),
        ("Deliveries", "/admin/notifications", role == "admin"),
        ("Dev outbox", "/admin/outbox", (role == "admin") & AppState.dev_tools),
        ("Orders", "/orders", AppState.user_id != 0),
        ("Account", "/account", AppState.user_id != 0),
    ]


# On a phone, each role's main destinations sit in a bar at the bottom of the screen, where a thumb reaches them;
# everything else stays in the user menu. (icon, label, href); the first is the role's home.
PHONE_TABS: dict[str, list[tuple[str, str, str]]] = {
    "client": [("house", "Home", HOME_FOR_ROLE["client"]), ("file-text", "Requests", "/requests"),
               ("search", "Find pros", "/pros"), ("package", "Orders", "/orders"),
               ("message-circle", "Messages", "/messages")],
    "professional": [("house", "Home", HOME_FOR_ROLE["professional"]), ("inbox", "Leads", "/pro/leads"),
                     ("package", "Orders", "/orders"), ("wallet", "Earnings", "/pro/earnings"),
                     ("message-circle", "Messages", "/messages")],
    "admin": [("chart-column", "Dashboard", HOME_FOR_ROLE["admin"]), ("list-todo", "Operations", OPERATIONS),
              ("users", "Users", "/admin/users"), ("package", "Orders", "/orders"),
              ("message-circle", "Messages", "/messages")],
}
PHONE_TABS_HEIGHT = "60px"
PHONE_ONLY = rx.breakpoints(initial="flex", sm="none")  # under 48em (768 px), where the header shows no links


def _phone_tab(icon: str, label: str, href: str, home: bool) -> rx.Component:
    path = AppState.router.url.path
    # a role's home is current only on itself (other pages share its prefix); a section also on its sub-pages
    here = (path == href) | (path == href + "/") if home else (path == href) | path.startswith(href + "/")
    return rx.link(
        rx.icon(icon, size=20, aria_hidden="true"),
        rx.text(label, size="1", weight="medium", white_space="nowrap"),
        href=href, underline="none", color=rx.cond(here, "var(--accent-11)", "var(--gray-11)"),
        display="flex", flex_direction="column", align_items="center", justify_content="center", gap="2px",
        flex="1", min_width="0", min_height="48px", class_name="phone-tab",
        custom_attrs={"aria-current": rx.cond(here, "page", "false")},
    )


def phone_tabs() -> rx.Component:
    """The bottom bar of a signed-in user on a phone (PHONE_TABS), and the room it takes at the end of the page."""
    bar = rx.el.nav(
        rx.match(AppState.user_role,
                 *[(role, rx.hstack(*[_phone_tab(icon, label, href, i == 0)
                                      for i, (icon, label, href) in enumerate(tabs)],
                                    spacing="0", width="100%", align="stretch"))
                   for role, tabs in PHONE_TABS.items()],
                 rx.fragment()),
        aria_label="Shortcuts", display=PHONE_ONLY, position="fixed", bottom="0", left="0", right="0",
        z_index="10", min_height=PHONE_TABS_HEIGHT, padding_x="4px", padding_bottom="env(safe-area-inset-bottom)",
        background="var(--color-panel-solid)", border_top="1px solid var(--gray-a5)", id="phone-tabs",
    )
    room = rx.box(height=f"calc({PHONE_TABS_HEIGHT} + env(safe-area-inset-bottom))", display=PHONE_ONLY,
                  aria_hidden="true")
    return rx.cond((AppState.user_id != 0) & rx.Var.create(list(PHONE_TABS)).contains(AppState.user_role),
                   rx.fragment(room, bar))


def ops_badge() -> rx.Component:
    """The count of what waits for the admin on /admin/operations (state/analytics.py's OpsBadgeState), read when a
    page opens and every minute; a screen reader hears "Operations, 3 waiting"."""
    return rx.cond(OpsBadgeState.total > 0, rx.badge(
        rx.text(OpsBadgeState.total, as_="span", aria_hidden="true"),
        rx.el.span(", ", OpsBadgeState.total, " waiting", style=VISUALLY_HIDDEN),
        color_scheme="red", radius="full", size="1", margin_left="4px", class_name="ops-badge"))


def ops_badge_source() -> rx.Component:
    """Reads the badge's count for an admin: when the page mounts, then every minute."""
    return rx.cond(AppState.user_role == "admin", rx.box(
        rx.moment(interval=60_000, on_change=OpsBadgeState.refresh, display="none"),
        on_mount=OpsBadgeState.refresh, display="none"))


def _label(label: str, href: str):
    return (label, ops_badge()) if href == OPERATIONS else (label,)


def nav_links() -> rx.Component:
    return rx.el.nav(rx.hstack(
        *[rx.cond(show, rx.link(*_label(label, href), href=href, size="2", weight="medium", color="var(--gray-11)",
                                underline="none", white_space="nowrap", _hover={"color": "var(--brand)"}))
          for label, href, show in _nav_items() if href not in MENU_ONLY],
        spacing="4", align="center",
    ), aria_label="Main")


def messages_link() -> rx.Component:
    """Messages, with the live unread count (refreshed every few seconds while the page is open)."""
    return rx.link(
        rx.box(
            rx.icon("message-circle", size=20, color="var(--gray-11)"),
            rx.cond(InboxState.unread_total > 0,
                    rx.badge(InboxState.unread_total, color_scheme="red", radius="full", size="1",
                             position="absolute", top="-8px", right="-10px", id="unread-badge")),
            rx.moment(interval=4000, on_change=InboxState.refresh_unread, display="none"),
            position="relative", padding="4px",
        ),
        href="/messages", id="messages-link", aria_label="Messages",
    )


def user_menu() -> rx.Component:
    return rx.menu.root(
        rx.menu.trigger(
            rx.button(
                rx.avatar(fallback=AppState.user_initials, size="1", radius="full"),
                rx.text(AppState.user_name, size="2", class_name="rt-r-display-none sm:rt-r-display-block",
                        max_width="140px", overflow="hidden", text_overflow="ellipsis", white_space="nowrap"),
                rx.icon("chevron-down", size=14),
                variant="ghost", id="user-menu",
            ),
        ),
        rx.menu.content(
            rx.box(rx.text(AppState.user_email, size="1", color="var(--gray-11)"), padding="6px 12px"),
            rx.menu.separator(),
            *[rx.cond(show, rx.menu.item(*_label(label, href), on_click=rx.redirect(href)))
              for label, href, show in _nav_items()],
            rx.menu.separator(),
            rx.menu.item("Log out", on_click=AppState.logout, color="red", id="logout"),
            align="end",
        ),
    )


def header(prerendered: bool = False) -> rx.Component:
    """`prerendered` (the landing page, whose HTML is shown before the app boots): "Log in" and "Sign up" are in that
    HTML too, so a visitor has them before the app knows the marketplace; elsewhere they wait for it."""
    guest_links_shown = AppState.tenant_status == "ok"
    if prerendered:
        guest_links_shown = guest_links_shown | (AppState.tenant_status == "loading")
    return rx.el.header(
        rx.hstack(
            rx.cond(AppState.tenant_name != "", brand_mark()),
            rx.spacer(),
            install_button(),  # shown only when the browser offers to install the app
            rx.cond(
                AppState.user_id != 0,
                rx.hstack(rx.desktop_only(nav_links()), notification_bell(), bell_keepalive(), ops_badge_source(),
                          messages_link(), user_menu(), spacing="5", align="center"),
                rx.cond(
                    guest_links_shown,
                    rx.hstack(
                        rx.link("Log in", href="/login", size="2", weight="medium", underline="none",
                                white_space="nowrap"),
                        link_button("Sign up", href="/signup", size="2", white_space="nowrap"),
                        spacing="4", align="center", flex_shrink="0",
                    ),
                ),
            ),
            align="center", max_width=CONTENT_WIDTH, margin="0 auto", padding_x=["16px", "24px"],
            height="64px",
        ),
        border_bottom="1px solid var(--gray-a5)", background="var(--color-panel-solid)",
        position="sticky", top="0", z_index="10",
    )


def footer() -> rx.Component:
    return rx.el.footer(
        rx.hstack(
            rx.cond(AppState.tenant_name != "", rx.text("© ", AppState.tenant_name, size="1", color="var(--gray-11)")),
            rx.spacer(),
            rx.text("Powered by an open-source marketplace", size="1", color="var(--gray-11)"),
            max_width=CONTENT_WIDTH, margin="0 auto", padding_x=["16px", "24px"], padding_y="24px",
        ),
    )


def status_panel(icon: str, title: str | rx.Var, body, *actions) -> rx.Component:
    return rx.center(
        rx.card(
            rx.vstack(
                rx.center(rx.icon(icon, size=28, color="var(--gray-11)"), width="56px", height="56px",
                          border_radius="50%", background="var(--gray-3)"),
                rx.heading(title, as_="h1", size="5", align="center"),
                rx.text(body, color="var(--gray-11)", align="center"),
                rx.hstack(*actions, spacing="3", justify="center"),
                align="center", spacing="3", padding="16px",
            ),
            max_width="460px", width="100%",
        ),
        padding_y="72px", padding_x="16px",
    )


def loading_panel() -> rx.Component:
    return rx.center(rx.spinner(size="3"), padding_y="96px", id="loading")


def denied_panel() -> rx.Component:
    return rx.box(
        status_panel(
            "shield-x", "You can't open this page",
            "Your account doesn't have access to this part of the marketplace.",
            link_button("Go to my home", href=AppState.home_path, variant="soft"),
        ),
        id="access-denied",
    )


def tenant_missing_panel() -> rx.Component:
    return rx.box(
        status_panel("map-pin-off", "Marketplace not found",
                     "There is no marketplace at this address. Check the link you followed."),
        id="tenant-missing",
    )


def tenant_suspended_panel() -> rx.Component:
    return rx.box(
        status_panel("circle-pause", "This marketplace is paused",
                     "It has been suspended by the platform operator. Please check back later."),
        id="tenant-suspended",
    )


def page_shell(content: rx.Component, *, gated: bool = True, prerendered: bool = False) -> rx.Component:
    """Every tenant page: header, body by tenant status and access, footer.
    `gated` pages render only once on_load has granted access. `prerendered` (a public page whose content does not
    wait for the marketplace: the landing page) shows its content in the build's HTML, before the app has connected,
    instead of a spinner: the first paint is the page, not a spinner the page then replaces."""
    body = rx.match(
        AppState.access,
        ("ok", content),
        ("denied", denied_panel()),
        loading_panel(),
    ) if gated else content
    by_status = [("missing", tenant_missing_panel()), ("suspended", tenant_suspended_panel())]
    if not prerendered or gated:
        by_status.append(("loading", loading_panel()))
    return rx.box(
        a11y_styles(),
        page_start(),
        skip_link(),
        header(prerendered),
        rx.el.main(
            rx.match(AppState.tenant_status, *by_status, body),
            max_width=CONTENT_WIDTH, margin="0 auto", padding_x=["16px", "24px"], padding_y=["20px", "32px"],
            min_height="calc(100vh - 140px)", id="main-content", tab_index=-1, outline="none",
        ),
        footer(),
        phone_tabs(),
        style=brand_style(),
        background="var(--gray-2)",
    )


def page_header(title: str | rx.Var, subtitle: str | rx.Var = "", *actions) -> rx.Component:
    heading = rx.vstack(
        rx.heading(title, as_="h1", size=rx.breakpoints(initial="6", sm="7"), weight="bold"),
        rx.text(subtitle, color="var(--gray-11)") if isinstance(subtitle, rx.Var) or subtitle else rx.fragment(),
        spacing="1",
    )
    if not actions:
        return rx.box(heading, margin_bottom="8px", width="100%")
    return rx.flex(
        heading,
        rx.spacer(),
        rx.hstack(*actions, spacing="3"),
        direction=rx.breakpoints(initial="column", sm="row"), gap="12px",
        align=rx.breakpoints(initial="start", sm="end"), margin_bottom="8px", width="100%",
    )


def data_table(headers: tuple[str, ...], items: rx.Var, row, *, label: str = "", **table_props) -> rx.Component:
    """A table of `items`, `row(item)` each, that scrolls sideways on a narrow screen: the scrolling box is a labelled
    region a keyboard can focus (to scroll it with the arrow keys). A header left empty is named for screen readers
    by its visually hidden text ("Actions")."""
    return rx.box(rx.table.root(
        rx.table.header(rx.table.row(*[rx.table.column_header_cell(
            h if h else rx.el.span("Actions", style=VISUALLY_HIDDEN)) for h in headers])),
        rx.table.body(rx.foreach(items, row)),
        width="100%", **table_props), overflow_x="auto", width="100%", max_width="100%", role="region",
        aria_label=label or ", ".join(h for h in headers if h)[:80], tab_index=0, class_name="table-scroll")


def loaded_list(loaded: rx.Var, items: rx.Var, empty: rx.Component, shown: rx.Component) -> rx.Component:
    """A list the page loads: a spinner until it has, then the empty state or the list."""
    return rx.cond(~loaded, loading_panel(), rx.cond(items.length() == 0, empty, shown))


def card_stack(items: rx.Var, card, spacing: str = "2", **props) -> rx.Component:
    """`card(item)` for each item, one under the other."""
    return rx.vstack(rx.foreach(items, card), spacing=spacing, width="100%", **props)


def list_page(title: str, subtitle: str, *actions: rx.Component, loaded: rx.Var, items: rx.Var,
              empty: rx.Component, shown: rx.Component, after: tuple[rx.Component, ...] = ()) -> rx.Component:
    """A page listing what it loads: its header (the actions beside the title), the list (a spinner until loaded,
    or the empty state), then what comes `after` it."""
    return page_shell(rx.vstack(page_header(title, subtitle, *actions), loaded_list(loaded, items, empty, shown),
                                *after, spacing="4", width="100%"))


def empty_state(icon: str, title: str, body: str, *actions) -> rx.Component:
    return rx.center(
        rx.vstack(
            rx.icon(icon, size=32, color="var(--gray-9)"),
            rx.text(title, weight="medium", size="3"),
            rx.text(body, size="2", color="var(--gray-11)", align="center", max_width="380px"),
            rx.hstack(*actions, spacing="2"),
            align="center", spacing="2",
        ),
        padding="40px 16px", border="1px dashed var(--gray-a6)", border_radius="12px", width="100%",
    )
