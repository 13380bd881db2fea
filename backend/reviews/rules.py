"""The rules of reviewing, as data and small functions: the window, who reviews whom, the blind rule, the score.

- Who: the client and the professional of an order, each once, of the other (orders' facts say whether the order
  ended in a way that can be reviewed: `OrderOutcome.reviewable`).
- When: from the order's end until `closes_at` (the tenant's `review_window_days` later). That instant is both the
  deadline the pages show and the one the service and its timer enforce.
- Blind: a submitted review stays with its author (who may edit or withdraw it) until the other party has
  submitted too, or the window closes; then whatever exists is published at once, in one transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from backend.identity import Caller, Role

REMIND_BEFORE = timedelta(days=2)  # the one reminder goes out this long before the window closes

TEXT_MAX = 2000
REPLY_MAX = 1000
REASON_MIN, REASON_MAX = 3, 500
PER_PAGE_MAX = 50
SORTS = ("newest", "highest", "lowest")
SUBRATINGS = ("quality", "communication", "punctuality", "value")  # only a client's review of a professional

# The ranking score is a Bayesian average: every professional starts as if they had PRIOR_REVIEWS reviews at
# PRIOR_MEAN stars, and their own reviews outweigh that prior as they add up:
#     score = (PRIOR_REVIEWS * PRIOR_MEAN + sum of stars) / (PRIOR_REVIEWS + count)
# So one 5-star review scores (5 * 3.5 + 5) / 6 = 3.75, below 80 reviews averaging 4.9 (4.82): a single lucky
# review does not outrank a long record. The constants are fixed (not this marketplace's mean), so a stored score
# never goes stale when other people's reviews change, and a recomputation always agrees with it.
PRIOR_REVIEWS = 5
PRIOR_MEAN = 3.5


class Party(StrEnum):
    CLIENT = "client"
    PROFESSIONAL = "professional"


class ReviewStatus(StrEnum):
    SUBMITTED = "submitted"  # with its author only: waiting for the other party or the window's close
    PUBLISHED = "published"


def closes_at(ended_at: datetime, window_days: int) -> datetime:
    """When the review window of an order that ended at `ended_at` closes."""
    return ended_at + timedelta(days=window_days)


def party_of(caller: Caller, client_id: int, pro_id: int) -> Party | None:
    """The caller as a party to the order (None: not one; an admin moderates but never reviews)."""
    if caller.role == Role.CLIENT and caller.id == client_id:
        return Party.CLIENT
    if caller.role == Role.PROFESSIONAL and caller.id == pro_id:
        return Party.PROFESSIONAL
    return None


def bayesian_score(count: int, stars_sum: int) -> float:
    """See PRIOR_REVIEWS: the shrunk average used for ranking (PRIOR_MEAN with no reviews)."""
    return (PRIOR_REVIEWS * PRIOR_MEAN + stars_sum) / (PRIOR_REVIEWS + count)


def day(at: datetime | None) -> str:
    """A date as the pages print it: "Dec 14, 2026" ("" for none)."""
    return at.strftime("%b %d, %Y") if at else ""
