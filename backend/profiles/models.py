"""User Profile service tables and input shapes: the basic profile every user has, and a professional's."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import sqlalchemy as sa
from pydantic import BaseModel, field_validator
from sqlmodel import Field

from backend.db import TenantOwned, utcnow
from backend.validation import FullName, paragraphs, text, whole


class Profile(TenantOwned, table=True):
    user_id: int = Field(foreign_key="user_account.id", primary_key=True)
    full_name: str = Field(max_length=80)
    city: str = Field(default="", max_length=80)
    avatar_key: str = Field(default="", max_length=200)
    updated_at: datetime = Field(default_factory=utcnow)


class ProfileUpdate(BaseModel):
    full_name: FullName
    city: Annotated[str, text("city", 80)] = ""


class ProfileView(BaseModel):
    user_id: int
    full_name: str
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
    # A copy of "the account's mobile number is verified" (accounts writes it with the number): the public badge
    phone_verified: bool = False
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


class ProProfileUpdate(BaseModel):
    """The professional's own profile editor (ProService.update_own)."""

    headline: Annotated[str, text("headline", 120, required=True)]
    bio: Annotated[str, paragraphs("bio", 4000)] = ""
    skills: str = ""  # comma separated
    city: Annotated[str, text("city", 80, required=True)]
    radius_km: Annotated[int, whole(1, 500, not_a_number="Enter the radius in whole kilometres",
                                    out_of_range="Service radius must be between 1 and 500 km")] = 25
    hourly_rate: str = "0"
    category_ids: list[int] = []
    availability: dict[str, list[str]] = {}
    blocked_dates: list[date] = []

    @field_validator("skills")
    @classmethod
    def _skills(cls, v: str) -> str:
        items = [" ".join(s.split()) for s in (v or "").split(",") if s.strip()]
        if len(items) > 20:
            raise ValueError("List at most 20 skills")
        if any(len(s) > 40 for s in items):
            raise ValueError("Each skill must be at most 40 characters")
        return ", ".join(dict.fromkeys(items))

    @field_validator("availability")
    @classmethod
    def _availability(cls, v: dict) -> dict:
        out = {}
        for day, span in v.items():
            if day not in WEEKDAYS or len(span) != 2:
                raise ValueError("Availability must be a start and end time per weekday")
            start, end = span
            if not (len(start) == len(end) == 5 and start < end and start[2] == end[2] == ":"):
                raise ValueError(f"On {day}, the start time must be before the end time")
            out[day] = [start, end]
        return out

    @field_validator("blocked_dates")
    @classmethod
    def _blocked(cls, v: list[date]) -> list[date]:
        if len(v) > 100:
            raise ValueError("Block at most 100 dates")
        return sorted(set(v))
