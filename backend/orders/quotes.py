"""Quoting: a client posts a service request, matching professionals see it as a lead and send quotes, and the
client accepts one (which becomes an order).

Instant match: when a request is posted, the tenant's `instant_match_count` best professionals for it (the matching
service's ranking: its category, its place within their service radius, available on its preferred start) are
recorded as LeadMatch rows and told (LEAD_MATCHED) in the request's own transaction; their leads inbox lists it
first, marked "Matched to you". Every other professional whose leads inbox lists it (its category, their service
area) finds it there; the NEW_LEAD_RECIPIENTS best of them by the same ranking are also told (LEAD_NEW, in-app
unless they opt in), in the same transaction. A quote tells the client (QUOTE_RECEIVED), an accepted quote its
professional (QUOTE_ACCEPTED). Every notification is written by `NotificationService.notify` in the use case's
transaction (each user gets what their preferences say, a retried use case nothing twice) and delivered after
commit. Every change to whether a request is open (posted, closed, expired, a quote accepted) schedules its search
document's rebuild after commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlmodel import Session, select

from backend.identity import Caller, Role, TenantPublic
from backend.accounts.models import User, UserStatus
from backend.config import Settings
from backend.db import Database, utcnow
from backend.errors import Conflict, DomainError, NotFound, PermissionDenied, ValidationFailed
from backend.geo import distance_km
from backend.matching import MatchingService
from backend.matching.documents import serves
from backend.matching.ports import ProHit, RequestQuery
from backend.matching.ranking import lead_quality
from backend.money import format_money, parse_amount
from backend.catalog.models import Category
from backend.notifications.catalogue import Event
from backend.notifications.ports import JobQueue
from backend.notifications.service import NotificationService
from backend.orders.forms import MAX_PHOTOS, MAX_PRICE_MAJOR, QuoteCreate, RequestCreate
from backend.orders.models import (
    LeadDecline, LeadMatch, Order, OrderState, Quote, QuoteStatus, RequestStatus, ServiceRequest,
)
from backend.orders.ports import Conversations
from backend.orders.service import OrderService
from backend.places import UNKNOWN_PLACE, Gazetteer
from backend.profiles.models import WEEKDAYS, ProCategory, ProProfile, Profile
from backend.profiles.ports import SearchIndexJobs
from backend.storage.images import load_image, thumbnail
from backend.storage.ports import ObjectStore, new_key
from backend.validation import parse_input


LEADS_LIMIT = 500  # the newest open requests a leads inbox considers
MATCH_HEADROOM = 5  # matches asked beyond the tenant's count, for hits the database check turns down (stale index)
# LEAD_NEW goes to at most this many professionals per request: the best by the matching ranking after the instant
# matches. A busy category in a city has hundreds of pros, and telling each of them about every request would bury
# their inboxes (and send dozens after one job); the next best hear of it, everyone else still finds it in their
# leads inbox, which lists every lead whatever this cap.
NEW_LEAD_RECIPIENTS = 25
EXCERPT_CHARS = 160  # of a quote's message, in the client's notification


class QuoteJobs(JobQueue, SearchIndexJobs, Protocol):
    """What quoting schedules after commit: notification delivery, and the search documents of the requests and
    pros a use case changed."""


@dataclass(frozen=True)
class QuoteRow:
    id: int
    request_id: int
    request_title: str
    pro_id: int
    pro_name: str
    pro_verified: bool
    pro_avatar_url: str
    price_minor: int
    price: str
    message: str
    duration_hours: int
    valid_until: str
    status: str
    created_at: str
    expired: bool


@dataclass(frozen=True)
class RequestRow:
    id: int
    title: str
    description: str
    category: str
    city: str
    budget: str
    dates: str
    status: str
    created_at: str
    expires_at: str
    quote_count: int
    photo_urls: list[str] = field(default_factory=list)
    client_name: str = ""
    client_id: int = 0  # whose rating a professional sees on the lead
    distance_km: int | None = None
    order_id: int | None = None
    matched_count: int = 0  # professionals instant match sent it to (the client's views)
    match_note: str = ""  # "We sent your request to 5 matching pros", or what happens without matches
    matched: bool = False  # a lead instant match chose this professional for (the professional's views)
    match_why: str = ""  # the ranking's line for them when matched: "3 km away · usually quotes within 2 h"


def match_note(matched_count: int) -> str:
    """What the client is told about instant match: on the request page and right after posting."""
    if matched_count <= 0:
        return "We posted your request; matching professionals will see it in their leads."
    pros = "pro" if matched_count == 1 else "pros"
    return f"We sent your request to {matched_count} matching {pros}."


def _available(pro: ProProfile, day: date | None) -> bool:
    """Works that weekday and has not blocked that date (any day when the request names none)."""
    if day is None:
        return True
    return WEEKDAYS[day.weekday()] in (pro.availability or {}) and day.isoformat() not in (pro.blocked_dates or [])


def _reach(pro: ProProfile, request: ServiceRequest) -> tuple[bool, float | None]:
    """Whether the request is in the pro's service area (matching's rule, which their response rate counts
    leads by), and the distance when both have coordinates."""
    served = serves(pro, request.latitude, request.longitude, request.city)
    if pro.latitude is None or request.latitude is None:
        return served, None
    return served, distance_km((pro.latitude, pro.longitude), (request.latitude, request.longitude))


def _money_range(lo: int, hi: int, currency: str) -> str:
    if not lo and not hi:
        return "Open budget"
    if lo and hi:
        return f"{format_money(lo, currency)} – {format_money(hi, currency)}"
    return f"Up to {format_money(hi, currency)}" if hi else f"From {format_money(lo, currency)}"


def _excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """One line of at most `limit` characters, cut at a word with an ellipsis."""
    line = " ".join((text or "").split())
    if len(line) <= limit:
        return line
    return line[:limit - 1].rsplit(" ", 1)[0].rstrip(",.;:") + "…"


def _dates(start: date | None, end: date | None) -> str:
    if not start and not end:
        return "Flexible dates"
    if start and end and start != end:
        return f"{start:%b %d} – {end:%b %d, %Y}"
    return f"{(start or end):%b %d, %Y}"


class QuoteService:
    def __init__(self, db: Database, settings: Settings, store: ObjectStore, orders: OrderService,
                 conversations: Conversations, *, places: Gazetteer, matching: MatchingService,
                 notifications: NotificationService, jobs: QuoteJobs):
        self.db = db
        self.settings = settings
        self.store = store
        self.orders = orders  # an accepted quote becomes an order through the order service (the one writer)
        self.conversations = conversations
        self.places = places  # the typed city becomes a known place: its label and coordinates
        self.matching = matching  # instant match, and the keyword box of the leads inbox
        self.notifications = notifications
        self.jobs = jobs

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _require(actor: Caller | None, tenant: TenantPublic, role: Role) -> Caller:
        if actor is None or actor.tenant_id != tenant.id:
            raise PermissionDenied("Please log in first.")
        if actor.role != role:
            raise PermissionDenied(f"Only {role.value}s can do that.")
        return actor

    def _request_row(self, session: Session, r: ServiceRequest, *, quote_count: int = 0,
                     distance: float | None = None, matched_count: int = 0,
                     match: LeadMatch | None = None) -> RequestRow:
        category = session.get(Category, r.category_id)
        client = session.get(Profile, r.client_id)
        order_id = session.exec(select(Order.id).where(Order.request_id == r.id)).first()
        return RequestRow(
            id=r.id, title=r.title, description=r.description, category=category.name if category else "",
            city=r.city, budget=_money_range(r.budget_min_minor, r.budget_max_minor, r.currency),
            dates=_dates(r.preferred_start, r.preferred_end), status=r.status,
            created_at=r.created_at.strftime("%b %d, %Y"), expires_at=r.expires_at.strftime("%b %d, %Y"),
            quote_count=quote_count, photo_urls=[self.store.signed_url(k) for k in r.photo_keys],
            client_name=(client.full_name.split()[0] if client and client.full_name else "A client"),
            client_id=r.client_id,
            distance_km=round(distance) if distance is not None else None, order_id=order_id,
            matched_count=matched_count, match_note=match_note(matched_count),
            matched=match is not None, match_why=match.why if match is not None else "",
        )

    def _quote_row(self, session: Session, q: Quote) -> QuoteRow:
        profile = session.get(Profile, q.pro_id)
        pro = session.get(ProProfile, q.pro_id)
        request = session.get(ServiceRequest, q.request_id)
        return QuoteRow(
            id=q.id, request_id=q.request_id, request_title=request.title if request else "", pro_id=q.pro_id,
            pro_name=profile.full_name if profile else "", pro_verified=bool(pro and pro.verified),
            pro_avatar_url=self.store.url(profile.avatar_key) if profile and profile.avatar_key else "",
            price_minor=q.price_minor, price=format_money(q.price_minor, q.currency), message=q.message,
            duration_hours=q.duration_hours, valid_until=q.valid_until.strftime("%b %d, %Y"), status=q.status,
            created_at=q.created_at.strftime("%b %d, %Y"),
            expired=q.status == QuoteStatus.SENT and q.valid_until < date.today(),
        )

    # ------------------------------------------------------------------ clients: requests

    def create_request(self, tenant: TenantPublic, actor: Caller, data: dict,
                       photos: list[bytes] | None = None) -> int:
        actor = self._require(actor, tenant, Role.CLIENT)
        form = parse_input(RequestCreate, data)
        errors = {}
        budget = {}
        for name in ("budget_min", "budget_max"):
            try:
                budget[name] = parse_amount(getattr(form, name), tenant.currency, field_name="budget",
                                            allow_zero=True, maximum_major=MAX_PRICE_MAJOR)
            except ValueError as exc:
                errors[name] = str(exc)
        if not errors and budget["budget_max"] and budget["budget_min"] > budget["budget_max"]:
            errors["budget_max"] = "The maximum is below the minimum"
        photos = photos or []
        if len(photos) > MAX_PHOTOS:
            errors["photos"] = f"Attach at most {MAX_PHOTOS} photos"
        images = []
        for data_bytes in photos if not errors else []:
            images.append(load_image(data_bytes, field="photos", max_bytes=self.settings.max_avatar_bytes))
        place = self.places.resolve(form.city)
        if place is None:
            errors["city"] = UNKNOWN_PLACE
        with self.db.tenant_session(tenant.id) as session:
            category = session.get(Category, form.category_id)
            if category is None or not category.active:
                errors["category_id"] = "Choose a category from the list"
            if errors:
                raise ValidationFailed(errors)
            keys = []
            for image in images:
                key = new_key(tenant.id, "requests", ".jpg")
                self.store.put(key, thumbnail(image, 1600), "image/jpeg")
                keys.append(key)
            request = ServiceRequest(
                client_id=actor.id, category_id=form.category_id, title=form.title, description=form.description,
                city=place.label, latitude=place.latitude, longitude=place.longitude,
                budget_min_minor=budget["budget_min"], budget_max_minor=budget["budget_max"],
                currency=tenant.currency, preferred_start=form.preferred_start, preferred_end=form.preferred_end,
                photo_keys=keys, expires_at=utcnow() + timedelta(days=tenant.request_expiry_days),
            )
            session.add(request)
            session.flush()
            request_id = request.id
            matches = self._instant_match(session, tenant, request)
            note_ids = self._notify_matches(session, tenant, request, category, matches)
            note_ids += self._notify_new_lead(session, tenant, request, category, self._new_lead_pros(
                session, tenant, request, matched={m.pro_id for m in matches}))
        self._after_commit(tenant.id, note_ids, [request_id])
        return request_id

    def _instant_match(self, session: Session, tenant: TenantPublic, request: ServiceRequest) -> list[LeadMatch]:
        """The tenant's best `instant_match_count` professionals for the request, as LeadMatch rows written in the
        request's transaction. The engine's answer is checked against the database in this same transaction (the
        index is rebuilt after commits, so it can lag a suspension or a profile edit by moments): only an active,
        email-verified professional of the request's category whose service area reaches it and who is
        available on its preferred start is matched. Without the engine the request is posted unmatched."""
        count = tenant.instant_match_count
        if count <= 0:
            return []
        origin = (request.latitude, request.longitude) if request.latitude is not None else None
        # [] when the engine is down (top_pros logs it): the request is posted, unmatched
        hits = self.matching.top_pros(tenant, category_id=request.category_id, origin=origin, city=request.city,
                                      on=request.preferred_start, exclude={request.client_id},
                                      limit=count + MATCH_HEADROOM)
        matches: list[LeadMatch] = []
        for hit in self._still_eligible(session, request, hits, on=request.preferred_start):
            match = LeadMatch(request_id=request.id, pro_id=hit.doc.pro_id, rank=len(matches) + 1,
                              score=float(hit.score), why=self.matching.why(hit)[:200])
            session.add(match)
            matches.append(match)
            if len(matches) == count:
                break
        session.flush()
        return matches

    def _new_lead_pros(self, session: Session, tenant: TenantPublic, request: ServiceRequest, *,
                       matched: set[int]) -> list[int]:
        """Who is told of a new lead (LEAD_NEW): the NEW_LEAD_RECIPIENTS best professionals by the matching ranking
        among those not instantly matched to it whose leads inbox lists it, checked against the database in this
        transaction as instant match does, but on any day (a lead is theirs whatever its date; only a match
        promises availability). The ranking's signals (rating, response rate, activity) live in the search index,
        so the engine ranks; when it is down nobody is told (top_pros logs it) and every eligible professional
        still finds the request in their leads inbox."""
        origin = (request.latitude, request.longitude) if request.latitude is not None else None
        hits = self.matching.top_pros(tenant, category_id=request.category_id, origin=origin, city=request.city,
                                      exclude={request.client_id, *matched},
                                      limit=NEW_LEAD_RECIPIENTS + MATCH_HEADROOM)
        pro_ids = [hit.doc.pro_id for hit in self._still_eligible(session, request, hits, on=None)]
        return [pro_id for pro_id in pro_ids if pro_id not in matched][:NEW_LEAD_RECIPIENTS]

    @staticmethod
    def _still_eligible(session: Session, request: ServiceRequest, hits: list[ProHit], *,
                        on: date | None) -> list[ProHit]:
        """The hits the database agrees with (available `on` that day, when given), in the engine's order."""
        ids = list(dict.fromkeys(h.doc.pro_id for h in hits if h.doc.pro_id != request.client_id))
        if not ids:
            return []
        users = session.exec(select(User.id).where(User.id.in_(ids), User.role == Role.PROFESSIONAL,
                                                   User.status == UserStatus.ACTIVE,
                                                   User.email_verified_at.is_not(None))).all()
        serving = set(session.exec(select(ProCategory.user_id).where(
            ProCategory.user_id.in_(users), ProCategory.category_id == request.category_id)).all())
        pros = {p.user_id: p for p in session.exec(select(ProProfile).where(ProProfile.user_id.in_(serving))).all()}
        return [h for h in hits if h.doc.pro_id in pros and _reach(pros[h.doc.pro_id], request)[0]
                and _available(pros[h.doc.pro_id], on)]

    def _notify_matches(self, session: Session, tenant: TenantPublic, request: ServiceRequest, category: Category,
                        matches: list[LeadMatch]) -> list[int]:
        """LEAD_MATCHED to each matched professional, in the request's transaction (nothing goes out if it rolls
        back). One call per professional: the ranking's line ("why you") is theirs."""
        if not matches:
            return []
        client = session.get(Profile, request.client_id)
        first_name = client.full_name.split()[0] if client and client.full_name.strip() else "A client"
        note_ids: list[int] = []
        for match in matches:
            note_ids += self.notifications.notify(
                session, tenant, Event.LEAD_MATCHED, [match.pro_id], key=f"lead:{request.id}:matched",
                context={"client_first_name": first_name, "request_title": request.title,
                         "category": category.name, "city": request.city,
                         "why": match.why or "You serve this category and area."},
                link=f"/pro/leads/{request.id}")
        return note_ids

    def _notify_new_lead(self, session: Session, tenant: TenantPublic, request: ServiceRequest,
                         category: Category, pro_ids: list[int]) -> list[int]:
        """LEAD_NEW to these professionals, in the request's transaction: one call (the message is the same for
        all), keyed by the request, so each professional hears of a request once."""
        if not pro_ids:
            return []
        return self.notifications.notify(
            session, tenant, Event.LEAD_NEW, pro_ids, key=f"lead:{request.id}:new",
            context={"request_title": request.title, "category": category.name, "city": request.city,
                     "budget": _money_range(request.budget_min_minor, request.budget_max_minor, request.currency),
                     "when": _dates(request.preferred_start, request.preferred_end)},
            link=f"/pro/leads/{request.id}")

    def _after_commit(self, tenant_id: int, note_ids: list[int], request_ids: list[int]) -> None:
        """Follow-ups of a committed use case: notification deliveries, request documents' rebuilds."""
        for note_id in note_ids:
            self.jobs.deliver_notification(tenant_id, note_id)
        for request_id in request_ids:
            self.jobs.index_request(tenant_id, request_id)

    def my_requests(self, tenant: TenantPublic, actor: Caller) -> list[RequestRow]:
        actor = self._require(actor, tenant, Role.CLIENT)
        with self.db.tenant_session(tenant.id) as session:
            counts = dict(session.exec(
                select(Quote.request_id, sa.func.count()).join(ServiceRequest, ServiceRequest.id == Quote.request_id)
                .where(ServiceRequest.client_id == actor.id, Quote.status.in_([QuoteStatus.SENT,
                                                                               QuoteStatus.ACCEPTED]))
                .group_by(Quote.request_id)).all())
            matched = dict(session.exec(
                select(LeadMatch.request_id, sa.func.count()).join(ServiceRequest,
                                                                   ServiceRequest.id == LeadMatch.request_id)
                .where(ServiceRequest.client_id == actor.id).group_by(LeadMatch.request_id)).all())
            requests = session.exec(select(ServiceRequest).where(ServiceRequest.client_id == actor.id)
                                    .order_by(ServiceRequest.created_at.desc(), ServiceRequest.id.desc())).all()
            return [self._request_row(session, r, quote_count=counts.get(r.id, 0), matched_count=matched.get(r.id, 0))
                    for r in requests]

    def request_with_quotes(self, tenant: TenantPublic, actor: Caller,
                            request_id: int) -> tuple[RequestRow, list[QuoteRow]]:
        """The client's view of one request with its quotes, cheapest first."""
        actor = self._require(actor, tenant, Role.CLIENT)
        with self.db.tenant_session(tenant.id) as session:
            request = session.get(ServiceRequest, request_id)
            if request is None or request.client_id != actor.id:
                raise NotFound("No such request.")
            quotes = session.exec(select(Quote).where(Quote.request_id == request_id,
                                                      Quote.status != QuoteStatus.WITHDRAWN)
                                  .order_by(Quote.price_minor, Quote.id)).all()
            matched = session.exec(select(sa.func.count()).select_from(LeadMatch)
                                   .where(LeadMatch.request_id == request_id)).one()
            return (self._request_row(session, request, quote_count=len(quotes), matched_count=matched),
                    [self._quote_row(session, q) for q in quotes])

    def close_request(self, tenant: TenantPublic, actor: Caller, request_id: int) -> None:
        actor = self._require(actor, tenant, Role.CLIENT)
        with self.db.tenant_session(tenant.id) as session:
            request = session.exec(select(ServiceRequest).where(ServiceRequest.id == request_id)
                                   .with_for_update()).first()
            if request is None or request.client_id != actor.id:
                raise NotFound("No such request.")
            if request.status != RequestStatus.OPEN:
                raise DomainError("This request is no longer open.")
            request.status = RequestStatus.CLOSED
            session.exec(sa.update(Quote).where(Quote.request_id == request_id, Quote.status == QuoteStatus.SENT)
                         .values(status=QuoteStatus.DECLINED))
        self._after_commit(tenant.id, [], [request_id])

    # ------------------------------------------------------------------ professionals: leads and quotes

    def _matching(self, session: Session, pro_id: int) -> list[tuple[ServiceRequest, float | None]]:
        """Open requests in the pro's categories and service area (distance when both have coordinates,
        else the same city), not their own, not declined, not yet quoted by them."""
        pro = session.get(ProProfile, pro_id)
        if pro is None:
            return []
        category_ids = session.exec(select(ProCategory.category_id).where(ProCategory.user_id == pro_id)).all()
        if not category_ids:
            return []
        declined = select(LeadDecline.request_id).where(LeadDecline.pro_id == pro_id)
        quoted = select(Quote.request_id).where(Quote.pro_id == pro_id)
        candidates = session.exec(
            select(ServiceRequest).where(ServiceRequest.status == RequestStatus.OPEN,
                                         ServiceRequest.expires_at > utcnow(),
                                         ServiceRequest.category_id.in_(category_ids),
                                         ServiceRequest.client_id != pro_id,
                                         ServiceRequest.id.not_in(declined), ServiceRequest.id.not_in(quoted))
            .order_by(ServiceRequest.created_at.desc()).limit(LEADS_LIMIT)).all()
        out = []
        for r in candidates:
            served, d = _reach(pro, r)
            if served:
                out.append((r, d))
        return out

    def _lead_rows(self, session: Session, pro_id: int) -> list[RequestRow]:
        """The pro's leads by match quality: those instant match chose them for first, by their rank; then the
        others by ranking.lead_quality (near and fresh first)."""
        leads = self._matching(session, pro_id)
        if not leads:
            return []
        pro = session.get(ProProfile, pro_id)
        matches = {m.request_id: m for m in session.exec(select(LeadMatch).where(
            LeadMatch.pro_id == pro_id, LeadMatch.request_id.in_([r.id for r, _ in leads]))).all()}
        now = utcnow()

        def order(lead: tuple[ServiceRequest, float | None]) -> tuple:
            r, d = lead
            match = matches.get(r.id)
            age_hours = (now - r.created_at).total_seconds() / 3600
            quality = lead_quality(d, pro.radius_km, age_hours, match is not None)
            return (0, match.rank, -quality, -r.id) if match else (1, 0, -quality, -r.id)

        return [self._request_row(session, r, distance=d, match=matches.get(r.id))
                for r, d in sorted(leads, key=order)]

    def leads(self, tenant: TenantPublic, actor: Caller, q: str = "") -> list[RequestRow]:
        """The pro's leads, best first; with keywords (`q`), only those the search engine finds for them (typos
        forgiven, title and description)."""
        actor = self._require(actor, tenant, Role.PROFESSIONAL)
        text = " ".join(str(q or "").split())
        if len(text) > 100:
            raise ValidationFailed({"q": "Search with at most 100 characters"})
        with self.db.tenant_session(tenant.id) as session:
            rows = self._lead_rows(session, actor.id)
            pro = session.get(ProProfile, actor.id)
            category_ids = tuple(session.exec(select(ProCategory.category_id)
                                              .where(ProCategory.user_id == actor.id)).all())
        if not text or not rows:
            return rows
        # the engine is asked outside the transaction (a DomainError when it is down); what it finds only narrows
        # the leads read above, so a stale index can hide a lead from a search but never show one that isn't theirs
        query = RequestQuery(text=text, category_ids=category_ids,
                             origin=(pro.latitude, pro.longitude) if pro.latitude is not None else None,
                             radius_km=float(pro.radius_km), limit=LEADS_LIMIT)
        found = {hit.doc.request_id for hit in self.matching.search_requests(tenant, query).hits}
        return [row for row in rows if row.id in found]

    def _lead_for(self, session: Session, pro_id: int, request_id: int) -> ServiceRequest:
        for r, _ in self._matching(session, pro_id):
            if r.id == request_id:
                return r
        request = session.get(ServiceRequest, request_id)
        if request is not None and request.status != RequestStatus.OPEN:
            raise DomainError("This request is no longer open.")
        if request is not None and session.exec(select(Quote.id).where(
                Quote.request_id == request_id, Quote.pro_id == pro_id)).first() is not None:
            raise Conflict("You already quoted on this request.")
        raise NotFound("This request is not one of your leads.")

    def lead(self, tenant: TenantPublic, actor: Caller, request_id: int) -> RequestRow:
        actor = self._require(actor, tenant, Role.PROFESSIONAL)
        with self.db.tenant_session(tenant.id) as session:
            request = self._lead_for(session, actor.id, request_id)
            pro = session.get(ProProfile, actor.id)
            match = session.exec(select(LeadMatch).where(LeadMatch.request_id == request_id,
                                                         LeadMatch.pro_id == actor.id)).first()
            return self._request_row(session, request, distance=_reach(pro, request)[1], match=match)

    def send_quote(self, tenant: TenantPublic, actor: Caller, request_id: int, data: dict) -> int:
        actor = self._require(actor, tenant, Role.PROFESSIONAL)
        form = parse_input(QuoteCreate, data)
        try:
            price = parse_amount(form.price, tenant.currency, field_name="price", maximum_major=MAX_PRICE_MAJOR)
        except ValueError as exc:
            raise ValidationFailed({"price": str(exc)}) from None
        with self.db.tenant_session(tenant.id) as session:
            request = session.exec(select(ServiceRequest).where(ServiceRequest.id == request_id)
                                   .with_for_update()).first()
            if request is None:
                raise NotFound("This request is not one of your leads.")
            self._lead_for(session, actor.id, request_id)
            quote = Quote(request_id=request_id, pro_id=actor.id, price_minor=price, currency=tenant.currency,
                          message=form.message, duration_hours=form.duration_hours, valid_until=form.valid_until)
            session.add(quote)
            try:
                session.flush()
            except sa.exc.IntegrityError:
                raise Conflict("You already quoted on this request.") from None
            # the client and this pro can talk from the first quote on
            self.conversations.ensure_job_conversation(session, tenant.id, client_id=request.client_id,
                                                       pro_id=actor.id, request_id=request_id)
            quote_id = quote.id
            pro = session.get(Profile, actor.id)
            note_ids = self.notifications.notify(
                session, tenant, Event.QUOTE_RECEIVED, [request.client_id], key=f"quote:{quote_id}",
                context={"pro_name": pro.full_name if pro and pro.full_name else actor.name,
                         "request_title": request.title, "amount": format_money(price, tenant.currency),
                         "message_excerpt": _excerpt(form.message)},
                link=f"/requests/{request_id}")
        self._after_commit(tenant.id, note_ids, [])
        self.jobs.index_pro(tenant.id, actor.id)  # an answered lead: their response rate and quote time change
        return quote_id

    def decline_lead(self, tenant: TenantPublic, actor: Caller, request_id: int) -> None:
        actor = self._require(actor, tenant, Role.PROFESSIONAL)
        with self.db.tenant_session(tenant.id) as session:
            self._lead_for(session, actor.id, request_id)
            session.add(LeadDecline(request_id=request_id, pro_id=actor.id))
        self.jobs.index_pro(tenant.id, actor.id)  # a declined lead is answered too: their response rate changes

    def my_quotes(self, tenant: TenantPublic, actor: Caller) -> list[QuoteRow]:
        actor = self._require(actor, tenant, Role.PROFESSIONAL)
        with self.db.tenant_session(tenant.id) as session:
            quotes = session.exec(select(Quote).where(Quote.pro_id == actor.id)
                                  .order_by(Quote.created_at.desc(), Quote.id.desc())).all()
            return [self._quote_row(session, q) for q in quotes]

    def withdraw_quote(self, tenant: TenantPublic, actor: Caller, quote_id: int) -> None:
        actor = self._require(actor, tenant, Role.PROFESSIONAL)
        with self.db.tenant_session(tenant.id) as session:
            quote = session.exec(select(Quote).where(Quote.id == quote_id).with_for_update()).first()
            if quote is None or quote.pro_id != actor.id:
                raise NotFound("No such quote.")
            if quote.status != QuoteStatus.SENT:
                raise DomainError(f"This quote was already {quote.status}; it can't be withdrawn.")
            quote.status = QuoteStatus.WITHDRAWN

    # ------------------------------------------------------------------ accepting a quote

    def accept_quote(self, tenant: TenantPublic, actor: Caller, quote_id: int) -> int:
        """Create the order; decline the other quotes; close the request. Exactly one order per
        request even when accept clicks race: the request row is locked (PostgreSQL), and
        service_order.request_id is unique (every database)."""
        actor = self._require(actor, tenant, Role.CLIENT)
        try:
            with self.db.tenant_session(tenant.id) as session:
                quote = session.get(Quote, quote_id)
                if quote is None:
                    raise NotFound("No such quote.")
                request = session.exec(select(ServiceRequest).where(ServiceRequest.id == quote.request_id)
                                       .with_for_update()).first()
                if request is None or request.client_id != actor.id:
                    raise NotFound("No such quote.")
                session.refresh(quote)  # re-read under the lock
                if request.status != RequestStatus.OPEN:
                    raise Conflict("This request already has an accepted quote or is closed.")
                if quote.status != QuoteStatus.SENT:
                    raise Conflict(f"This quote was {quote.status} and can no longer be accepted.")
                if quote.valid_until < date.today():
                    raise Conflict("This quote has expired. Ask the professional for a new one.")
                pro = session.get(User, quote.pro_id)
                if pro is None or pro.status != UserStatus.ACTIVE:
                    raise Conflict("This professional is no longer available.")
                order_id = self.orders.open_order(
                    session, tenant, actor, action="accept_quote", state=OrderState.ACCEPTED, pro_id=quote.pro_id,
                    title=request.title, price_minor=quote.price_minor, currency=quote.currency,
                    scheduled_for=request.preferred_start, note=f"Quote #{quote.id} accepted",
                    request_id=request.id, quote_id=quote.id)
                quote.status = QuoteStatus.ACCEPTED
                session.exec(sa.update(Quote).where(Quote.request_id == request.id, Quote.id != quote.id,
                                                    Quote.status == QuoteStatus.SENT)
                             .values(status=QuoteStatus.DECLINED))
                request.status = RequestStatus.CLOSED
                request_id = request.id
                self.conversations.attach_order(session, tenant.id, request_id=request.id, order_id=order_id)
                client = session.get(Profile, actor.id)
                note_ids = self.notifications.notify(
                    session, tenant, Event.QUOTE_ACCEPTED, [quote.pro_id], key=f"quote:{quote.id}:accepted",
                    context={"client_name": client.full_name if client and client.full_name else actor.name,
                             "request_title": request.title,
                             "amount": format_money(quote.price_minor, quote.currency)},
                    link=f"/orders/{order_id}")
        except sa.exc.IntegrityError:
            raise Conflict("This request already has an accepted quote.") from None
        self._after_commit(tenant.id, note_ids, [request_id])  # closed: out of professionals' search
        return order_id

    # ------------------------------------------------------------------ timers

    def expire_requests(self, tenant_id: int, now: datetime) -> int:
        with self.db.tenant_session(tenant_id) as session:
            expired = session.exec(select(ServiceRequest).where(ServiceRequest.status == RequestStatus.OPEN,
                                                                ServiceRequest.expires_at <= now)).all()
            for request in expired:
                request.status = RequestStatus.EXPIRED
                session.exec(sa.update(Quote).where(Quote.request_id == request.id,
                                                    Quote.status == QuoteStatus.SENT)
                             .values(status=QuoteStatus.DECLINED))
            expired_ids = [r.id for r in expired]
        self._after_commit(tenant_id, [], expired_ids)
        return len(expired_ids)
