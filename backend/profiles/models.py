"""User Profile service: the basic profile every user has (professional details come later)."""

from __future__ import annotations

from datetime import datetime

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
