"""Importing these modules registers their @rx.page routes."""

from pages import account, admin, auth, home, operator, public  # noqa: F401
