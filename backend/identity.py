"""Who is calling, on which marketplace: the vocabulary every service shares (kernel; imports nothing of ours).

`Caller` is the authenticated person (or platform operator) behind a request, passed explicitly into every
service call; `TenantPublic` is what the web layer may know about the marketplace serving it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel


class Role(StrEnum):
    CLIENT = "client"
    PROFESSIONAL = "professional"
    ADMIN = "admin"  # tenant admin: runs one marketplace
    OPERATOR = "operator"  # platform operator: runs the install (OperatorAccount, not User)


@dataclass(frozen=True)
class Caller:
    """The authenticated caller, passed explicitly into every service call."""

    role: Role
    id: int
    tenant_id: int | None  # None for platform operators
    email: str = ""
    name: str = ""
    email_verified: bool = False

    @property
    def is_operator(self) -> bool:
        return self.role == Role.OPERATOR

    def is_admin_of(self, tenant_id: int) -> bool:
        """The admin of that marketplace (a platform operator is not: it runs the installation)."""
        return self.role == Role.ADMIN and self.tenant_id == tenant_id


class TenantStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class TenantPublic(BaseModel):
    """What the web layer may know about the tenant serving a request."""

    id: int
    slug: str
    name: str
    primary_color: str
    accent_color: str
    logo_url: str
    currency: str
    platform_fee_bps: int
    request_expiry_days: int = 30
    review_window_days: int = 14
    instant_match_count: int = 5
    payment_provider: str = ""
    status: str
    notification_channels: str = "email,sms,in_app"  # comma list of notifications.Channel values

    @property
    def is_active(self) -> bool:
        return self.status == TenantStatus.ACTIVE
