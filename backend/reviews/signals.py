"""What reviews know about a professional, for their search document (matching's `ProSignals` port).

Read from the stored aggregates (aggregates.refresh keeps them equal to a recount of the visible reviews in the
same transaction as any change), one query for any number of pros. A pro without reviews gets the Bayesian prior
as their score (rules.bayesian_score(0, 0) = PRIOR_MEAN), so ranking treats "no reviews" the same everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session, select

from backend.reviews.models import RatingAggregate
from backend.reviews.rules import bayesian_score


class RatingSignals:
    def pro_signals(self, session: Session, pro_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        ids = sorted(set(pro_ids))
        if not ids:
            return {}
        stored = {row.subject_id: row for row in session.exec(
            select(RatingAggregate).where(RatingAggregate.subject_id.in_(ids))).all()}
        out: dict[int, dict[str, Any]] = {}
        for pro_id in ids:
            row = stored.get(pro_id)
            count = row.review_count if row else 0
            stars = row.stars_sum if row else 0
            out[pro_id] = {
                "rating_count": count,
                "rating_average": round(stars / count, 2) if count else 0.0,
                "rating_score": round(bayesian_score(count, stars), 4),
            }
        return out
