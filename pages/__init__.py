"""Page modules; importing them fills pages.registry.PAGES."""

from pages import (account, admin, analytics, auth, chat, home, leads, notifications, operations,  # noqa: F401
                   operator, orders, payments, pros, public, requests, reviews)
from pages.registry import PAGES

__all__ = ["PAGES"]
