"""Quoting: a client posts a service request, matching professionals see it as a lead and send quotes, and the
client accepts one (which becomes an order)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, select

from backend.identity import Caller, Role, TenantPublic
from backend.accounts.models import User, UserStatus
from backend.config import Settings
from backend.db import Database, utcnow
from backend.errors import Conflict, DomainError, NotFound, PermissionDenied, ValidationFailed
from backend.geo import distance_km, locate
from backend.money import format_money, parse_amount
from backend.catalog.models import Category
from backend.orders.forms import MAX_PHOTOS, MAX_PRICE_MAJOR, QuoteCreate, RequestCreate
from backend.orders.models import LeadDecline, Order, OrderState, Quote, QuoteStatus, RequestStatus, ServiceRequest
from backend.orders.ports import Conversations
from backend.orders.service import OrderService
from backend.profiles.models import ProCategory, ProProfile, Profile
from backend.storage.images import load_image, thumbnail
from backend.storage.ports import ObjectStore, new_key
from backend.validation import parse_input


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


def _money_range(lo: int, hi: int, currency: str) -> str:
    if not lo and not hi:
        return "Open budget"
    if lo and hi:
        return f"{format_money(lo, currency)} – {format_money(hi, currency)}"
    return f"Up to {format_money(hi, currency)}" if hi else f"From {format_money(lo, currency)}"


def _dates(start: date | None, end: date | None) -> str:
    if not start and not end:
        return "Flexible dates"
    if start and end and start != end:
        return f"{start:%b %d} – {end:%b %d, %Y}"
    return f"{(start or end):%b %d, %Y}"


class QuoteService:
    def __init__(self, db: Database, settings: Settings, store: ObjectStore, orders: OrderService,
                 conversations: Conversations):
        self.db = db
        self.settings = settings
        self.store = store
        self.orders = orders  # an accepted quote becomes an order through the order service (the one writer)
        self.conversations = conversations

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _require(actor: Caller | None, tenant: TenantPublic, role: Role) -> Caller:
        if actor is None or actor.tenant_id != tenant.id:
            raise PermissionDenied("Please log in first.")
        if actor.role != role:
            raise PermissionDenied(f"Only {role.value}s can do that.")
        return actor

    def _request_row(self, session: Session, r: ServiceRequest, *, quote_count: int = 0,
                     distance: float | None = None) -> RequestRow:
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
            lat_lng = locate(form.city)
            request = ServiceRequest(
                client_id=actor.id, category_id=form.category_id, title=form.title, description=form.description,
                city=form.city, latitude=lat_lng[0] if lat_lng else None, longitude=lat_lng[1] if lat_lng else None,
                budget_min_minor=budget["budget_min"], budget_max_minor=budget["budget_max"],
                currency=tenant.currency, preferred_start=form.preferred_start, preferred_end=form.preferred_end,
                photo_keys=keys, expires_at=utcnow() + timedelta(days=tenant.request_expiry_days),
            )
            session.add(request)
            session.flush()
            return request.id

    def my_requests(self, tenant: TenantPublic, actor: Caller) -> list[RequestRow]:
        actor = self._require(actor, tenant, Role.CLIENT)
        with self.db.tenant_session(tenant.id) as session:
            counts = dict(session.exec(
                select(Quote.request_id, sa.func.count()).join(ServiceRequest, ServiceRequest.id == Quote.request_id)
                .where(ServiceRequest.client_id == actor.id, Quote.status.in_([QuoteStatus.SENT,
                                                                               QuoteStatus.ACCEPTED]))
                .group_by(Quote.request_id)).all())
            requests = session.exec(select(ServiceRequest).where(ServiceRequest.client_id == actor.id)
                                    .order_by(ServiceRequest.created_at.desc(), ServiceRequest.id.desc())).all()
            return [self._request_row(session, r, quote_count=counts.get(r.id, 0)) for r in requests]

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
            return (self._request_row(session, request, quote_count=len(quotes)),
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
            .order_by(ServiceRequest.created_at.desc()).limit(500)).all()
        out = []
        for r in candidates:
            if pro.latitude is not None and r.latitude is not None:
                d = distance_km((pro.latitude, pro.longitude), (r.latitude, r.longitude))
                if d <= pro.radius_km:
                    out.append((r, d))
            elif pro.city and pro.city.lower() == r.city.lower():
                out.append((r, None))
        return out

    def leads(self, tenant: TenantPublic, actor: Caller) -> list[RequestRow]:
        actor = self._require(actor, tenant, Role.PROFESSIONAL)
        with self.db.tenant_session(tenant.id) as session:
            return [self._request_row(session, r, distance=d) for r, d in self._matching(session, actor.id)]

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
            return self._request_row(session, self._lead_for(session, actor.id, request_id))

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
            return quote.id

    def decline_lead(self, tenant: TenantPublic, actor: Caller, request_id: int) -> None:
        actor = self._require(actor, tenant, Role.PROFESSIONAL)
        with self.db.tenant_session(tenant.id) as session:
            self._lead_for(session, actor.id, request_id)
            session.add(LeadDecline(request_id=request_id, pro_id=actor.id))

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
                self.conversations.attach_order(session, tenant.id, request_id=request.id, order_id=order_id)
                return order_id
        except sa.exc.IntegrityError:
            raise Conflict("This request already has an accepted quote.") from None

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
            return len(expired)
