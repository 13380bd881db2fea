"""Each page module declares its route, title and on_load with `@page(...)`; the app adds them once.

(Reflex's own @rx.page is re-applied on every compile pass and warns about redefinitions.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PageSpec:
    component: Callable
    route: str
    title: str
    on_load: Any = None


PAGES: list[PageSpec] = []


def page(route: str, title: str, on_load: Any = None) -> Callable:
    def register(component: Callable) -> Callable:
        PAGES.append(PageSpec(component, route, title, on_load))
        return component

    return register
