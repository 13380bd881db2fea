"""Page modules; importing them fills pages.registry.PAGES."""

from pages import (account, admin, auth, chat, home, leads, operator, orders, payments, pros,  # noqa: F401
                   public, requests, reviews)
from pages.registry import PAGES

__all__ = ["PAGES"]
