"""Imports every table so that SQLModel.metadata is complete (Alembic, tests)."""

from backend.accounts.models import AuthSession, LoginAttempt, OneTimeToken, OperatorAccount, OperatorSession, User
from backend.notifications.models import Notification
from backend.profiles.models import Profile
from backend.tenancy.models import Tenant

__all__ = ["AuthSession", "LoginAttempt", "Notification", "OneTimeToken", "OperatorAccount", "OperatorSession",
           "Profile", "Tenant", "User"]
