"""Each page module declares its route, title and on_load with `@page(...)`; the app adds them once.

(Reflex's own @rx.page is re-applied on every compile pass and warns about redefinitions.)

Every page's on_load ends by linking the tab to the signed-in user's live notification bell (state/notifications.py),
after the page's own handler, which has just looked the caller up (the link reuses that).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from state.notifications import BellState


@dataclass(frozen=True)
class PageSpec:
    component: Callable
    route: str
    title: str
    on_load: Any = None


PAGES: list[PageSpec] = []


def page(route: str, title: str, on_load: Any = None) -> Callable:
    def register(component: Callable) -> Callable:
        PAGES.append(PageSpec(component, route, title, with_bell(on_load)))
        return component

    return register


def with_bell(on_load: Any) -> list:
    """The page's on_load handlers, then the bell's link."""
    handlers = [] if on_load is None else list(on_load) if isinstance(on_load, (list, tuple)) else [on_load]
    return [*handlers, BellState.link]
