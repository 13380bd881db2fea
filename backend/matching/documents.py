"""Professionals' search documents, built from the database.

A professional has a document when they can be found: an active account with the professional role and a verified
email, a headline and at least one category. Everyone else has none (`index_pro` removes it), so a suspended or
unverified pro never appears in a search whatever the query.

Built in batches: one query per table for any number of pros (the reindex of a tenant builds a few hundred at a
time), never one per pro. What services above matching know (ratings, jobs, responsiveness) comes in through the
`ProSignals` bootstrap passes; this module reads only matching's own and lower packages' tables.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, select

from backend.accounts.models import User, UserStatus
from backend.catalog.models import Category
from backend.geo import distance_km, locality_key
from backend.identity import Role
from backend.matching.ports import ProDocument, ProSignals, fingerprinted
from backend.profiles.models import WEEKDAYS, ProCategory, ProProfile, Profile
from backend.storage.ports import ObjectStore

# The reviews' Bayesian prior (reviews.rules.PRIOR_MEAN), for a document built without a rating source: reviews sit
# above matching, and their RatingSignals gives every pro asked a score (the prior itself when unreviewed).
UNRATED_SCORE = 3.5


def serves(pro: Any, latitude: float | None, longitude: float | None, city: str) -> bool:
    """Whether a place lies in a pro's service area (`pro`: anything with latitude, longitude, radius_km, city):
    within their radius when both have coordinates, else the same city. The leads inbox's rule, so the requests a
    pro sees as leads and the ones counted in their response rate (orders/signals.py) are the same."""
    if pro.latitude is not None and pro.longitude is not None and latitude is not None and longitude is not None:
        return distance_km((pro.latitude, pro.longitude), (latitude, longitude)) <= pro.radius_km
    return bool(city.strip()) and " ".join(pro.city.split()).casefold() == " ".join(city.split()).casefold()


def reached_pro_ids(session: Session, category_id: int, latitude: float | None, longitude: float | None,
                    city: str) -> list[int]:
    """The professionals (with or without a document) whose leads a request in this category and place is."""
    rows = session.exec(select(ProProfile.user_id, ProProfile.latitude, ProProfile.longitude, ProProfile.radius_km,
                               ProProfile.city)
                        .join(ProCategory, ProCategory.user_id == ProProfile.user_id)
                        .where(ProCategory.category_id == category_id)).all()
    return [row.user_id for row in rows if serves(row, latitude, longitude, city)]


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _day(moment: datetime) -> datetime:
    """Last active (naive UTC, as documents hold time), to the day. Recency is scored in days (ranking.RECENCY_OFFSET_DAYS), and a coarser value means
    a login does not make the document stale: only the first login of a day changes it (accounts then schedules
    `index_pro`)."""
    return _naive_utc(moment).replace(hour=0, minute=0, second=0, microsecond=0)


def eligible_pro_ids(session: Session, pro_ids: Sequence[int] | None = None, *, by_place: bool = False) -> list[int]:
    """The professionals (of the session's tenant) who should have a document; all of them when `pro_ids` is None.
    In id order, or with `by_place` neighbours together (backend.geo.locality_key): written in that order, a
    place's pros sit in a few stretches of an index that keeps write order (tantivy), and a search in a place
    reads those stretches, not the whole index (bench search: keyword + place)."""
    query = (select(ProProfile.user_id, ProProfile.latitude, ProProfile.longitude)
             .join(User, User.id == ProProfile.user_id)
             .where(User.role == Role.PROFESSIONAL, User.status == UserStatus.ACTIVE,
                    User.email_verified_at.is_not(None), ProProfile.headline != "")
             .where(ProProfile.user_id.in_(select(ProCategory.user_id)))
             .order_by(ProProfile.user_id))
    if pro_ids is not None:
        query = query.where(ProProfile.user_id.in_(list(pro_ids)))
    rows = list(session.exec(query).all())
    if by_place:
        rows.sort(key=lambda row: locality_key(row[1], row[2]))
    return [row[0] for row in rows]


def build_pro_documents(session: Session, tenant_id: int, pro_ids: Sequence[int], *, store: ObjectStore,
                        signals: Sequence[ProSignals]) -> dict[int, ProDocument]:
    """Documents of those of `pro_ids` who are eligible (the others are absent from the result), fingerprinted."""
    ids = eligible_pro_ids(session, pro_ids)
    if not ids:
        return {}
    users = {u.id: u for u in session.exec(select(User).where(User.id.in_(ids))).all()}
    pros = {p.user_id: p for p in session.exec(select(ProProfile).where(ProProfile.user_id.in_(ids))).all()}
    profiles = {p.user_id: p for p in session.exec(select(Profile).where(Profile.user_id.in_(ids))).all()}
    categories: dict[int, list[Category]] = defaultdict(list)
    rows = session.exec(select(ProCategory.user_id, Category).join(Category, Category.id == ProCategory.category_id)
                        .where(ProCategory.user_id.in_(ids)).order_by(Category.sort, Category.id)).all()
    for user_id, category in rows:
        categories[user_id].append(category)
    extra: dict[int, dict[str, Any]] = defaultdict(dict)
    for source in signals:
        for pro_id, values in source.pro_signals(session, ids).items():
            extra[pro_id].update(values)
    docs = {}
    for pro_id in ids:
        user, pro, profile, more = users[pro_id], pros[pro_id], profiles.get(pro_id), extra.get(pro_id, {})
        moments = [_naive_utc(m) for m in (user.last_login_at, pro.updated_at, more.get("last_quote_at"),
                                           user.created_at) if m]
        docs[pro_id] = fingerprinted(ProDocument(
            tenant_id=tenant_id, pro_id=pro_id, name=profile.full_name if profile else "",
            headline=pro.headline, bio=pro.bio, skills=list(pro.skills),
            category_ids=[c.id for c in categories[pro_id]], category_names=[c.name for c in categories[pro_id]],
            city=pro.city, latitude=pro.latitude, longitude=pro.longitude, radius_km=pro.radius_km,
            hourly_rate_minor=pro.hourly_rate_minor, currency=pro.currency, verified=pro.verified,
            avatar_url=store.url(profile.avatar_key) if profile and profile.avatar_key else "",
            rating_average=float(more.get("rating_average", 0.0)), rating_count=int(more.get("rating_count", 0)),
            rating_score=float(more.get("rating_score", UNRATED_SCORE)),
            completed_jobs=int(more.get("completed_jobs", 0)), response_rate=more.get("response_rate"),
            median_quote_minutes=more.get("median_quote_minutes"),
            available_days=[d for d in WEEKDAYS if pro.availability.get(d)],
            blocked_dates=sorted(pro.blocked_dates), last_active=_day(max(moments))))
    return docs
