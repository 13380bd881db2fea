"""A person's rating: counted from their visible reviews (`tally`), stored per person (`refresh`), read as a summary.

Consistent by construction: whatever changes which reviews are visible (publication, hiding, restoring) calls
`refresh` for the reviewed person in the same transaction, and `refresh` does not add or subtract: it recounts the
visible reviews with one SUM/COUNT query and overwrites the stored row. It first locks that row, so two
publications for the same person serialise and the second one recounts after the first committed (on PostgreSQL
each statement of a READ COMMITTED transaction sees what committed before it). Rows are locked in subject order.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, select

from backend.db import utcnow
from backend.reviews.models import RatingAggregate, Review
from backend.reviews.rules import PRIOR_MEAN, SUBRATINGS, ReviewStatus, bayesian_score


@dataclass(frozen=True)
class RatingSummary:
    subject_id: int
    count: int
    average: float  # 0.0 when count == 0
    average_text: str  # "4.8" ("" when no reviews)
    distribution: list[int]  # counts for 5,4,3,2,1 stars (index 0 = 5 stars)
    quality: float  # sub-rating averages (0.0 when none)
    communication: float
    punctuality: float
    value: float
    score: float  # Bayesian/shrunk score used for ranking (rules.bayesian_score)


@dataclass(frozen=True)
class RatingBadge:
    subject_id: int
    count: int
    average_text: str  # "" when no reviews


def visible(query):
    """Only what the public sees: published and not hidden."""
    return query.where(Review.status == ReviewStatus.PUBLISHED, Review.hidden == sa.false())


def tally(session: Session, subject_id: int) -> RatingAggregate:
    """The person's aggregate, counted now from their visible reviews (not stored)."""
    columns = [sa.func.count(Review.id), sa.func.coalesce(sa.func.sum(Review.stars), 0)]
    columns += [sa.func.coalesce(sa.func.sum(sa.case((Review.stars == s, 1), else_=0)), 0) for s in (5, 4, 3, 2, 1)]
    for name in SUBRATINGS:
        column = getattr(Review, name)
        columns += [sa.func.coalesce(sa.func.sum(column), 0), sa.func.count(column)]
    row = session.exec(visible(select(*columns).where(Review.subject_id == subject_id))).one()
    count, stars_sum, s5, s4, s3, s2, s1, *subs = (int(v) for v in row)
    sums = {}
    for i, name in enumerate(SUBRATINGS):
        sums[f"{name}_sum"], sums[f"{name}_count"] = subs[2 * i], subs[2 * i + 1]
    return RatingAggregate(subject_id=subject_id, review_count=count, stars_sum=stars_sum, stars_5=s5, stars_4=s4,
                           stars_3=s3, stars_2=s2, stars_1=s1, score=bayesian_score(count, stars_sum), **sums)


COUNTED = ("review_count", "stars_sum", "stars_5", "stars_4", "stars_3", "stars_2", "stars_1", "score",
           *(f"{name}_{part}" for name in SUBRATINGS for part in ("sum", "count")))


def refresh(session: Session, subject_ids) -> None:
    """Recount and store the aggregates of these people, in the caller's transaction (see the module's note)."""
    for subject_id in sorted(set(subject_ids)):
        insert = (postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert)
        session.execute(insert(RatingAggregate).values(tenant_id=session.info["tenant_id"], subject_id=subject_id)
                        .on_conflict_do_nothing(index_elements=["subject_id"]))
        stored = session.exec(select(RatingAggregate).where(RatingAggregate.subject_id == subject_id)
                              .with_for_update()).one()
        counted = tally(session, subject_id)
        for name in COUNTED:
            setattr(stored, name, getattr(counted, name))
        stored.updated_at = utcnow()
    session.flush()


def summary_of(subject_id: int, row: RatingAggregate | None) -> RatingSummary:
    if row is None or row.review_count == 0:
        return RatingSummary(subject_id=subject_id, count=0, average=0.0, average_text="", distribution=[0] * 5,
                             quality=0.0, communication=0.0, punctuality=0.0, value=0.0, score=PRIOR_MEAN)
    average = row.stars_sum / row.review_count
    subs = {name: (getattr(row, f"{name}_sum") / n if (n := getattr(row, f"{name}_count")) else 0.0)
            for name in SUBRATINGS}
    return RatingSummary(subject_id=subject_id, count=row.review_count, average=average,
                         average_text=f"{average:.1f}",
                         distribution=[row.stars_5, row.stars_4, row.stars_3, row.stars_2, row.stars_1],
                         score=row.score, **subs)


def badge_of(subject_id: int, row: RatingAggregate | None) -> RatingBadge:
    count = row.review_count if row else 0
    return RatingBadge(subject_id=subject_id, count=count,
                       average_text=f"{row.stars_sum / count:.1f}" if count else "")
