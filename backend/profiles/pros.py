"""Professional profiles: what a pro offers, where, when, at what rate, and their portfolio.

ProService is the professional's own editor. Who may appear publicly (an active professional) is known above
this package: the directory (backend/matching) checks that and builds its views with `pro_view`."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa
from sqlmodel import Session, select

from backend.identity import Caller, Role, TenantPublic
from backend.config import Settings
from backend.db import Database, utcnow
from backend.errors import NotFound, PermissionDenied, ValidationFailed
from backend.money import format_money, parse_amount
from backend.catalog.models import Category
from backend.places import UNKNOWN_PLACE, Gazetteer
from backend.profiles.models import WEEKDAYS, PortfolioImage, ProCategory, ProProfile, ProProfileUpdate, Profile
from backend.profiles.ports import SearchIndexJobs
from backend.storage.images import load_image, thumbnail
from backend.storage.ports import ObjectStore
from backend.validation import parse_input

MAX_PORTFOLIO = 12


@dataclass(frozen=True)
class PortfolioItem:
    id: int
    url: str
    thumb_url: str
    caption: str


@dataclass(frozen=True)
class ProView:
    user_id: int
    full_name: str
    avatar_url: str
    headline: str
    bio: str
    skills: list[str]
    city: str
    radius_km: int
    hourly_rate_minor: int
    hourly_rate: str  # formatted
    hourly_rate_input: str  # for the editor
    currency: str
    verified: bool
    phone_verified: bool
    categories: list[str]
    category_ids: list[int]
    availability: dict[str, list[str]]
    blocked_dates: list[str]
    portfolio: list[PortfolioItem] = field(default_factory=list)


def ensure_pro_profile(session: Session, user_id: int, currency: str) -> ProProfile:
    """The professional's profile row, created empty on first use."""
    pro = session.get(ProProfile, user_id)
    if pro is None:
        pro = ProProfile(user_id=user_id, currency=currency)
        session.add(pro)
        session.flush()
    return pro


def pro_view(session: Session, store: ObjectStore, pro: ProProfile) -> ProView:
    """What the editor, the public page and the directory show of one professional."""
    profile = session.get(Profile, pro.user_id)
    cats = session.exec(select(Category).join(ProCategory, ProCategory.category_id == Category.id)
                        .where(ProCategory.user_id == pro.user_id).order_by(Category.sort)).all()
    images = session.exec(select(PortfolioImage).where(PortfolioImage.user_id == pro.user_id)
                          .order_by(PortfolioImage.created_at, PortfolioImage.id)).all()
    return ProView(
        user_id=pro.user_id, full_name=profile.full_name if profile else "",
        avatar_url=store.url(profile.avatar_key) if profile and profile.avatar_key else "",
        headline=pro.headline, bio=pro.bio, skills=list(pro.skills), city=pro.city, radius_km=pro.radius_km,
        hourly_rate_minor=pro.hourly_rate_minor, hourly_rate=format_money(pro.hourly_rate_minor, pro.currency),
        hourly_rate_input=f"{pro.hourly_rate_minor / 100:.2f}", currency=pro.currency, verified=pro.verified,
        phone_verified=pro.phone_verified,
        categories=[c.name for c in cats], category_ids=[c.id for c in cats],
        availability={d: pro.availability[d] for d in WEEKDAYS if d in pro.availability},
        blocked_dates=list(pro.blocked_dates),
        portfolio=[PortfolioItem(id=i.id, url=store.url(i.key), thumb_url=store.url(i.thumb_key),
                                 caption=i.caption) for i in images],
    )


class ProService:
    """A professional's own profile: read, edit, portfolio; and the availability check bookings use."""

    def __init__(self, db: Database, settings: Settings, store: ObjectStore, *, jobs: SearchIndexJobs,
                 places: Gazetteer):
        self.db = db
        self.settings = settings
        self.store = store
        self.places = places  # the city typed becomes one known place: its label and coordinates
        self.jobs = jobs  # everything the editor saves is in the pro's search document

    @staticmethod
    def _require_pro(actor: Caller | None) -> Caller:
        if actor is None or actor.role != Role.PROFESSIONAL:
            raise PermissionDenied("Only professionals have a professional profile.")
        return actor

    def _own_view(self, session: Session, actor: Caller, currency: str) -> ProView:
        return pro_view(session, self.store, ensure_pro_profile(session, actor.id, currency))

    def get_own(self, tenant: TenantPublic, actor: Caller) -> ProView:
        actor = self._require_pro(actor)
        with self.db.tenant_session(tenant.id) as session:
            return self._own_view(session, actor, tenant.currency)

    def update_own(self, tenant: TenantPublic, actor: Caller, data: dict) -> ProView:
        actor = self._require_pro(actor)
        form = parse_input(ProProfileUpdate, data)
        try:
            rate = parse_amount(form.hourly_rate, tenant.currency, field_name="hourly rate", allow_zero=True,
                                maximum_major=10_000)
        except ValueError as exc:
            raise ValidationFailed({"hourly_rate": str(exc)}) from None
        place = self.places.resolve(form.city)
        if place is None:
            raise ValidationFailed({"city": UNKNOWN_PLACE})
        with self.db.tenant_session(tenant.id) as session:
            valid_ids = set(session.exec(select(Category.id).where(Category.active == sa.true())).all())
            if not form.category_ids:
                raise ValidationFailed({"category_ids": "Choose at least one category"})
            if not set(form.category_ids) <= valid_ids:
                raise ValidationFailed({"category_ids": "Choose categories from the list"})
            pro = ensure_pro_profile(session, actor.id, tenant.currency)
            pro.headline, pro.bio, pro.city, pro.radius_km = form.headline, form.bio, place.label, form.radius_km
            pro.skills = [s for s in form.skills.split(", ") if s]
            pro.latitude, pro.longitude = place.latitude, place.longitude
            pro.hourly_rate_minor, pro.currency = rate, tenant.currency
            pro.availability = form.availability
            pro.blocked_dates = [d.isoformat() for d in form.blocked_dates]
            pro.updated_at = utcnow()
            session.exec(sa.delete(ProCategory).where(ProCategory.user_id == actor.id))
            for category_id in sorted(set(form.category_ids)):
                session.add(ProCategory(user_id=actor.id, category_id=category_id))
            session.flush()
            view = pro_view(session, self.store, pro)
        self.jobs.index_pro(tenant.id, actor.id)
        return view

    def add_portfolio_image(self, tenant: TenantPublic, actor: Caller, data: bytes, caption: str = "") -> ProView:
        actor = self._require_pro(actor)
        if actor.tenant_id != tenant.id:
            raise PermissionDenied("Only professionals have a professional profile.")
        caption = " ".join(caption.split())[:120]

        def check_room(session) -> None:
            count = session.exec(select(sa.func.count()).select_from(PortfolioImage)
                                 .where(PortfolioImage.user_id == actor.id)).one()
            if count >= MAX_PORTFOLIO:
                raise ValidationFailed({"portfolio": f"A portfolio holds at most {MAX_PORTFOLIO} images"})

        with self.db.tenant_session(tenant.id) as session:
            check_room(session)  # before decoding anything; checked again where the row is added
        image = load_image(data, field="portfolio", max_bytes=self.settings.max_avatar_bytes)
        with self.db.tenant_session(tenant.id) as session:
            check_room(session)
            stem = f"t{tenant.id}/portfolio/u{actor.id}-{secrets.token_hex(6)}"
            self.store.put(f"{stem}.jpg", thumbnail(image, 1600), "image/jpeg")
            self.store.put(f"{stem}-thumb.jpg", thumbnail(image, 400, square=True), "image/jpeg")
            session.add(PortfolioImage(user_id=actor.id, key=f"{stem}.jpg", thumb_key=f"{stem}-thumb.jpg",
                                       caption=caption))
            session.flush()
            return self._own_view(session, actor, tenant.currency)

    def remove_portfolio_image(self, tenant: TenantPublic, actor: Caller, image_id: int) -> ProView:
        actor = self._require_pro(actor)
        with self.db.tenant_session(tenant.id) as session:
            image = session.get(PortfolioImage, image_id)
            if image is None or image.user_id != actor.id:
                raise NotFound("No such image in your portfolio.")
            session.delete(image)
            session.flush()
            keys = (image.key, image.thumb_key)
            view = self._own_view(session, actor, tenant.currency)
        for key in keys:
            self.store.delete(key)
        return view

    def available_on(self, tenant: TenantPublic, pro_id: int, day: date) -> bool:
        with self.db.tenant_session(tenant.id) as session:
            pro = session.get(ProProfile, pro_id)
            if pro is None:
                return False
            return WEEKDAYS[day.weekday()] in pro.availability and day.isoformat() not in pro.blocked_dates

