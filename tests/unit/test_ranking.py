"""ranking.py: the decay curve, each signal's points, the best match total and the line that explains it."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from backend.matching import ranking
from backend.matching.ports import ProDocument
from backend.matching.ranking import WEIGHTS, best_match_score, gauss, signal_points, why

NOW = datetime(2026, 3, 2, 12, 0)


def pro(**fields) -> ProDocument:
    values = dict(
        tenant_id=1, pro_id=1, name="Ada", headline="Plumber", bio="", skills=[], category_ids=[1],
        category_names=["Plumbing"], city="Berlin, Germany", latitude=52.52, longitude=13.405, radius_km=25,
        hourly_rate_minor=4000, currency="EUR", verified=False, avatar_url="", rating_average=0.0, rating_count=0,
        rating_score=3.5, completed_jobs=0, response_rate=None, median_quote_minutes=None, available_days=[],
        blocked_dates=[], last_active=NOW)
    values.update(fields)
    return ProDocument(**values)


def test_gauss_is_elasticsearch_decay():
    assert gauss(0, scale=10) == 1.0
    assert gauss(10, scale=10) == pytest.approx(0.5)  # `decay` at the scale
    assert gauss(20, scale=10) == pytest.approx(0.0625)  # 0.5 ** 4: a Gaussian, not a straight line
    assert gauss(-10, scale=10) == pytest.approx(0.5)  # symmetric
    assert gauss(5, scale=10, offset=7) == 1.0  # full within the offset
    assert gauss(37, scale=30, offset=7) == pytest.approx(0.5)
    assert gauss(10, scale=10, decay=0.25) == pytest.approx(0.25)


def test_each_signal_s_points():
    points = signal_points(pro(), None, NOW)
    assert points == pytest.approx({"rating": WEIGHTS.rating * 3.5 / 5, "response": WEIGHTS.response * 0.5,
                                    "verified": 0.0, "recency": WEIGHTS.recency})
    assert "distance" not in points  # no place asked: distance gives nothing to anyone

    strong = signal_points(pro(rating_score=4.8, response_rate=1.0, verified=True,
                               last_active=NOW - timedelta(days=7 + 30)), 10.0, NOW)
    assert strong == pytest.approx({"rating": WEIGHTS.rating * 4.8 / 5, "response": WEIGHTS.response,
                                    "verified": WEIGHTS.verified, "recency": WEIGHTS.recency / 2,
                                    "distance": WEIGHTS.distance / 2})
    assert signal_points(pro(response_rate=0.0), None, NOW)["response"] == 0.0  # answered no lead: nothing
    # Active "in the future" (clocks): as if active now.
    assert signal_points(pro(last_active=NOW + timedelta(days=3)), None, NOW)["recency"] == WEIGHTS.recency


def test_best_match_adds_text_and_signals():
    doc = pro(rating_score=4.2, response_rate=0.8, verified=True, last_active=NOW - timedelta(days=60))
    expected = (WEIGHTS.text * 2.5 + WEIGHTS.distance * gauss(4, scale=ranking.DISTANCE_HALF_KM)
                + WEIGHTS.rating * 4.2 / 5 + WEIGHTS.response * 0.8 + WEIGHTS.verified
                + WEIGHTS.recency * gauss(60, scale=ranking.RECENCY_HALF_DAYS, offset=ranking.RECENCY_OFFSET_DAYS))
    assert best_match_score(2.5, doc, 4.0, NOW) == pytest.approx(expected)


def test_a_strong_rating_weighs_like_a_good_text_match():
    # The module's promise: many great reviews are worth points on the scale of BM25 for a headline word (~2-4).
    loved = best_match_score(1.0, pro(rating_score=4.8), None, NOW)
    unrated = best_match_score(1.0, pro(), None, NOW)
    assert 0.5 < loved - unrated < 1.0
    near, far = best_match_score(1.0, pro(), 1.0, NOW), best_match_score(1.0, pro(), 30.0, NOW)
    assert 1.5 < near - far < WEIGHTS.distance


@pytest.mark.parametrize(("fields", "distance", "line"), [
    (dict(rating_average=4.8, rating_count=37, median_quote_minutes=120), 3.2,
     "4.8★ from 37 reviews · 3 km away · usually quotes within 2 h"),
    (dict(rating_average=5.0, rating_count=1), 0.4, "5.0★ from 1 review · less than 1 km away"),
    (dict(), None, "New on the marketplace"),
    (dict(verified=True), 12.6, "New on the marketplace · 13 km away · verified"),
    (dict(completed_jobs=1, verified=True), None, "1 job done · verified"),
    (dict(completed_jobs=14, median_quote_minutes=25), None, "usually quotes within 25 min · 14 jobs done"),
    (dict(rating_average=4.1, rating_count=9, median_quote_minutes=4 * 24 * 60, completed_jobs=20, verified=True),
     7.0, "4.1★ from 9 reviews · 7 km away · usually quotes within 4 days"),
    (dict(median_quote_minutes=0, completed_jobs=2), None, "usually quotes within 1 min · 2 jobs done"),
])
def test_why_line(fields, distance, line):
    assert why(pro(**fields), distance) == line
