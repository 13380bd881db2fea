"""Auth service tables and input shapes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from pydantic import BaseModel, field_validator
from sqlmodel import Field, SQLModel

from backend.db import TenantOwned, utcnow
from backend.identity import Role
from backend.validation import Email, FullName, Password


class UserStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class TokenPurpose(StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"


class User(TenantOwned, table=True):
    __tablename__ = "user_account"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "email", name="uq_user_tenant_email"),)

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254)
    password_hash: str = Field(max_length=255)
    role: str = Field(max_length=16)
    status: str = Field(default=UserStatus.ACTIVE, max_length=16)
    email_verified_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    last_login_at: datetime | None = None
    # The mobile number on the account (E.164, "" = none) and when a texted code proved it is the user's. A new
    # number clears phone_verified_at until its own code comes back; only a verified number receives SMS.
    phone_e164: str = Field(default="", max_length=16, sa_column_kwargs={"server_default": ""})
    phone_verified_at: datetime | None = None
    # IANA name ("America/New_York") the user chose, or guessed from their verified phone; None = unknown (UTC).
    # Texts that can wait are held through the night on this clock.
    time_zone: str | None = Field(default=None, max_length=64)


class AuthSession(TenantOwned, table=True):
    __tablename__ = "auth_session"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user_account.id", index=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    revoked_at: datetime | None = None
    # when a browser turned the login ticket into its HttpOnly cookie: a ticket is redeemed once
    cookie_claimed_at: datetime | None = None
    ip: str = Field(default="", max_length=64)
    user_agent: str = Field(default="", max_length=255)


class OneTimeToken(TenantOwned, table=True):
    __tablename__ = "one_time_token"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user_account.id", index=True)
    purpose: str = Field(max_length=32)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None


class AttemptKind(StrEnum):
    LOGIN = "login"  # a password check: the row is written before the check and deleted on success
    RESET = "reset"  # a password-reset email asked for (known email or not)
    VERIFY = "verify"  # a verification email re-sent
    PHONE_CODE = "phone_code"  # an SMS code sent: `email` holds "user:<id>", `ip` the number's keyed hash


class PhoneVerification(TenantOwned, table=True):
    """One texted code. Only the user's newest row can be redeemed; a new code expires the older ones. The code
    itself is never stored: `code_hash` is its HMAC (backend.accounts.phones.CodeHasher)."""

    __tablename__ = "phone_verification"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user_account.id", index=True)
    phone_e164: str = Field(max_length=16)
    code_hash: str = Field(max_length=64)
    expires_at: datetime
    attempts: int = 0  # wrong codes typed; at phones.MAX_TRIES the code is dead
    created_at: datetime = Field(default_factory=utcnow)
    verified_at: datetime | None = None


class LoginAttempt(SQLModel, table=True):
    """Throttled authentication attempts: logins (kept while failed), reset requests, verification
    re-sends and SMS codes. A platform table: `scope` is a tenant slug or 'operator'; `ip` is the throttling bucket
    of the client address (the address, or its IPv6 /64)."""

    __tablename__ = "login_attempt"
    __table_args__ = (sa.Index("ix_login_attempt_scope_kind_email_at", "scope", "kind", "email", "at"),
                      sa.Index("ix_login_attempt_scope_kind_ip_at", "scope", "kind", "ip", "at"),
                      sa.Index("ix_login_attempt_at", "at"))

    id: int | None = Field(default=None, primary_key=True)
    scope: str = Field(max_length=40)
    kind: str = Field(default=AttemptKind.LOGIN, max_length=16,
                      sa_column_kwargs={"server_default": AttemptKind.LOGIN.value})
    email: str = Field(max_length=254)
    ip: str = Field(default="", max_length=64)
    at: datetime = Field(default_factory=utcnow)


class OperatorAccount(SQLModel, table=True):
    """Platform operators run the installation; they belong to no tenant."""

    __tablename__ = "operator_account"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True)
    password_hash: str = Field(max_length=255)
    name: str = Field(default="Platform operator", max_length=80)
    created_at: datetime = Field(default_factory=utcnow)


class OperatorSession(SQLModel, table=True):
    __tablename__ = "operator_session"

    id: int | None = Field(default=None, primary_key=True)
    operator_id: int = Field(foreign_key="operator_account.id", index=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    revoked_at: datetime | None = None
    cookie_claimed_at: datetime | None = None  # see AuthSession


# ---------------------------------------------------------------- input shapes


class SignUp(BaseModel):
    email: Email
    password: Password
    full_name: FullName
    role: Role = Role.CLIENT

    @field_validator("role")
    @classmethod
    def _public_role(cls, v: Role) -> Role:
        if v not in (Role.CLIENT, Role.PROFESSIONAL):
            raise ValueError("Choose client or professional")
        return v


class NewPassword(BaseModel):
    password: Password


@dataclass(frozen=True)
class UserRow:
    """A user as shown in the admin list (never the password hash)."""

    id: int
    email: str
    full_name: str
    role: str
    status: str
    email_verified: bool
    created_at: str
    last_login_at: str
    verified: bool = False  # professionals: the admin-set verified badge
