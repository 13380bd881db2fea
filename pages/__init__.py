"""Page modules; importing them fills pages.registry.PAGES."""

from pages import (account, admin, auth, chat, home, leads, notifications, operator, orders, payments,  # noqa: F401
                   pros, public, requests, reviews)
from pages.registry import PAGES

__all__ = ["PAGES"]
