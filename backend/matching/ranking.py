"""Best match: how the signals add up, in one place, and the line that tells a user why a pro is where they are.

    best match = text relevance (BM25 over name, headline, skills, categories, bio; 1.0 when browsing)
               + WEIGHTS.distance * gauss(distance from the place; half at DISTANCE_HALF_KM)
               + WEIGHTS.rating   * shrunk rating / 5 (reviews.rules.bayesian_score: few reviews count little)
               + WEIGHTS.response * response rate (NEUTRAL_RESPONSE for a pro without leads yet)
               + WEIGHTS.verified * (verified by the marketplace)
               + WEIGHTS.recency  * gauss(days since last active; full for RECENCY_OFFSET_DAYS, half at +HALF)

Every term is a function Elasticsearch's `function_score` has (gauss decay on a geo_point and a date,
field_value_factor, a filter with a weight), summed (`score_mode: sum`) onto the query score (`boost_mode: sum`),
so the Elasticsearch adapter states the same formula as a query and the embedded adapter computes it here:
both rank alike. The weights put strong signals (4.9 from 80 reviews vs no reviews: ~0.7 points; 1 km away vs
30 km: ~2 points) on the scale of a good text match (a word in the headline: ~2-4 points of BM25).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from backend.matching.ports import ProDocument


@dataclass(frozen=True)
class Weights:
    text: float = 1.0
    distance: float = 2.0
    rating: float = 2.5
    response: float = 1.0
    verified: float = 0.75
    recency: float = 0.75


WEIGHTS = Weights()
DISTANCE_HALF_KM = 10.0  # a pro 10 km away gets half the distance points
RECENCY_OFFSET_DAYS = 7  # active within a week: full recency points
RECENCY_HALF_DAYS = 30  # a month later: half
NEUTRAL_RESPONSE = 0.5  # a pro without leads yet: neither rewarded nor punished much
DECAY = 0.5


def gauss(value: float, *, scale: float, offset: float = 0.0, decay: float = DECAY) -> float:
    """Elasticsearch's gauss decay: 1 within `offset`, `decay` at `offset + scale`."""
    sigma_squared = -(scale ** 2) / (2 * math.log(decay))
    return math.exp(-(max(0.0, abs(value) - offset) ** 2) / (2 * sigma_squared))


def days_since(then: datetime, now: datetime) -> float:
    return max(0.0, (now - then).total_seconds() / 86400)


class Ranked(Protocol):
    """What best match reads of a pro: a ProDocument, or the few values an engine holds per candidate (the
    embedded engine scores thousands of candidates from its fast fields without building documents)."""

    @property
    def rating_score(self) -> float: ...

    @property
    def response_rate(self) -> float | None: ...

    @property
    def verified(self) -> bool: ...

    @property
    def last_active(self) -> datetime: ...


def signal_points(doc: Ranked, distance_km: float | None, now: datetime) -> dict[str, float]:
    """Each signal's contribution to best match (text excluded), by name."""
    response = NEUTRAL_RESPONSE if doc.response_rate is None else doc.response_rate
    points = {
        "rating": WEIGHTS.rating * doc.rating_score / 5,
        "response": WEIGHTS.response * response,
        "verified": WEIGHTS.verified if doc.verified else 0.0,
        "recency": WEIGHTS.recency * gauss(days_since(doc.last_active, now), scale=RECENCY_HALF_DAYS,
                                           offset=RECENCY_OFFSET_DAYS),
    }
    if distance_km is not None:
        points["distance"] = WEIGHTS.distance * gauss(distance_km, scale=DISTANCE_HALF_KM)
    return points


def best_match_score(text_score: float, doc: Ranked, distance_km: float | None, now: datetime) -> float:
    return WEIGHTS.text * text_score + sum(signal_points(doc, distance_km, now).values())


def _hours(minutes: int) -> str:
    if minutes < 60:
        return f"{max(1, minutes)} min"
    hours = round(minutes / 60)
    return f"{hours} h" if hours < 48 else f"{round(hours / 24)} days"


def why(doc: ProDocument, distance_km: float | None) -> str:
    """A short line a user understands: "4.8★ from 37 reviews · 3 km away · usually quotes within 2 h"."""
    parts = []
    if doc.rating_count:
        reviews = "review" if doc.rating_count == 1 else "reviews"
        parts.append(f"{doc.rating_average:.1f}★ from {doc.rating_count} {reviews}")
    elif doc.completed_jobs == 0:
        parts.append("New on the marketplace")
    if distance_km is not None:
        parts.append("less than 1 km away" if distance_km < 1 else f"{round(distance_km)} km away")
    if doc.median_quote_minutes is not None:
        parts.append(f"usually quotes within {_hours(doc.median_quote_minutes)}")
    if doc.completed_jobs and len(parts) < 3:
        parts.append(f"{doc.completed_jobs} job{'s' if doc.completed_jobs != 1 else ''} done")
    if doc.verified and len(parts) < 3:
        parts.append("verified")
    return " · ".join(parts[:3])


# ---------------------------------------------------------------------------------------------- leads
# A professional's leads inbox: the requests they were instantly matched to come first, by their match rank
# (backend/orders/quotes.py); the others by lead_quality: close to the pro (relative to how far they travel) and
# fresh (early quotes are the ones clients read) rank higher.

@dataclass(frozen=True)
class LeadWeights:
    matched: float = 3.0  # instant match chose this pro for the request
    distance: float = 2.0  # gauss over the distance, half at half the pro's service radius
    freshness: float = 1.5  # gauss over the request's age: full for FRESH_HOURS, half a LEAD_HALF_HOURS later


LEAD_WEIGHTS = LeadWeights()
FRESH_HOURS = 2.0
LEAD_HALF_HOURS = 48.0
UNKNOWN_DISTANCE = 0.5  # same city without coordinates: neither near nor far


def lead_quality(distance_km: float | None, radius_km: float, age_hours: float, matched: bool) -> float:
    """How good a lead is for one professional: higher is better."""
    if distance_km is None:
        near = UNKNOWN_DISTANCE
    else:
        near = gauss(distance_km, scale=max(1.0, radius_km / 2))
    fresh = gauss(max(0.0, age_hours), scale=LEAD_HALF_HOURS, offset=FRESH_HOURS)
    return LEAD_WEIGHTS.matched * matched + LEAD_WEIGHTS.distance * near + LEAD_WEIGHTS.freshness * fresh
