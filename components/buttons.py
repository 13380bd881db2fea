"""Links that look like buttons, and the shared accessibility bits (a visually hidden text, live regions).

A `<button>` inside an `<a>` is two controls in one: invalid HTML, two tab stops, announced twice. `link_button` is
one link wearing a Radix button's look (Button `asChild` onto the router's link), so it navigates like a link, is
named by its text and keeps the button's size, colours and focus ring.
"""

from __future__ import annotations

import reflex as rx
from reflex_components_core.el.elements.inline import A
from reflex_components_core.el.elements.typography import P
from reflex_components_core.react_router.dom import ReactRouterLink

# Read by screen readers, not drawn (the usual "sr-only" rules).
VISUALLY_HIDDEN = {"position": "absolute", "width": "1px", "height": "1px", "padding": "0", "margin": "-1px",
                   "overflow": "hidden", "clip": "rect(0, 0, 0, 0)", "white_space": "nowrap", "border": "0"}


def link_button(*children, href: str | rx.Var, external: bool = False, **button_props) -> rx.Component:
    """A link to `href` drawn as a button; `button_props` (size, variant, id, width...) go to the button look, and
    Radix merges them onto the single `<a>`. `external` opens a plain link (downloads, other origins)."""
    link = (A.create(*children, href=href, target="_blank", rel="noopener") if external
            else ReactRouterLink.create(*children, to=href))
    return rx.button(link, as_child=True, **button_props)


def skip_link(target: str = "main-content") -> rx.Component:
    """The first thing a keyboard meets on every page: hidden until focused, it jumps over the header."""
    return A.create(  # a native anchor: the browser moves focus to the target (a router link would not)
        "Skip to content", href=f"#{target}", class_name="skip-link",
        style={**VISUALLY_HIDDEN, "&:focus": {
            "position": "fixed", "top": "8px", "left": "8px", "width": "auto", "height": "auto", "clip": "auto",
            "padding": "10px 16px", "margin": "0", "z_index": "100", "background": "var(--color-panel-solid)",
            "color": "var(--accent-11)", "border_radius": "8px", "box_shadow": "0 0 0 2px var(--accent-9)",
            "font_weight": "600", "white_space": "normal"}},
    )


class PageStart(P):
    """Where keyboard and screen-reader navigation starts on each page: the page's title, visually hidden.

    A link inside the app swaps the page without loading a document, so the link that had focus disappears and the
    browser keeps its place in the old page: the next Tab lands somewhere in the middle of the new one, and a screen
    reader says nothing. After each navigation in the app (not on a document's first page, where the browser starts
    at the top already) this takes focus (unless the new page gave it to something, e.g. an autofocused field) and
    reads the new title, so the next Tab meets the skip link first, as after a page load."""

    def add_imports(self):
        return {"react": ["useEffect"], "react-router": ["useLocation"]}

    def add_hooks(self):
        return [
            "const pageStartLocation = useLocation();",
            """useEffect(() => {
  const start = document.getElementById("page-start");
  if (!start) return;
  if (!window.__pageStartSeen) { window.__pageStartSeen = true; return; }
  const focused = document.activeElement;
  if (focused && focused !== document.body && focused !== start && focused.isConnected) return;
  start.textContent = document.title;
  start.focus({preventScroll: true});
}, [pageStartLocation.pathname]);""",
        ]


def page_start() -> rx.Component:
    return PageStart.create(id="page-start", tab_index=-1, style={**VISUALLY_HIDDEN, "outline": "none"})


def live_region(*children, polite: bool = True, **props) -> rx.Component:
    """Content a screen reader announces when it changes (new chat messages, a status), without moving focus."""
    return rx.box(*children, aria_live="polite" if polite else "assertive", **props)


def named_upload(label: str | rx.Var, *children, **props) -> rx.Component:
    """`rx.upload` whose hidden file input carries `label` as its accessible name (Reflex draws that input itself,
    with no way to pass it attributes, so the name is set on it here)."""
    upload = rx.upload(*children, **props)
    stack = [upload]
    while stack:
        node = stack.pop()
        if type(node).__name__ == "Input" and str(getattr(node, "type", "")) == '"file"':
            node.custom_attrs["aria-label"] = label
        stack.extend(getattr(node, "children", []))
    return upload


# Radix Themes' step-11 text on step-3 tints (soft badges, callouts) and sonner's rich toast colours fall just under
# 4.5:1 for some hues (green 4.1-4.2, red toasts 4.3): darker text, same tints. Focus rings on links and the
# role=button/radio widgets we draw ourselves (Radix draws its own on its controls). On phones, the primary actions
# (submit buttons, solid buttons) are at least 44 px tall: a thumb's target.
A11Y_CSS = """
.rt-Badge:where(.rt-variant-soft, .rt-variant-surface, .rt-variant-outline):not(.rt-high-contrast),
.rt-CalloutRoot:not(.rt-high-contrast) { color: var(--accent-12); }
html [data-sonner-toaster][data-sonner-theme] {
  --error-text: #b30000; --success-text: #006b24; --info-text: #0050b3; --warning-text: #8a4b00;
}
a:focus-visible, [role=button]:focus-visible, [role=radio]:focus-visible, .skip-link:focus {
  outline: 2px solid var(--accent-9); outline-offset: 2px;
}
@media (max-width: 767px) {
  main button[type=submit], main .rt-Button.rt-variant-solid, [role=dialog] button[type=submit] { min-height: 44px; }
}
"""


def a11y_styles() -> rx.Component:
    """The rules above, as a `<style>` in the page (every page shell draws it once)."""
    return rx.el.style(A11Y_CSS)
