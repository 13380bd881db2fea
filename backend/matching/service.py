"""The matching service: search over professionals and open requests, instant match, and keeping the index fresh.

Reads go to the search engine (`ports.SearchEngine`: tantivy embedded, or Elasticsearch), never to the database
tables behind it, except the public profile page. Writes to the index happen in two ways only:
- `index_pro` / `index_request`: one document rebuilt from the database (or removed), run as an idempotent job
  after whatever changed it committed (profiles, accounts, reviews, orders schedule them through
  `profiles.ports.SearchIndexJobs`);
- `reindex`: a tenant's index cleared and rebuilt in batches (the `reindex` command, the start of `make run` when
  `check` finds the index disagrees with the database).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from datetime import timedelta

from sqlmodel import Session, select

from backend.accounts.models import User, UserStatus
from backend.catalog.models import Category
from backend.db import Database, utcnow
from backend.errors import DomainError, NotFound, ValidationFailed
from backend.identity import Role, TenantPublic
from backend.matching import ranking
from backend.matching.documents import build_pro_documents, eligible_pro_ids, reached_pro_ids
from backend.matching.forms import PAGE_SIZE, SearchForm
from backend.matching.ports import (
    Kind, ProHit, ProQuery, ProSignals, RequestQuery, RequestResults, RequestSource, SearchEngine,
    SearchUnavailable, Sort, fingerprinted,
)
from backend.matching.views import CategoryFacet, Consistency, ProCard, SearchPage
from backend.money import format_money, parse_amount
from backend.places import UNKNOWN_PLACE, Gazetteer
from backend.profiles import ProView, ensure_pro_profile, pro_view
from backend.storage.ports import ObjectStore
from backend.validation import parse_input

log = logging.getLogger(__name__)

UNAVAILABLE = "Search is unavailable right now; try again in a minute."
BATCH = 500  # documents built and written per round trip in a reindex
MAX_PRICE_MAJOR = 10_000  # the profile editor's own limit on an hourly rate
INSTANT_MATCH_RADIUS_KM = 500  # with a place, the pro's own service radius is what decides
SUGGESTIONS = 8


class MatchingService:
    def __init__(self, db: Database, store: ObjectStore, open_engine: Callable[[], SearchEngine],
                 places: Gazetteer, *, signals: Sequence[ProSignals] = (),
                 requests: RequestSource | None = None):
        """`open_engine` is called on first use: building the services (tests build many) opens no index and
        reaches no server. `signals`: what services above know about pros (orders, reviews)."""
        self.db = db
        self.store = store
        self._open_engine = open_engine
        self._engine: SearchEngine | None = None
        self._opening = threading.Lock()  # one engine per process: the embedded one's writes go through one place
        self.gazetteer = places
        self.signals = tuple(signals)
        self.requests = requests

    @property
    def engine(self) -> SearchEngine:
        if self._engine is None:
            with self._opening:
                if self._engine is None:
                    self._engine = self._open_engine()
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    # ------------------------------------------------------------------------------------------------ search

    def search(self, tenant: TenantPublic, params: dict) -> SearchPage:
        """The search page: `params` are the URL's (all text, all optional); see forms.SearchForm."""
        form = parse_input(SearchForm, params)
        errors: dict[str, str] = {}
        prices = {}
        for name, label in (("price_min", "minimum price"), ("price_max", "maximum price")):
            try:
                prices[name] = parse_amount(getattr(form, name), tenant.currency, field_name=label, allow_zero=True,
                                            maximum_major=MAX_PRICE_MAJOR) if getattr(form, name) else None
            except ValueError as exc:
                errors[name] = str(exc)
        if prices.get("price_min") is not None and prices.get("price_max") is not None \
                and prices["price_max"] < prices["price_min"]:
            errors["price_max"] = "The maximum price is below the minimum"
        if form.date is not None and form.date < (utcnow() - timedelta(days=1)).date():
            errors["date"] = "Choose today or a later date"
        categories = self._categories(tenant.id)
        if form.category is not None and form.category not in categories:
            errors["category"] = "Choose a category from the list"
        place = None
        if form.place:
            place = self.gazetteer.resolve(form.place)
            if place is None:
                errors["place"] = UNKNOWN_PLACE
        if errors:
            raise ValidationFailed(errors)
        query = ProQuery(
            text=form.q, category_id=form.category,
            origin=(place.latitude, place.longitude) if place else None, radius_km=float(form.radius),
            price_min_minor=prices.get("price_min"), price_max_minor=prices.get("price_max"),
            min_rating=form.min_rating, verified_only=form.verified, available_on=form.date,
            sort=form.sort, offset=(form.page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
        try:
            results = self.engine.search_pros(tenant.id, query)
        except SearchUnavailable:
            log.exception("search failed (tenant %s)", tenant.id)
            raise DomainError(UNAVAILABLE) from None
        facets = [CategoryFacet(id=cid, name=name, count=results.category_counts.get(cid, 0),
                                selected=cid == form.category)
                  for cid, name in categories.items()
                  if results.category_counts.get(cid, 0) or cid == form.category]
        return SearchPage(cards=[self.card(hit) for hit in results.hits], total=results.total, page=form.page,
                          pages=max(1, math.ceil(results.total / PAGE_SIZE)), facets=facets,
                          place=place.label if place else "",
                          summary=_summary(results.total, form, place.label if place else "",
                                           categories.get(form.category or 0, "")))

    def suggest(self, tenant: TenantPublic, text: str) -> list[str]:
        """Search-as-you-type: at most 8; nothing under two letters; nothing (logged) when the engine is down."""
        text = " ".join((text or "").split())[:100]
        if sum(ch.isalnum() for ch in text.split(" ")[-1]) < 2:
            return []
        try:
            return self.engine.suggest(tenant.id, text, SUGGESTIONS)[:SUGGESTIONS]
        except SearchUnavailable:
            log.warning("suggestions unavailable (tenant %s)", tenant.id)
            return []

    def places(self, text: str) -> list[str]:
        """Place labels for an autocomplete (every place field)."""
        return [place.label for place in self.gazetteer.suggest(" ".join((text or "").split())[:120])]

    def top_pros(self, tenant: TenantPublic, *, category_id: int, origin: tuple[float, float] | None, city: str,
                 on=None, exclude: set[int] = frozenset(), limit: int = 5) -> list[ProHit]:
        """Instant match: the best pros of the category who serve the place (their own radius reaches it) and
        work that day. Without coordinates, those of the same city. [] when the engine is down (the request is
        posted anyway; every pro of the category still sees it as a lead)."""
        if limit <= 0:
            return []
        by_city = origin is None
        query = ProQuery(category_id=category_id, origin=origin, radius_km=INSTANT_MATCH_RADIUS_KM,
                         serves_origin=origin is not None, available_on=on, exclude_ids=tuple(sorted(exclude)),
                         sort=Sort.BEST, limit=200 if by_city else limit)
        try:
            hits = self.engine.search_pros(tenant.id, query).hits
        except SearchUnavailable:
            log.exception("instant match skipped: search is unavailable (tenant %s)", tenant.id)
            return []
        if by_city:
            wanted = " ".join(city.split()).casefold()
            hits = [hit for hit in hits if wanted and " ".join(hit.doc.city.split()).casefold() == wanted]
        return hits[:limit]

    def search_requests(self, tenant: TenantPublic, query: RequestQuery) -> RequestResults:
        try:
            return self.engine.search_requests(tenant.id, query)
        except SearchUnavailable:
            log.exception("request search failed (tenant %s)", tenant.id)
            raise DomainError(UNAVAILABLE) from None

    def public(self, tenant: TenantPublic, pro_id: int) -> ProView:
        """The public profile page: any active professional (also one not yet searchable)."""
        with self.db.tenant_session(tenant.id) as session:
            user = session.get(User, pro_id)
            if user is None or user.role != Role.PROFESSIONAL or user.status != UserStatus.ACTIVE:
                raise NotFound("This professional is not on the marketplace.")
            return pro_view(session, self.store, ensure_pro_profile(session, pro_id, tenant.currency))

    @staticmethod
    def why(hit: ProHit) -> str:
        return ranking.why(hit.doc, hit.distance_km)

    @staticmethod
    def card(hit: ProHit) -> ProCard:
        doc = hit.doc
        distance = hit.distance_km
        return ProCard(
            pro_id=doc.pro_id, name=doc.name, avatar_url=doc.avatar_url, headline=doc.headline, city=doc.city,
            categories=list(doc.category_names),
            rate=f"{format_money(doc.hourly_rate_minor, doc.currency)}/h" if doc.hourly_rate_minor else "",
            rating_text=f"{doc.rating_average:.1f}" if doc.rating_count else "", rating_count=doc.rating_count,
            verified=doc.verified,
            distance_text="" if distance is None else (
                "less than 1 km away" if distance < 1 else f"{round(distance)} km away"),
            why=ranking.why(doc, distance))

    # ------------------------------------------------------------------------------------------------ indexing

    def index_pro(self, tenant_id: int, pro_id: int) -> str:
        """The job: rebuild one professional's document, or remove it when they should not be found."""
        with self.db.tenant_session(tenant_id) as session:
            docs = self._pro_documents(session, tenant_id, [pro_id])
        if pro_id in docs:
            self.engine.upsert_pros([docs[pro_id]])
            return "indexed"
        self.engine.delete_pros(tenant_id, [pro_id])
        return "removed"

    def index_request(self, tenant_id: int, request_id: int) -> str:
        """The job: rebuild one open request's document, or remove it (closed, expired, accepted, gone)."""
        doc = self.requests.request_document(tenant_id, request_id) if self.requests else None
        if doc is None:
            self.engine.delete_requests(tenant_id, [request_id])
            return "removed"
        self.engine.upsert_requests([fingerprinted(doc)])
        # a posted request is a lead of every pro it reaches, which changes their response rate (orders/signals.py)
        with self.db.tenant_session(tenant_id) as session:
            reached = reached_pro_ids(session, doc.category_id, doc.latitude, doc.longitude, doc.city)
            docs = self._pro_documents(session, tenant_id, reached)
        if docs:
            self.engine.upsert_pros(list(docs.values()))
        return "indexed"

    def reindex(self, tenant_id: int) -> dict[str, int]:
        """Rebuild the tenant's documents from the database, in batches, then remove the ones that should not be
        there. Nothing is cleared first, so searches keep finding everyone while it runs (a renamed category, a
        changed ranking input, a repaired index)."""
        started = time.perf_counter()
        engine = self.engine
        pros: set[int] = set()
        with self.db.tenant_session(tenant_id) as session:
            ids = eligible_pro_ids(session, by_place=True)
            for start in range(0, len(ids), BATCH):
                docs = self._pro_documents(session, tenant_id, ids[start:start + BATCH])
                engine.upsert_pros(list(docs.values()))
                pros |= set(docs)
        requests = [fingerprinted(doc) for doc in self.requests.open_request_documents(tenant_id)] \
            if self.requests else []
        for start in range(0, len(requests), BATCH):
            engine.upsert_requests(requests[start:start + BATCH])
        engine.delete_pros(tenant_id, set(engine.fingerprints(tenant_id, Kind.PRO)) - pros)
        engine.delete_requests(tenant_id, set(engine.fingerprints(tenant_id, Kind.REQUEST))
                               - {doc.request_id for doc in requests})
        log.info("reindexed tenant %s: %d pros, %d requests in %.2f s", tenant_id, len(pros), len(requests),
                 time.perf_counter() - started)
        return {"pros": len(pros), "requests": len(requests)}

    def check(self, tenant_id: int) -> Consistency:
        """The index against the database: documents missing, stale (another fingerprint) or extra, per kind."""
        expected: dict[str, dict[int, str]] = {Kind.PRO.value: {}, Kind.REQUEST.value: {}}
        with self.db.tenant_session(tenant_id) as session:
            ids = eligible_pro_ids(session)
            for start in range(0, len(ids), BATCH):
                for pro_id, doc in self._pro_documents(session, tenant_id, ids[start:start + BATCH]).items():
                    expected[Kind.PRO.value][pro_id] = doc.fingerprint
        if self.requests:
            for doc in self.requests.open_request_documents(tenant_id):
                expected[Kind.REQUEST.value][doc.request_id] = fingerprinted(doc).fingerprint
        missing, stale, extra = {}, {}, {}
        for kind in (Kind.PRO, Kind.REQUEST):
            indexed = self.engine.fingerprints(tenant_id, kind)
            wanted = expected[kind.value]
            missing[kind.value] = sorted(set(wanted) - set(indexed))
            extra[kind.value] = sorted(set(indexed) - set(wanted))
            stale[kind.value] = sorted(i for i in set(wanted) & set(indexed) if wanted[i] != indexed[i])
        return Consistency(tenant_id=tenant_id, missing=missing, stale=stale, extra=extra)

    # ------------------------------------------------------------------------------------------------ helpers

    def _pro_documents(self, session: Session, tenant_id: int, pro_ids: Sequence[int]):
        return build_pro_documents(session, tenant_id, pro_ids, store=self.store, signals=self.signals)

    def _categories(self, tenant_id: int) -> dict[int, str]:
        """The tenant's active categories in their display order: id -> name."""
        with self.db.tenant_session(tenant_id) as session:
            rows = session.exec(select(Category.id, Category.name).where(Category.active)
                                .order_by(Category.sort, Category.id)).all()
        return {cid: name for cid, name in rows}


def _summary(total: int, form: SearchForm, place: str, category: str) -> str:
    """What the results are, in words: "12 professionals in Plumbing within 25 km of Austin, TX, United States"."""
    text = f"{total} professional{'s' if total != 1 else ''}"
    if category:
        text += f" in {category}"
    if form.q:
        text += f" matching “{form.q}”"
    if place:
        text += f" within {form.radius} km of {place}"
    return text
