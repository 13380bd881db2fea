"""The embedded search engine: tantivy (Rust, in process, no server), one index directory per kind under `path`.

Tenant isolation: every document carries `tenant_id`, and every query, count, aggregation and suggestion goes
through `_Index.scoped`, which adds a required term on it; nothing else builds a top-level query. Writes replace and
delete documents by their `key`, which is the tenant and the id in one integer (`_doc_key`).

Geography: tantivy has no geo type. A place filter is a lat/lon bounding box over fast fields (two range queries),
then the exact haversine distance (backend.geo.distance_km) of every box hit decides; so a pro in the box's corner
but outside the circle is left out, and the total counts only pros inside the circle.

Best match is computed here with ranking.best_match_score, exactly:
- with a place, every pro inside the circle is a candidate; each one's ceiling (text, distance and static quality
  known, full recency assumed) orders the exact scoring, which stops when the next ceiling cannot reach the page;
- without one, tantivy orders the matches by text relevance (BM25, or nothing when browsing) plus a floor of the
  signals it can add up itself: optional constant-score clauses on an indexed step of the static quality (rating,
  response, verified) and on `last_active` ranges for recency, at most SIGNAL_SLACK below the real signals.
  Candidates come in rounds (the first at least MIN_CANDIDATES): each is scored exactly, and the rounds stop when
  even the last fetched key plus the slack cannot reach the score of the page's last hit. So the page is the exact
  top of the ranking after reading a few hundred matches, not all of them.
Other sorts (distance, rating, price) are exact too: ties on the sort value are all fetched and broken by pro id,
like the Elasticsearch adapter's `sort`.

Writers: tantivy allows one IndexWriter per index directory (a lock file; another process gets LockBusy). A writer
is opened per write batch under a thread lock, committed, and dropped once its merges finish, so the app's inline
jobs, a Celery worker and the `reindex` command can all write, one at a time. When another process holds the lock
longer than LOCK_WAIT_SECONDS, writes raise SearchUnavailable and the indexing job retries. Readers reload after
this process's commits and at most every RELOAD_SECONDS otherwise, to see other processes' commits.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import tantivy
from tantivy import Document, FieldType, Index, Occur, Order, Query, Searcher

from backend.geo import distance_km
from backend.matching import ranking
from backend.matching.adapters.common import (
    MIN_CANDIDATES,
    NAME_ENTRIES,
    PRO_TEXT_FIELDS,
    REQUEST_TEXT_FIELDS,
    WEEKDAY_CODES,
    bounding_box,
    effective_sort,
    fuzzy_edits,
    located,
    merge_vocabulary_and_names,
    prefix_word,
    pro_from_source,
    pro_source,
    query_words,
    request_from_source,
    request_source,
    suggest_names,
    suggest_prefix,
    suggest_vocabulary,
)
from backend.matching.ports import (
    Kind,
    ProDocument,
    ProHit,
    ProQuery,
    ProResults,
    RequestDocument,
    RequestHit,
    RequestQuery,
    RequestResults,
    SearchUnavailable,
    Sort,
)

SCHEMA_VERSION = 4  # part of the directory name: a changed schema starts an empty index, and `reindex` fills it
RELOAD_SECONDS = 0.5
LOCK_WAIT_SECONDS = 2.0  # another process's batch usually commits within milliseconds
WRITER_HEAP_BYTES = 50_000_000
ANALYZER = "folding"
FACET_SIZE = 10_000  # categories of a marketplace: all of them
# Category ids packed in fast fields (see _category_packs): facets of a place count the pros inside its circle from
# these, instead of an aggregation over a set of thousands of ids (slow in tantivy: ~6 µs an id).
CATEGORY_PACKS, PACK_SLOTS, PACK_BITS = 4, 3, 21

# The signal floor (see _signal_floor): steps of the static quality and of recency, and how far below the signals
# the floor may be. The highest static quality: a 5-star shrunk rating, every lead answered, verified.
QUALITY_STEP = 0.05
MAX_QUALITY_STEP = math.ceil((ranking.WEIGHTS.rating + ranking.WEIGHTS.response + ranking.WEIGHTS.verified)
                             / QUALITY_STEP)
RECENCY_STEP = 0.05
SIGNAL_SLACK = QUALITY_STEP + RECENCY_STEP + 1e-4  # + tantivy's f32 scores


def _recency_points(days: float) -> float:
    return ranking.WEIGHTS.recency * ranking.gauss(days, scale=ranking.RECENCY_HALF_DAYS,
                                                   offset=ranking.RECENCY_OFFSET_DAYS)


def _recency_step_days() -> list[float]:
    """The days of inactivity after which recency is worth one more RECENCY_STEP less (by bisection over
    ranking.py's own curve, which only falls with time)."""
    steps = []
    for level in range(1, round(ranking.WEIGHTS.recency / RECENCY_STEP)):
        target = ranking.WEIGHTS.recency - level * RECENCY_STEP
        low, high = 0.0, 100_000.0
        for _ in range(100):
            middle = (low + high) / 2
            low, high = (middle, high) if _recency_points(middle) > target else (low, middle)
        steps.append(low)
    return steps


RECENCY_STEP_DAYS = _recency_step_days()


def _analyzer() -> tantivy.TextAnalyzer:
    # Words of letters and digits, lower case, accents folded: common.fold, as Elasticsearch's mapping does.
    return (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(tantivy.Filter.remove_long(40))
            .filter(tantivy.Filter.lowercase()).filter(tantivy.Filter.ascii_fold()).build())


def _pro_schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("tenant_id", indexed=True, fast=True)
    builder.add_integer_field("key", indexed=True)  # _doc_key(tenant, id): one term per document, to replace it
    builder.add_integer_field("pro_id", indexed=True, fast=True)
    builder.add_unsigned_field("fingerprint_hi", fast=True)  # the fingerprint read without loading documents
    builder.add_unsigned_field("fingerprint_lo", fast=True)
    for name in PRO_TEXT_FIELDS:
        builder.add_text_field(name, tokenizer_name=ANALYZER, index_option="freq")
    builder.add_integer_field("category_ids", indexed=True, fast=True)
    for pack in range(CATEGORY_PACKS):  # category ids readable per document (fast_field_values reads one value)
        builder.add_unsigned_field(f"category_pack_{pack}", fast=True)
    builder.add_boolean_field("category_overflow", fast=True)
    for name in ("lat", "lon", "rating_average", "rating_score", "response_rate", "quality"):
        builder.add_float_field(name, fast=True)
    for name in ("hourly_rate_minor", "rating_count", "radius_km", "last_active"):
        builder.add_integer_field(name, fast=True)
    builder.add_boolean_field("verified", indexed=True, fast=True)
    builder.add_integer_field("quality_step", indexed=True)  # floor(quality / QUALITY_STEP): the signal floor
    builder.add_integer_field("weekdays", indexed=True)  # date.weekday() of each day with hours
    builder.add_integer_field("blocked", indexed=True)  # date.toordinal() of each blocked date
    builder.add_text_field("suggest", tokenizer_name="raw", index_option="basic")
    builder.add_text_field("suggest_name", tokenizer_name="raw", index_option="basic")
    builder.add_bytes_field("source", stored=True)
    return builder.build()


def _request_schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("tenant_id", indexed=True, fast=True)
    builder.add_integer_field("key", indexed=True)
    builder.add_integer_field("request_id", indexed=True, fast=True)
    builder.add_unsigned_field("fingerprint_hi", fast=True)
    builder.add_unsigned_field("fingerprint_lo", fast=True)
    for name in REQUEST_TEXT_FIELDS:
        builder.add_text_field(name, tokenizer_name=ANALYZER, index_option="freq")
    builder.add_integer_field("category_id", indexed=True, fast=True)
    builder.add_float_field("lat", fast=True)
    builder.add_float_field("lon", fast=True)
    builder.add_integer_field("created_at", fast=True)
    builder.add_bytes_field("source", stored=True)
    return builder.build()


def _epoch(moment: datetime) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp())


_EPOCH = datetime(1970, 1, 1)


def _from_epoch(seconds: int) -> datetime:
    return _EPOCH + timedelta(seconds=seconds)


def _doc_key(tenant_id: int, doc_id: int) -> int:
    """One integer per (tenant, id): replacing a document deletes one term, not a query per document."""
    if not (0 <= tenant_id < 2 ** 31 and 0 <= doc_id < 2 ** 32):
        raise ValueError(f"ids out of range for the search key: tenant {tenant_id}, document {doc_id}")
    return tenant_id << 32 | doc_id


_FINGERPRINT = re.compile(r"[0-9a-f]{24}")


def _with_fingerprint(document: Document, fingerprint: str) -> Document:
    """ports.fingerprinted's 24 hex digits as two fast integers (tantivy reads no text fast fields); anything
    else is read from the stored document."""
    if _FINGERPRINT.fullmatch(fingerprint):
        document.add_unsigned("fingerprint_hi", int(fingerprint[:16], 16))
        document.add_unsigned("fingerprint_lo", int(fingerprint[16:], 16))
    return document


def _static_quality(doc: ProDocument) -> float:
    """Best match without text, distance and recency: what a pro's signals are worth at any time."""
    points = ranking.signal_points(doc, None, doc.last_active)
    return sum(value for name, value in points.items() if name != "recency")


def _pro_document(doc: ProDocument) -> Document:
    quality = _static_quality(doc)
    fields: dict[str, Any] = {
        "tenant_id": doc.tenant_id, "key": _doc_key(doc.tenant_id, doc.pro_id), "pro_id": doc.pro_id,
        "name": doc.name, "headline": doc.headline,
        "skills": list(doc.skills), "category_names": list(doc.category_names), "bio": doc.bio,
        "category_ids": list(doc.category_ids), "hourly_rate_minor": doc.hourly_rate_minor,
        "rating_average": float(doc.rating_average), "rating_count": doc.rating_count,
        "rating_score": float(doc.rating_score), "radius_km": doc.radius_km, "verified": doc.verified,
        "last_active": _epoch(doc.last_active), "quality": quality,
        "quality_step": min(MAX_QUALITY_STEP, math.floor(quality / QUALITY_STEP)),
        "weekdays": [WEEKDAY_CODES.index(day) for day in doc.available_days if day in WEEKDAY_CODES],
        "blocked": [date.fromisoformat(day).toordinal() for day in doc.blocked_dates],
        "suggest": suggest_vocabulary(doc), "suggest_name": suggest_names(doc),
        "source": json.dumps(pro_source(doc)).encode(),
    }
    if doc.response_rate is not None:  # absent: ranking.NEUTRAL_RESPONSE
        fields["response_rate"] = float(doc.response_rate)
    if (point := located(doc)) is not None:
        fields["lat"], fields["lon"] = point
    document = Document(**{name: value for name, value in fields.items() if value != []})
    packs = _category_packs(doc.category_ids)
    for pack, value in enumerate(packs or []):
        document.add_unsigned(f"category_pack_{pack}", value)
    document.add_boolean("category_overflow", packs is None)
    return _with_fingerprint(document, doc.fingerprint)


def _category_packs(category_ids: Sequence[int]) -> list[int] | None:
    """The category ids, PACK_SLOTS to an unsigned integer (PACK_BITS each); None when they do not fit (more than
    CATEGORY_PACKS * PACK_SLOTS, or an id out of range): facets then count those pros the slow way."""
    ids = sorted(set(category_ids))
    if len(ids) > CATEGORY_PACKS * PACK_SLOTS or any(not 0 < id_ < 2 ** PACK_BITS for id_ in ids):
        return None
    return [sum(id_ << (PACK_BITS * slot) for slot, id_ in enumerate(ids[start:start + PACK_SLOTS]))
            for start in range(0, len(ids), PACK_SLOTS)]


def _unpack_categories(packs: Iterable[int | None]) -> list[int]:
    mask = 2 ** PACK_BITS - 1
    return [pack >> (PACK_BITS * slot) & mask for pack in packs if pack
            for slot in range(PACK_SLOTS) if pack >> (PACK_BITS * slot) & mask]


def _request_document(doc: RequestDocument) -> Document:
    fields: dict[str, Any] = {
        "tenant_id": doc.tenant_id, "key": _doc_key(doc.tenant_id, doc.request_id), "request_id": doc.request_id,
        "title": doc.title,
        "description": doc.description, "category_name": doc.category_name, "category_id": doc.category_id,
        "created_at": _epoch(doc.created_at), "source": json.dumps(request_source(doc)).encode(),
    }
    if (point := located(doc)) is not None:
        fields["lat"], fields["lon"] = point
    return _with_fingerprint(Document(**fields), doc.fingerprint)


class _Index:
    """One index directory: its schema, the single writer, and readers that see recent commits."""

    def __init__(self, directory: Path, schema: tantivy.Schema):
        directory.mkdir(parents=True, exist_ok=True)
        self.schema = schema
        self.analyzer = _analyzer()
        self.index = Index(schema, path=str(directory), reuse=True)
        self.index.register_tokenizer(ANALYZER, self.analyzer)
        self.index.config_reader(reload_policy="manual")
        self._write_lock = threading.Lock()
        self._reloaded = time.monotonic()

    def scoped(self, tenant_id: int, *clauses: tuple[Occur, Query]) -> Query:
        """The tenant's documents matching every clause. EVERY query of this engine is built here."""
        return Query.boolean_query([(Occur.Must, self.filter(Query.term_query(self.schema, "tenant_id", tenant_id))),
                                    *clauses])

    @staticmethod
    def filter(query: Query) -> Query:
        """A clause that selects without scoring (filters add nothing to the text relevance)."""
        return Query.const_score_query(query, 0.0)

    def searcher(self) -> Searcher:
        if time.monotonic() - self._reloaded > RELOAD_SECONDS:
            self.index.reload()
            self._reloaded = time.monotonic()
        return self.index.searcher()

    def write(self, change: Callable[[tantivy.IndexWriter], object]) -> None:
        """Apply `change` with this index's one writer and commit; visible to this process's next search."""
        with self._write_lock:
            writer = self._open_writer()
            try:
                change(writer)
                writer.commit()
            except BaseException:
                with contextlib.suppress(ValueError):  # a writer tantivy killed cannot roll back either
                    writer.rollback()
                raise
            finally:
                writer.wait_merging_threads()  # lets merges finish, then drops the writer and its lock
            self.index.reload()
            self._reloaded = time.monotonic()

    def _open_writer(self) -> tantivy.IndexWriter:
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                return self.index.writer(heap_size=WRITER_HEAP_BYTES, num_threads=1)
            except ValueError as exc:
                if "LockBusy" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise SearchUnavailable("the search index is being written by another process") from exc
                time.sleep(0.05)

    def text_query(self, fields: dict[str, float], text: str) -> Query | None:
        """common.py's keyword rules: every word in some field (fuzzy, the last one also as a prefix); a word
        scores its best field (BM25, +1 for a fuzzy or prefix match) times the field's boost."""
        query_terms = [token for word in query_words(text) for token in self.analyzer.analyze(word)]
        if not query_terms:
            return None
        prefix = prefix_word(query_terms)
        must = []
        for position, term in enumerate(query_terms):
            last = position == len(query_terms) - 1
            per_field = []
            for field, boost in fields.items():
                options = [(Occur.Should, Query.term_query(self.schema, field, term))]
                if edits := fuzzy_edits(term):
                    options.append((Occur.Should, Query.fuzzy_term_query(self.schema, field, term, distance=edits)))
                if last and prefix:
                    options.append((Occur.Should, Query.fuzzy_term_query(self.schema, field, prefix, distance=0,
                                                                         prefix=True)))
                per_field.append(Query.boost_query(Query.boolean_query(options), boost))
            must.append((Occur.Must, Query.disjunction_max_query(per_field)))
        return Query.boolean_query(must)

    def count(self, searcher: Searcher, query: Query) -> int:
        return searcher.search(query, limit=1, count=True).count

    def every(self, searcher: Searcher, query: Query) -> list[tuple[float, tantivy.DocAddress]]:
        """Every hit of `query` with its score."""
        total = self.count(searcher, query)
        return [(score, address) for score, address in searcher.search(query, limit=total, count=False).hits] \
            if total else []

    def bbox_clauses(self, origin: tuple[float, float], km: float) -> list[tuple[Occur, Query]]:
        min_lat, max_lat, min_lon, max_lon = bounding_box(*origin, km)
        latitude = Query.range_query(self.schema, "lat", FieldType.Float, min_lat, max_lat)
        if min_lon <= max_lon:
            longitude = Query.range_query(self.schema, "lon", FieldType.Float, min_lon, max_lon)
        else:  # the box wraps around the antimeridian
            longitude = Query.boolean_query([
                (Occur.Should, Query.range_query(self.schema, "lon", FieldType.Float, min_lon, 180.0)),
                (Occur.Should, Query.range_query(self.schema, "lon", FieldType.Float, -180.0, max_lon))])
        return [(Occur.Must, self.filter(latitude)), (Occur.Must, self.filter(longitude))]


@dataclass(frozen=True, slots=True)
class _Inside:
    """A pro within a place's radius, before ranking."""

    address: tantivy.DocAddress
    text_score: float
    distance_km: float
    pro_id: int


@dataclass(slots=True)
class _Candidate:
    """A pro while ranking: the values best match and the sorts read (ranking.Ranked), from fast fields."""

    address: tantivy.DocAddress
    text_score: float
    pro_id: int
    rating_score: float
    response_rate: float | None
    verified: bool
    last_active: datetime
    rating_count: int
    hourly_rate_minor: int
    distance_km: float | None = None
    score: float = 0.0


class TantivyEngine:
    """SearchEngine over tantivy indexes in `path` (see the module docstring)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._pros = _Index(self.path / f"pros-v{SCHEMA_VERSION}", _pro_schema())
        self._requests = _Index(self.path / f"requests-v{SCHEMA_VERSION}", _request_schema())

    # -- writes -------------------------------------------------------------------------------------------------

    def upsert_pros(self, docs: Sequence[ProDocument]) -> None:
        rows = {_doc_key(doc.tenant_id, doc.pro_id): _pro_document(doc) for doc in docs}  # the last one wins
        if rows:
            self._pros.write(lambda writer: self._replace(writer, rows))

    def delete_pros(self, tenant_id: int, pro_ids: Iterable[int]) -> None:
        self._delete(self._pros, tenant_id, pro_ids)

    def upsert_requests(self, docs: Sequence[RequestDocument]) -> None:
        rows = {_doc_key(doc.tenant_id, doc.request_id): _request_document(doc) for doc in docs}
        if rows:
            self._requests.write(lambda writer: self._replace(writer, rows))

    def delete_requests(self, tenant_id: int, request_ids: Iterable[int]) -> None:
        self._delete(self._requests, tenant_id, request_ids)

    def clear_tenant(self, tenant_id: int) -> None:
        for index in (self._pros, self._requests):
            index.write(lambda writer, index=index: writer.delete_documents_by_query(index.scoped(tenant_id)))

    @staticmethod
    def _replace(writer: tantivy.IndexWriter, rows: dict[int, Document]) -> None:
        # Deletes apply to documents added before them in the same commit: delete, then add (one commit).
        for key in rows:
            writer.delete_documents_by_term("key", key)
        for document in rows.values():
            writer.add_document(document)

    @staticmethod
    def _delete(index: _Index, tenant_id: int, doc_ids: Iterable[int]) -> None:
        keys = sorted({_doc_key(tenant_id, doc_id) for doc_id in doc_ids})  # the tenant is part of the key
        if keys:
            index.write(lambda writer: [writer.delete_documents_by_term("key", key) for key in keys])

    # -- professionals ------------------------------------------------------------------------------------------

    def search_pros(self, tenant_id: int, query: ProQuery) -> ProResults:
        index = self._pros
        searcher = index.searcher()
        now = query.now or datetime.now(UTC).replace(tzinfo=None)
        sort = effective_sort(query.sort, query.origin)
        text = index.text_query(PRO_TEXT_FIELDS, query.text)
        clauses = ([(Occur.Must, text)] if text is not None else []) + self._pro_filters(query)
        category = ([(Occur.Must, index.filter(Query.term_query(index.schema, "category_ids", query.category_id)))]
                    if query.category_id is not None else [])
        needed = query.offset + query.limit
        if query.origin is not None:
            return self._search_place(searcher, tenant_id, query, clauses, category, text is not None, sort, now)
        matching = index.scoped(tenant_id, *clauses, *category)
        total = index.count(searcher, matching)
        facets = self._category_counts(searcher, index.scoped(tenant_id, *clauses))
        if total == 0 or needed == 0:
            return ProResults(total=total, hits=[], category_counts=facets)
        if sort is Sort.BEST:
            candidates = self._best_candidates(searcher, matching, needed, now, text is not None, text, tenant_id)
        else:
            candidates = self._sorted_candidates(searcher, matching, needed, sort, tenant_id, clauses + category)
        page = self._ordered(candidates, sort)[query.offset:needed]
        return ProResults(total=total, hits=self._pro_hits(searcher, page, sort), category_counts=facets)

    def _pro_filters(self, query: ProQuery) -> list[tuple[Occur, Query]]:
        """Every filter of the query except the category and the place (facets leave the category out; the place
        is a box, then exact distances)."""
        schema, only = self._pros.schema, self._pros.filter
        clauses: list[tuple[Occur, Query]] = []
        if query.price_min_minor is not None or query.price_max_minor is not None:
            clauses.append((Occur.Must, only(Query.range_query(schema, "hourly_rate_minor", FieldType.Integer,
                                                               query.price_min_minor, query.price_max_minor))))
        if query.min_rating is not None:
            clauses.append((Occur.Must, only(Query.range_query(schema, "rating_average", FieldType.Float,
                                                               float(query.min_rating), None))))
            clauses.append((Occur.Must, only(Query.range_query(schema, "rating_count", FieldType.Integer, 1, None))))
        if query.verified_only:
            clauses.append((Occur.Must, only(Query.term_query(schema, "verified", True))))
        if query.available_on is not None:
            clauses.append((Occur.Must, only(Query.term_query(schema, "weekdays", query.available_on.weekday()))))
            clauses.append((Occur.MustNot, Query.term_query(schema, "blocked", query.available_on.toordinal())))
        if query.exclude_ids:
            clauses.append((Occur.MustNot, Query.term_set_query(schema, "pro_id", sorted(set(query.exclude_ids)))))
        return clauses

    def _category_counts(self, searcher: Searcher, query: Query) -> dict[int, int]:
        result = searcher.aggregate(query, {"categories": {"terms": {"field": "category_ids", "size": FACET_SIZE}}})
        return {int(bucket["key"]): int(bucket["doc_count"]) for bucket in result["categories"]["buckets"]}

    def _search_place(self, searcher: Searcher, tenant_id: int, query: ProQuery, clauses: list,
                      category: list, has_text: bool, sort: Sort, now: datetime) -> ProResults:
        """Every pro in the place's box, kept when within the radius (and, for instant match, when their own
        radius reaches the place): exact totals, facets and order."""
        index = self._pros
        assert query.origin is not None
        radius = query.radius_km
        if query.serves_origin:  # nobody reaches farther than the longest service radius: a smaller box
            longest = searcher.search(index.scoped(tenant_id, *clauses), limit=1, order_by_field="radius_km",
                                      order=Order.Desc).hits
            radius = min(radius, float(longest[0][0])) if longest else 0.0
        boxed = [*clauses, *index.bbox_clauses(query.origin, radius)]
        hits = index.every(searcher, index.scoped(tenant_id, *boxed))
        addresses = [address for _, address in hits]
        values = self._fast(searcher, addresses, ("lat", "lon", "radius_km", "pro_id"))
        inside: list[_Inside] = []
        for (score, address), lat, lon, reach, pro_id in zip(hits, *values.values(), strict=True):
            distance = distance_km(query.origin, (lat, lon))
            if distance <= query.radius_km and (not query.serves_origin or distance <= reach):
                inside.append(_Inside(address, score if has_text else 1.0, distance, int(pro_id)))
        facets = self._facets_of(searcher, tenant_id, inside)
        if category:
            in_category = {_key(address) for _, address in index.every(searcher, index.scoped(
                tenant_id, *boxed, *category))}
            inside = [row for row in inside if _key(row.address) in in_category]
        needed = query.offset + query.limit
        if sort is Sort.BEST:
            ranked = self._ordered(self._best_in_place(searcher, inside, needed, now), sort)
        else:
            ranked = self._sorted_in_place(searcher, inside, needed, sort, now)
        page = ranked[query.offset:needed]
        return ProResults(total=len(inside), hits=self._pro_hits(searcher, page, sort), category_counts=facets)

    def _facets_of(self, searcher: Searcher, tenant_id: int, inside: list[_Inside]) -> dict[int, int]:
        """Pros per category among `inside`, from the packed category ids."""
        if not inside:
            return {}
        names = [f"category_pack_{pack}" for pack in range(CATEGORY_PACKS)] + ["category_overflow"]
        values = self._fast(searcher, [row.address for row in inside], names)
        if any(values["category_overflow"]):
            index = self._pros
            return self._category_counts(searcher, index.scoped(tenant_id, (Occur.Must, Query.term_set_query(
                index.schema, "pro_id", sorted(row.pro_id for row in inside)))))
        counts: dict[int, int] = {}
        for packs in zip(*(values[name] for name in names[:-1]), strict=True):
            for category_id in _unpack_categories(packs):
                counts[category_id] = counts.get(category_id, 0) + 1
        return counts

    def _best_in_place(self, searcher: Searcher, inside: list[_Inside], needed: int,
                       now: datetime) -> list[_Candidate]:
        """Scored exactly: enough of `inside` that the top `needed` are among them. Each pro's ceiling (its text,
        distance and static quality, plus full recency) orders the scoring, which stops once the next ceiling
        cannot reach the page."""
        if not inside or needed == 0:
            return []
        qualities = self._fast(searcher, [row.address for row in inside], ("quality",))["quality"]
        ceilings = [ranking.WEIGHTS.text * row.text_score + quality + ranking.WEIGHTS.recency
                    + ranking.WEIGHTS.distance * ranking.gauss(row.distance_km, scale=ranking.DISTANCE_HALF_KM)
                    for row, quality in zip(inside, qualities, strict=True)]
        order = sorted(range(len(inside)), key=ceilings.__getitem__, reverse=True)
        scored: list[_Candidate] = []
        position, batch = 0, max(MIN_CANDIDATES, needed)
        while position < len(order):
            chunk = [inside[i] for i in order[position:position + batch]]
            position += batch
            candidates = self._candidates(searcher, [(row.text_score, row.address) for row in chunk], now, True)
            for candidate, row in zip(candidates, chunk, strict=True):
                candidate.distance_km = row.distance_km
                candidate.score = ranking.best_match_score(candidate.text_score, candidate, row.distance_km, now)
            scored += candidates
            if position < len(order) and len(scored) >= needed:
                page_floor = sorted((candidate.score for candidate in scored), reverse=True)[needed - 1]
                if ceilings[order[position]] + 1e-9 < page_floor:
                    break
            batch *= 4
        return scored

    def _sorted_in_place(self, searcher: Searcher, inside: list[_Inside], needed: int, sort: Sort,
                         now: datetime) -> list[_Candidate]:
        """Distance, rating or price order of `inside`, read from fast fields; candidates built for the page."""
        if sort is Sort.DISTANCE:
            order = sorted(range(len(inside)), key=lambda i: (inside[i].distance_km, inside[i].pro_id))
        else:
            addresses = [row.address for row in inside]
            if sort is Sort.RATING:
                values = self._fast(searcher, addresses, ("rating_score", "rating_count"))
                keys = [(-score, -count, row.pro_id) for score, count, row in zip(
                    values["rating_score"], values["rating_count"], inside, strict=True)]
            else:
                sign = 1 if sort is Sort.PRICE_LOW else -1
                rates = self._fast(searcher, addresses, ("hourly_rate_minor",))["hourly_rate_minor"]
                keys = [(sign * rate, row.pro_id) for rate, row in zip(rates, inside, strict=True)]
            order = sorted(range(len(inside)), key=keys.__getitem__)
        chosen = [inside[i] for i in order[:needed]]
        candidates = self._candidates(searcher, [(row.text_score, row.address) for row in chosen], now, True)
        for candidate, row in zip(candidates, chosen, strict=True):
            candidate.distance_km = row.distance_km
        return candidates

    def _best_candidates(self, searcher: Searcher, matching: Query, needed: int, now: datetime,
                         has_text: bool, text: Query | None, tenant_id: int) -> list[_Candidate]:
        """Enough candidates that the top `needed` by best match are among them (module docstring)."""
        index = self._pros
        # Phase one: tantivy orders by text relevance plus a floor of the signals (within SIGNAL_SLACK of them).
        ordered = Query.boolean_query([(Occur.Must, Query.boost_query(matching, ranking.WEIGHTS.text)),
                                       *self._signal_floor(now)])
        fetch = max(MIN_CANDIDATES, needed)
        while True:
            result = searcher.search(ordered, limit=fetch, count=True)
            keyed = [(1.0, address) for _, address in result.hits]
            if has_text:
                assert text is not None
                keyed = self._text_scores(searcher, tenant_id, text, keyed)
            candidates = self._candidates(searcher, keyed, now, True)
            for candidate in candidates:
                candidate.score = ranking.best_match_score(candidate.text_score, candidate, None, now)
            if len(keyed) >= result.count:
                return candidates
            # No pro left out can score more than the last one fetched plus the floor's slack.
            ceiling = result.hits[-1][0] + (0.0 if has_text else ranking.WEIGHTS.text) + SIGNAL_SLACK
            page_floor = sorted((candidate.score for candidate in candidates), reverse=True)[needed - 1]
            if ceiling < page_floor:
                return candidates
            fetch *= 4

    def _signal_floor(self, now: datetime) -> list[tuple[Occur, Query]]:
        """Optional clauses whose scores add up to a floor of a pro's signals, at most SIGNAL_SLACK below them:
        the static quality in QUALITY_STEP steps (an indexed step number), recency in RECENCY_STEP steps (last
        active after the day each step is lost)."""
        schema = self._pros.schema
        clauses = [(Occur.Should, Query.const_score_query(Query.term_query(schema, "quality_step", step),
                                                          step * QUALITY_STEP))
                   for step in range(1, MAX_QUALITY_STEP + 1)]
        now_seconds = _epoch(now)
        for days in RECENCY_STEP_DAYS:
            since = math.floor(now_seconds - days * 86400)
            clauses.append((Occur.Should, Query.const_score_query(Query.range_query(
                schema, "last_active", FieldType.Integer, since, None, include_lower=False), RECENCY_STEP)))
        return clauses

    def _text_scores(self, searcher: Searcher, tenant_id: int, text: Query,
                     keyed: list[tuple[float, tantivy.DocAddress]]) -> list[tuple[float, tantivy.DocAddress]]:
        """The text relevance alone (BM25) of the fetched pros: phase one's scores include the signals' floor."""
        index = self._pros
        pro_ids = self._fast(searcher, [address for _, address in keyed], ("pro_id",))["pro_id"]
        relevant = searcher.search(index.scoped(tenant_id, (Occur.Must, text), (Occur.Must, index.filter(
            Query.term_set_query(index.schema, "pro_id", sorted(set(pro_ids)))))), limit=len(keyed), count=False)
        scores = {_key(address): score for score, address in relevant.hits}
        return [(scores[_key(address)], address) for _, address in keyed]

    def _sorted_candidates(self, searcher: Searcher, matching: Query, needed: int, sort: Sort, tenant_id: int,
                           clauses: list) -> list[_Candidate]:
        """The first `needed` by a sort field, plus every pro tied with the last of them (pro id breaks ties)."""
        index = self._pros
        field, order = {Sort.RATING: ("rating_score", Order.Desc), Sort.PRICE_LOW: ("hourly_rate_minor", Order.Asc),
                        Sort.PRICE_HIGH: ("hourly_rate_minor", Order.Desc)}[sort]
        field_type = FieldType.Float if field == "rating_score" else FieldType.Integer
        result = searcher.search(matching, limit=needed, count=True, order_by_field=field, order=order)
        keyed = [(0.0, address) for _, address in result.hits]
        if len(keyed) < result.count:
            boundary = result.hits[-1][0]
            ties = index.every(searcher, index.scoped(tenant_id, *clauses, (Occur.Must, index.filter(
                Query.range_query(index.schema, field, field_type, boundary, boundary)))))
            seen = {_key(address) for _, address in keyed}
            keyed += [(0.0, address) for _, address in ties if _key(address) not in seen]
        return self._candidates(searcher, keyed, None, False)

    def _candidates(self, searcher: Searcher, keyed: list[tuple[float, tantivy.DocAddress]], now: datetime | None,
                    has_text: bool) -> list[_Candidate]:
        addresses = [address for _, address in keyed]
        values = self._fast(searcher, addresses, ("pro_id", "rating_score", "response_rate", "verified",
                                                  "last_active", "rating_count", "hourly_rate_minor"))
        return [
            _Candidate(address=address, text_score=score if has_text else 1.0, pro_id=int(pro_id),
                       rating_score=float(rating_score), response_rate=response_rate, verified=bool(verified),
                       last_active=_from_epoch(last_active), rating_count=int(rating_count),
                       hourly_rate_minor=int(hourly_rate))
            for (score, address), pro_id, rating_score, response_rate, verified, last_active, rating_count,
            hourly_rate in zip(keyed, *values.values(), strict=True)]

    @staticmethod
    def _fast(searcher: Searcher, addresses: list[tantivy.DocAddress], names: Sequence[str]) -> dict[str, list]:
        if not addresses:
            return {name: [] for name in names}
        return {name: searcher.fast_field_values(name, addresses) for name in names}

    @staticmethod
    def _ordered(candidates: list[_Candidate], sort: Sort) -> list[_Candidate]:
        """The Elasticsearch adapter's `sort` clauses, in Python: the value, then the pro id."""
        if sort is Sort.DISTANCE:
            key: Callable[[_Candidate], tuple] = lambda c: (c.distance_km, c.pro_id)  # noqa: E731
        elif sort is Sort.RATING:
            key = lambda c: (-c.rating_score, -c.rating_count, c.pro_id)  # noqa: E731
        elif sort is Sort.PRICE_LOW:
            key = lambda c: (c.hourly_rate_minor, c.pro_id)  # noqa: E731
        elif sort is Sort.PRICE_HIGH:
            key = lambda c: (-c.hourly_rate_minor, c.pro_id)  # noqa: E731
        else:
            key = lambda c: (-c.score, c.pro_id)  # noqa: E731
        return sorted(candidates, key=key)

    @staticmethod
    def _pro_hits(searcher: Searcher, page: list[_Candidate], sort: Sort) -> list[ProHit]:
        hits = []
        for candidate in page:
            doc = pro_from_source(json.loads(searcher.doc(candidate.address)["source"][0]))
            score = {Sort.DISTANCE: candidate.distance_km, Sort.RATING: candidate.rating_score,
                     Sort.PRICE_LOW: float(candidate.hourly_rate_minor),
                     Sort.PRICE_HIGH: float(candidate.hourly_rate_minor)}.get(sort, candidate.score)
            hits.append(ProHit(doc=doc, score=float(score), distance_km=candidate.distance_km))
        return hits

    # -- requests -----------------------------------------------------------------------------------------------

    def search_requests(self, tenant_id: int, query: RequestQuery) -> RequestResults:
        """Open requests: by text relevance when there are keywords, newest first otherwise (request id breaks
        ties), within the radius when there is a place. A tenant's open requests are few: ranked all at once."""
        index = self._requests
        searcher = index.searcher()
        text = index.text_query(REQUEST_TEXT_FIELDS, query.text)
        clauses = [(Occur.Must, text)] if text is not None else []
        if query.category_ids:
            clauses.append((Occur.Must, index.filter(Query.term_set_query(index.schema, "category_id",
                                                                          sorted(set(query.category_ids))))))
        if query.origin is not None:
            clauses += index.bbox_clauses(query.origin, query.radius_km)
        hits = index.every(searcher, index.scoped(tenant_id, *clauses))
        addresses = [address for _, address in hits]
        values = self._fast(searcher, addresses, ("lat", "lon", "created_at", "request_id"))
        rows = []
        for (score, address), lat, lon, created, request_id in zip(hits, *values.values(), strict=True):
            distance = None
            if query.origin is not None:
                distance = distance_km(query.origin, (lat, lon))
                if distance > query.radius_km:
                    continue
            rows.append((-(score if text is not None else 0.0), -created, -request_id, score, address, distance))
        rows.sort(key=lambda row: row[:3])
        page = rows[query.offset:query.offset + query.limit]
        return RequestResults(total=len(rows), hits=[
            RequestHit(doc=request_from_source(json.loads(searcher.doc(address)["source"][0])),
                       score=float(score) if text is not None else 0.0, distance_km=distance)
            for *_, score, address, distance in page])

    # -- suggestions, consistency -------------------------------------------------------------------------------

    def suggest(self, tenant_id: int, prefix: str, limit: int = 8) -> list[str]:
        start = suggest_prefix(prefix)
        if not start or limit <= 0:
            return []
        searcher = self._pros.searcher()
        mine = self._pros.scoped(tenant_id)
        vocabulary = searcher.terms_with_prefix("suggest", start, filter_query=mine)
        names = searcher.terms_with_prefix("suggest_name", start, filter_query=mine, limit=NAME_ENTRIES)
        return merge_vocabulary_and_names(vocabulary, names, limit)

    def fingerprints(self, tenant_id: int, kind: Kind) -> dict[int, str]:
        index, id_field = (self._pros, "pro_id") if kind is Kind.PRO else (self._requests, "request_id")
        searcher = index.searcher()
        addresses = [address for _, address in index.every(searcher, index.scoped(tenant_id))]
        values = self._fast(searcher, addresses, (id_field, "fingerprint_hi", "fingerprint_lo"))
        result = {}
        for address, doc_id, high, low in zip(addresses, *values.values(), strict=True):
            if high is None or low is None:
                result[int(doc_id)] = json.loads(searcher.doc(address)["source"][0])["fingerprint"]
            else:
                result[int(doc_id)] = f"{high:016x}{low:08x}"
        return result

    def close(self) -> None:
        """Nothing stays open between calls: each write batch drops its writer (and the lock) when done."""


def _key(address: tantivy.DocAddress) -> tuple[int, int]:
    return (address.segment_ord, address.doc)

