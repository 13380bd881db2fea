"""The search engine port and what flows through it: the documents indexed, the queries asked, the results.

Two adapters implement `SearchEngine` (`adapters/tantivy_engine.py`, embedded, the default; `adapters/elastic.py`,
Elasticsearch, when ELASTICSEARCH_URL is set). Every method takes the tenant: an adapter never answers a query with
another tenant's documents. Ranking (the weights, the "why" line) lives in `ranking.py`, shared by both.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from sqlmodel import Session


class SearchUnavailable(Exception):
    """The engine cannot be reached or refused the request (Elasticsearch down, the index locked by another
    writer). Searching shows a clear message; indexing jobs retry; posting a request goes on without instant
    matching."""


class Sort(StrEnum):
    BEST = "best"  # ranking.py: text relevance + distance, rating, response, verification, recency
    DISTANCE = "distance"  # nearest first (needs a place; best match without one)
    RATING = "rating"  # shrunk rating, highest first
    PRICE_LOW = "price"  # hourly rate, lowest first
    PRICE_HIGH = "price_desc"


@dataclass(frozen=True)
class ProDocument:
    """One professional as the index holds them. Built from the database by `documents.py`; only eligible pros
    (active, email verified, a headline, at least one category) have one."""

    tenant_id: int
    pro_id: int
    name: str
    headline: str
    bio: str
    skills: list[str]
    category_ids: list[int]
    category_names: list[str]
    city: str  # the place's label
    latitude: float | None
    longitude: float | None
    radius_km: int  # how far they travel
    hourly_rate_minor: int
    currency: str
    verified: bool
    avatar_url: str
    rating_average: float  # 0.0 without reviews
    rating_count: int
    rating_score: float  # the shrunk (Bayesian) rating, reviews.rules.bayesian_score; PRIOR_MEAN without reviews
    completed_jobs: int
    response_rate: float | None  # share of leads answered (quoted or declined), 0..1; None: no leads yet
    median_quote_minutes: int | None  # median time from a request to this pro's quote; None: never quoted
    available_days: list[str]  # weekday codes ("mon", ...) with hours
    blocked_dates: list[str]  # ISO dates they are not available
    last_active: datetime  # naive UTC
    fingerprint: str = ""  # fingerprinted(): a hash of the fields above; the consistency check compares them


@dataclass(frozen=True)
class RequestDocument:
    """An open service request, for professionals browsing work. Only open, unexpired requests are indexed."""

    tenant_id: int
    request_id: int
    client_id: int
    title: str
    description: str
    category_id: int
    category_name: str
    city: str
    latitude: float | None
    longitude: float | None
    budget_min_minor: int
    budget_max_minor: int
    currency: str
    preferred_start: date | None
    created_at: datetime
    expires_at: datetime
    fingerprint: str = ""


@dataclass(frozen=True)
class ProQuery:
    text: str = ""  # keywords; "" browses
    category_id: int | None = None  # a filter; facet counts ignore it (so other categories still show counts)
    origin: tuple[float, float] | None = None  # (lat, lon) of the chosen place
    radius_km: float = 25.0  # with origin: the pro is within this distance of it
    serves_origin: bool = False  # with origin: also the pro's own service radius reaches it (instant match)
    price_min_minor: int | None = None
    price_max_minor: int | None = None
    min_rating: float | None = None  # rating_average at least this (pros without reviews are left out)
    verified_only: bool = False
    available_on: date | None = None  # works that weekday and has not blocked that date
    exclude_ids: tuple[int, ...] = ()
    sort: Sort = Sort.BEST
    offset: int = 0
    limit: int = 20
    now: datetime | None = None  # recency is measured from here (naive UTC); None: now


@dataclass(frozen=True)
class ProHit:
    doc: ProDocument
    score: float  # ranking.best_match_score for Sort.BEST; the sort key otherwise
    distance_km: float | None  # from the query's origin, when it has one and the pro a location


@dataclass(frozen=True)
class ProResults:
    total: int  # every pro matching the query (all pages)
    hits: list[ProHit]
    category_counts: dict[int, int] = field(default_factory=dict)  # under every filter except the category


@dataclass(frozen=True)
class RequestQuery:
    text: str = ""
    category_ids: tuple[int, ...] = ()  # () = any
    origin: tuple[float, float] | None = None
    radius_km: float = 25.0
    offset: int = 0
    limit: int = 20


@dataclass(frozen=True)
class RequestHit:
    doc: RequestDocument
    score: float
    distance_km: float | None


@dataclass(frozen=True)
class RequestResults:
    total: int
    hits: list[RequestHit]


Doc = TypeVar("Doc", ProDocument, RequestDocument)


def fingerprinted(doc: Doc) -> Doc:
    """The document with its fingerprint set: a hash of every other field."""
    fields = asdict(doc)
    fields.pop("fingerprint")
    digest = hashlib.blake2b(json.dumps(fields, sort_keys=True, default=str).encode(), digest_size=12)
    return replace(doc, fingerprint=digest.hexdigest())


class Kind(StrEnum):
    PRO = "pro"
    REQUEST = "request"


class SearchEngine(Protocol):
    """Writes are idempotent (an upsert replaces the document with the same tenant and id) and visible to the
    next search once the call returns."""

    def upsert_pros(self, docs: Sequence[ProDocument]) -> None: ...

    def delete_pros(self, tenant_id: int, pro_ids: Iterable[int]) -> None: ...

    def upsert_requests(self, docs: Sequence[RequestDocument]) -> None: ...

    def delete_requests(self, tenant_id: int, request_ids: Iterable[int]) -> None: ...

    def clear_tenant(self, tenant_id: int) -> None:
        """Remove every document of the tenant (a full reindex starts here)."""

    def search_pros(self, tenant_id: int, query: ProQuery) -> ProResults: ...

    def search_requests(self, tenant_id: int, query: RequestQuery) -> RequestResults: ...

    def suggest(self, tenant_id: int, prefix: str, limit: int = 8) -> list[str]:
        """Search-as-you-type: skills, category names, headlines' words and pro names of this tenant that start
        with (the last word of) `prefix`, most frequent first, deduplicated case-insensitively."""

    def fingerprints(self, tenant_id: int, kind: Kind) -> dict[int, str]:
        """id -> fingerprint of every document of the tenant (the consistency check)."""

    def close(self) -> None: ...


class ProSignals(Protocol):
    """What services above matching know about professionals (orders: jobs and responsiveness; reviews: ratings).
    bootstrap passes matching one implementation per source; each returns, per pro id asked, some of these keys
    of ProDocument: rating_average, rating_count, rating_score (reviews); completed_jobs, response_rate,
    median_quote_minutes, last_quote_at (orders). Missing keys keep their defaults."""

    def pro_signals(self, session: Session, pro_ids: Sequence[int]) -> dict[int, dict[str, Any]]: ...


class RequestSource(Protocol):
    """Open service requests as documents (orders implements it: requests are orders' tables)."""

    def request_document(self, tenant_id: int, request_id: int) -> RequestDocument | None:
        """The request's document, or None when it should not be in the index (closed, expired, gone)."""

    def open_request_documents(self, tenant_id: int) -> list[RequestDocument]: ...
