"""What the review pages show: frozen dataclasses (Reflex vars can hold them), dates already formatted."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session, select

from backend.profiles.models import Profile
from backend.reviews.aggregates import RatingBadge, RatingSummary
from backend.reviews.models import Review
from backend.reviews.rules import ReviewStatus, day

__all__ = ["MyReviews", "OrderReviews", "PendingReview", "RatingBadge", "RatingSummary", "ReportedReview",
           "ReviewPage", "ReviewView", "names_of", "review_view"]


@dataclass(frozen=True)
class ReviewView:
    id: int
    order_id: int
    author_id: int
    author_name: str
    author_role: str  # "client" | "professional"
    subject_id: int
    subject_name: str
    stars: int  # 1..5
    text: str
    quality: int | None  # sub-ratings: only on a client's review of a professional, else None
    communication: int | None
    punctuality: int | None
    value: int | None
    status: str  # "submitted" (waiting for the other side / the window) | "published"
    submitted_at: str
    published_at: str  # "" until published
    reply: str  # the reviewee's public reply ("" none)
    replied_at: str
    hidden: bool  # hidden by the admin (only its author, its subject and admins see hidden ones)
    hidden_reason: str


@dataclass(frozen=True)
class OrderReviews:
    """The order page's "Leave a review" card, as one viewer sees it."""

    order_id: int
    can_review: bool  # a party, the order is reviewable, the window is open and theirs is not published
    deadline: str  # "Dec 14, 2026" when the window closes ("" if not reviewable)
    deadline_iso: str  # the same instant, ISO 8601 (what the timer enforces)
    blind_note: str  # what happens next
    mine: ReviewView | None  # the caller's own review (any status)
    theirs: ReviewView | None  # the other party's review: only once published
    other_name: str
    my_role: str  # "client" | "professional" ("" for an admin viewer)
    with_subratings: bool  # the caller is the client (reviews the professional, with sub-ratings)
    reviewable: bool  # the order is completed (or resolved with a release or split)


@dataclass(frozen=True)
class ReviewPage:
    reviews: list[ReviewView]
    page: int
    pages: int
    total: int
    sort: str  # "newest" | "highest" | "lowest"


@dataclass(frozen=True)
class PendingReview:
    """An order the caller can still review."""

    order_id: int
    title: str
    other_name: str
    deadline: str


@dataclass(frozen=True)
class MyReviews:
    pending: list[PendingReview] = field(default_factory=list)
    given: list[ReviewView] = field(default_factory=list)
    received: list[ReviewView] = field(default_factory=list)  # published ones (the caller's hidden ones, marked)


@dataclass(frozen=True)
class ReportedReview:
    review: ReviewView
    reports: int
    reasons: list[str]
    last_reported_at: str
    open_reports: int = 0  # not yet answered by a hide or a restore
    open_since: str = ""  # the oldest open report's time, ISO 8601 UTC (ReviewService.open_reports fills it)


def names_of(session: Session, user_ids) -> dict[int, str]:
    ids = set(user_ids)
    if not ids:
        return {}
    rows = session.exec(select(Profile.user_id, Profile.full_name).where(Profile.user_id.in_(ids))).all()
    found = dict(rows)
    return {i: found.get(i) or f"User {i}" for i in ids}


def review_view(row: Review, names: dict[int, str]) -> ReviewView:
    return ReviewView(
        id=row.id, order_id=row.order_id, author_id=row.author_id, author_name=names.get(row.author_id, ""),
        author_role=row.author_role, subject_id=row.subject_id, subject_name=names.get(row.subject_id, ""),
        stars=row.stars, text=row.text, quality=row.quality, communication=row.communication,
        punctuality=row.punctuality, value=row.value, status=row.status, submitted_at=day(row.submitted_at),
        published_at=day(row.published_at) if row.status == ReviewStatus.PUBLISHED else "", reply=row.reply,
        replied_at=day(row.replied_at), hidden=row.hidden, hidden_reason=row.hidden_reason)
