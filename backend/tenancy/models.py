"""Multi-Tenancy Manager tables: the tenant registry (a platform table, not tenant-owned)."""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel, Field as PField, field_validator
from sqlmodel import Field, SQLModel

from backend.db import utcnow
from backend.identity import TenantStatus
from backend.tenancy.contrast import brand_contrast_problem
from backend.validation import Email, Password

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
HEX_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
RESERVED_SLUGS = {"www", "api", "admin", "operator", "static", "assets", "mail"}
# Passwords printed in the README and by the seed: never accepted for a platform operator.
PUBLISHED_PASSWORDS = frozenset({"demo-password-1"})
CURRENCIES = ("USD", "EUR", "GBP", "CAD", "AUD", "CHF", "SEK", "NOK", "DKK", "PLN", "JPY", "INR", "BRL")


class Tenant(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=40, unique=True, index=True)
    name: str = Field(max_length=80)
    primary_color: str = Field(default="#4F46E5", max_length=7)
    accent_color: str = Field(default="#F59E0B", max_length=7)
    logo_url: str = Field(default="", max_length=500)
    currency: str = Field(default="USD", max_length=3)
    platform_fee_bps: int = Field(default=1000)  # basis points: 1000 = 10.00 %
    request_expiry_days: int = Field(default=30)  # open service requests expire after this
    review_window_days: int = Field(default=14)  # the parties of an ended order may review each other this long
    instant_match_count: int = Field(default=5)  # a new request goes first to this many best-matching pros; 0 = off
    # stripe | paypal | demo (development only) | "" = none: no payments until the operator chooses a
    # configured one. PlatformService.create_tenant picks the first configured provider for a new marketplace.
    # (The column's server default from migration 0002 is still 'demo'; it only applies to raw SQL inserts
    # and fails closed too: without the demo gateway such a marketplace cannot take payments.)
    payment_provider: str = Field(default="", max_length=16)
    status: str = Field(default=TenantStatus.ACTIVE, max_length=16)
    created_at: datetime = Field(default_factory=utcnow)
    notification_channels: str = Field(default="email,sms,in_app", max_length=40)  # the channels this marketplace uses


class TenantBranding(BaseModel):
    """What an operator may change about an existing tenant."""

    name: str = PField(min_length=2, max_length=80)
    primary_color: str = "#4F46E5"
    accent_color: str = "#F59E0B"
    logo_url: str = PField(default="", max_length=500)
    currency: str = "USD"
    platform_fee_percent: float = PField(default=10.0, ge=0, le=50)
    request_expiry_days: int = PField(default=30, ge=1, le=365)
    review_window_days: int = PField(default=14, ge=1, le=60)  # how long both parties have to review an order
    # how many of the best-matching professionals a new request is sent to at once (0 = no instant match)
    instant_match_count: int = PField(default=5, ge=0, le=20)
    # None = keep the current provider (a new marketplace: the first configured one); "none" or "" = no
    # payments. Whether the named provider is configured on this installation is PlatformService's check.
    payment_provider: str | None = PField(default=None, max_length=16)

    @field_validator("payment_provider", mode="before")
    @classmethod
    def _provider(cls, v):
        if v is None:
            return None
        v = str(v).strip().lower()
        return "" if v == "none" else v

    @field_validator("name")
    @classmethod
    def _strip_name(cls, v: str) -> str:
        v = v.strip()
        if len(v) < 2:
            raise ValueError("Name must be at least 2 characters")
        return v

    @field_validator("primary_color", "accent_color")
    @classmethod
    def _hex(cls, v: str) -> str:
        v = v.strip()
        if not HEX_RE.match(v):
            raise ValueError("Use a hex colour like #4F46E5")
        return v.upper()

    @field_validator("primary_color")
    @classmethod
    def _readable(cls, v: str) -> str:
        """The brand colour fills buttons under white text and colours links on white: AA contrast, both ways."""
        problem = brand_contrast_problem(v)
        if problem:
            raise ValueError(problem)
        return v

    @field_validator("logo_url")
    @classmethod
    def _logo(cls, v: str) -> str:
        v = v.strip()
        if v and not (v.startswith("https://") or v.startswith("http://") or v.startswith("/")):
            raise ValueError("Logo must be an http(s) URL or a path")
        return v

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        v = v.strip().upper()
        if v not in CURRENCIES:
            raise ValueError(f"Currency must be one of {', '.join(CURRENCIES)}")
        return v


class TenantCreate(TenantBranding):
    slug: str = PField(min_length=1, max_length=40)
    admin_email: Email
    admin_password: Password
    admin_name: str = PField(default="Marketplace admin", max_length=80)

    @field_validator("slug")
    @classmethod
    def _slug(cls, v: str) -> str:
        v = v.strip().lower()
        if not SLUG_RE.match(v):
            raise ValueError("Use 1-40 lowercase letters, digits or dashes")
        if v in RESERVED_SLUGS:
            raise ValueError("That address is reserved")
        return v


class OperatorCredentials(BaseModel):
    """A platform operator created or reset from the command line (`python -m backend.cli`): the same
    email and password rules as sign-up, and never a password that has been published."""

    email: Email
    password: Password
    name: str = PField(default="Platform operator", min_length=1, max_length=80)

    @field_validator("password")
    @classmethod
    def _not_published(cls, v: str) -> str:
        if v in PUBLISHED_PASSWORDS:
            raise ValueError("That password is published (it is the demo data's); choose another")
        return v

    @field_validator("name")
    @classmethod
    def _strip_operator_name(cls, v: str) -> str:
        v = " ".join(v.split())
        if not v:
            raise ValueError("Enter a name")
        return v
