"""Page modules; importing them fills pages.registry.PAGES."""

from pages import account, admin, auth, chat, home, leads, operator, orders, payments, pros, public, requests  # noqa: F401,E501
from pages.registry import PAGES

__all__ = ["PAGES"]
