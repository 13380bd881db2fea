"""User Profile service: the basic profile every user has (professional details come later)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from pydantic import BaseModel, field_validator
from sqlmodel import Field

from backend.db import TenantOwned, utcnow
from backend.validation import PHONE_RE, clean_text


class Profile(TenantOwned, table=True):
    user_id: int = Field(foreign_key="user_account.id", primary_key=True)
    full_name: str = Field(max_length=80)
    phone: str = Field(default="", max_length=24)
    city: str = Field(default="", max_length=80)
    avatar_key: str = Field(default="", max_length=200)
    updated_at: datetime = Field(default_factory=utcnow)


class ProfileUpdate(BaseModel):
    full_name: str
    phone: str = ""
    city: str = ""

    @field_validator("full_name")
    @classmethod
    def _name(cls, v: str) -> str:
        return clean_text(v, field="name", max_len=80, required=True)

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str) -> str:
        v = (v or "").strip()
        if v and not PHONE_RE.match(v):
            raise ValueError("Enter a phone number like +1 555 123 4567")
        return v

    @field_validator("city")
    @classmethod
    def _city(cls, v: str) -> str:
        return clean_text(v, field="city", max_len=80)


class ProfileView(BaseModel):
    user_id: int
    full_name: str
    phone: str
    city: str
    avatar_url: str


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ProProfile(TenantOwned, table=True):
    """What a professional offers: shown on /pros/<id> and used to match leads."""

    __tablename__ = "pro_profile"

    user_id: int = Field(foreign_key="user_account.id", primary_key=True)
    headline: str = Field(default="", max_length=120)
    bio: str = Field(default="", max_length=4000)
    skills: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    city: str = Field(default="", max_length=80)
    latitude: float | None = None
    longitude: float | None = None
    radius_km: int = 25
    hourly_rate_minor: int = 0
    currency: str = Field(default="USD", max_length=3)
    # {"mon": ["09:00", "17:00"], ...}; a missing day is unavailable
    availability: dict = Field(default_factory=dict, sa_type=sa.JSON)
    blocked_dates: list[str] = Field(default_factory=list, sa_type=sa.JSON)  # ISO dates
    verified: bool = False
    updated_at: datetime = Field(default_factory=utcnow)


class ProCategory(TenantOwned, table=True):
    __tablename__ = "pro_category"

    user_id: int = Field(foreign_key="user_account.id", primary_key=True)
    category_id: int = Field(foreign_key="category.id", primary_key=True, index=True)


class PortfolioImage(TenantOwned, table=True):
    __tablename__ = "portfolio_image"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user_account.id", index=True)
    key: str = Field(max_length=200)
    thumb_key: str = Field(max_length=200)
    caption: str = Field(default="", max_length=120)
    created_at: datetime = Field(default_factory=utcnow)
