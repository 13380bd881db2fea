"""Ratings & Reviews tables and input shapes.

- `Review`: one row per (order, author), with that party's own state (submitted, then published), so that one party
  skipping never holds up the other: the window's close publishes whatever exists.
- `ReviewWindow`: one per reviewable order: when its window closes (the deadline shown is this one), whether the
  reminder went out, and when its reviews were published.
- `ReviewReport` and `ReviewModeration`: reports by users, and the admin's hide/restore audit trail.
- `RatingAggregate`: per reviewed person, the sums the profile shows (count, stars, 5..1 distribution, sub-ratings,
  score), rewritten from the visible reviews in the transaction that changes what is visible (aggregates.py).
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated

import sqlalchemy as sa
from pydantic import BaseModel, BeforeValidator, Field as PField
from sqlmodel import Field

from backend.db import TenantOwned, utcnow
from backend.reviews.rules import REASON_MAX, REPLY_MAX, TEXT_MAX, ReviewStatus
from backend.validation import paragraphs, whole, whole_number


class Review(TenantOwned, table=True):
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "order_id", "author_id", name="uq_review_order_author"),
        # a profile's list: a subject's published reviews, newest first
        sa.Index("ix_review_subject_published", "subject_id", "status", "published_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="service_order.id", index=True)
    author_id: int = Field(foreign_key="user_account.id", index=True)
    subject_id: int = Field(foreign_key="user_account.id")
    author_role: str = Field(max_length=16)  # client | professional
    stars: int
    text: str = Field(max_length=TEXT_MAX)
    quality: int | None = None  # the sub-ratings: only on a client's review of a professional
    communication: int | None = None
    punctuality: int | None = None
    value: int | None = None
    status: str = Field(default=ReviewStatus.SUBMITTED, max_length=16)
    submitted_at: datetime = Field(default_factory=utcnow)
    published_at: datetime | None = None
    reply: str = Field(default="", max_length=REPLY_MAX)
    replied_at: datetime | None = None
    hidden: bool = False
    hidden_reason: str = Field(default="", max_length=REASON_MAX)


class ReviewWindow(TenantOwned, table=True):
    __tablename__ = "review_window"

    order_id: int = Field(foreign_key="service_order.id", primary_key=True)
    client_id: int = Field(foreign_key="user_account.id", index=True)
    pro_id: int = Field(foreign_key="user_account.id", index=True)
    opened_at: datetime  # when the order ended
    closes_at: datetime = Field(index=True)
    reminded_at: datetime | None = None
    closed_at: datetime | None = Field(default=None, index=True)  # its reviews were published (or none came)


class ReviewReport(TenantOwned, table=True):
    __tablename__ = "review_report"

    id: int | None = Field(default=None, primary_key=True)
    review_id: int = Field(foreign_key="review.id", index=True)
    reporter_id: int = Field(foreign_key="user_account.id")
    reason: str = Field(max_length=REASON_MAX)
    created_at: datetime = Field(default_factory=utcnow)
    resolved_at: datetime | None = None  # the admin hid or restored the review since


class ReviewModeration(TenantOwned, table=True):
    """Audit trail: one row per hide or restore."""

    __tablename__ = "review_moderation"

    id: int | None = Field(default=None, primary_key=True)
    review_id: int = Field(foreign_key="review.id", index=True)
    action: str = Field(max_length=16)  # hide | restore
    reason: str = Field(max_length=REASON_MAX)
    admin_id: int = Field(foreign_key="user_account.id")
    at: datetime = Field(default_factory=utcnow)


class RatingAggregate(TenantOwned, table=True):
    """What a person's visible (published, not hidden) reviews add up to; see aggregates.py."""

    __tablename__ = "rating_aggregate"

    subject_id: int = Field(foreign_key="user_account.id", primary_key=True)
    review_count: int = 0
    stars_sum: int = 0
    stars_5: int = 0
    stars_4: int = 0
    stars_3: int = 0
    stars_2: int = 0
    stars_1: int = 0
    quality_sum: int = 0
    quality_count: int = 0
    communication_sum: int = 0
    communication_count: int = 0
    punctuality_sum: int = 0
    punctuality_count: int = 0
    value_sum: int = 0
    value_count: int = 0
    score: float = 0.0
    updated_at: datetime = Field(default_factory=utcnow)


# ---------------------------------------------------------------------------------------------------- input shapes

STARS = "Choose between 1 and 5 stars"


def _optional_rating(value, *, field: str):
    """A sub-rating may be left out ("" or None); given, it is 1..5 like the stars."""
    if value is None or str(value).strip() == "":
        return None
    message = f"Rate {field} from 1 to 5 stars"
    return whole_number(value, 1, 5, not_a_number=message, out_of_range=message)


def _rating(field: str) -> BeforeValidator:
    return BeforeValidator(partial(_optional_rating, field=field))


class ReviewInput(BaseModel):
    """What a party submits. Form fields arrive as text; missing stars or text get the same message as bad ones."""

    stars: Annotated[int, whole(1, 5, not_a_number=STARS, out_of_range=STARS)] = PField(default="",
                                                                                       validate_default=True)
    text: Annotated[str, paragraphs("review", TEXT_MAX, min_len=1, too_short="Write a few words about how it went")
                    ] = PField(default="", validate_default=True)
    quality: Annotated[int | None, _rating("quality")] = None
    communication: Annotated[int | None, _rating("communication")] = None
    punctuality: Annotated[int | None, _rating("punctuality")] = None
    value: Annotated[int | None, _rating("value")] = None
