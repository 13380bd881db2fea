"""The embedded search engine: tantivy (Rust, in process, no server), one index directory per kind under `path`.

Tenant isolation: every document carries `tenant_id`, and every query, count, aggregation, suggestion and delete
goes through `_Index.scoped`, which adds a required term on it. Nothing else builds a top-level query.

Geography: tantivy has no geo type. A place filter is a lat/lon bounding box over fast fields (two range queries),
then the exact haversine distance (backend.geo.distance_km) of every box hit decides; so a pro in the box's corner
but outside the circle is left out, and the total counts only pros inside the circle.

Best match is computed here with ranking.best_match_score, exactly:
- with a place, every pro in the box is a candidate (few: a city and its radius), scored and sorted;
- without one, candidates come in rounds ordered by a key whose remainder is bounded: BM25 (the rest of the
  score, ranking's signals, is at most MAX_SIGNALS) or, browsing, the static `quality` field (rating, response,
  verified: all but recency, at most WEIGHTS.recency). A round fetches the top K (at least MIN_CANDIDATES), and stops
  when even the K-th fetched key plus the largest remainder cannot reach the score of the page's last hit; else it
  fetches four times more. The page is the exact top of the ranking, without reading every match.
Other sorts (distance, rating, price) are exact too: ties on the sort value are all fetched and broken by pro id,
like the Elasticsearch adapter's `sort`.

Writers: tantivy allows one IndexWriter per index directory (a lock file; another process gets LockBusy). A writer
is opened per write batch under a thread lock, committed, and dropped once its merges finish, so the app's inline
jobs, a Celery worker and the `reindex` command can all write, one at a time. When another process holds the lock
longer than LOCK_WAIT_SECONDS, writes raise SearchUnavailable and the indexing job retries. Readers reload after
this process's commits and at most every RELOAD_SECONDS otherwise, to see other processes' commits.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import tantivy
from tantivy import Document, FieldType, Index, Occur, Order, Query, Searcher

from backend.geo import distance_km
from backend.matching import ranking
from backend.matching.adapters.common import (
    MIN_CANDIDATES,
    PRO_TEXT_FIELDS,
    REQUEST_TEXT_FIELDS,
    WEEKDAY_CODES,
    bounding_box,
    effective_sort,
    fuzzy_edits,
    located,
    merge_suggestions,
    prefix_word,
    pro_from_source,
    pro_source,
    query_words,
    request_from_source,
    request_source,
    suggest_entries,
    suggest_prefix,
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

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1  # part of the directory name: a changed schema starts an empty index, and `reindex` fills it
RELOAD_SECONDS = 0.5
LOCK_WAIT_SECONDS = 2.0  # another process's batch usually commits within milliseconds
WRITER_HEAP_BYTES = 50_000_000
ANALYZER = "folding"
# The largest total of the signals after text (ranking.py): a shrunk rating is at most 5 stars, a rate at most 1.
MAX_SIGNALS = (ranking.WEIGHTS.rating + ranking.WEIGHTS.response + ranking.WEIGHTS.verified
               + ranking.WEIGHTS.recency)
FACET_SIZE = 10_000  # categories of a marketplace: all of them


def _analyzer() -> tantivy.TextAnalyzer:
    # Words of letters and digits, lower case, accents folded: common.fold, as Elasticsearch's mapping does.
    return (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple()).filter(tantivy.Filter.remove_long(40))
            .filter(tantivy.Filter.lowercase()).filter(tantivy.Filter.ascii_fold()).build())


def _pro_schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("tenant_id", indexed=True, fast=True)
    builder.add_integer_field("pro_id", indexed=True, fast=True)
    for name in PRO_TEXT_FIELDS:
        builder.add_text_field(name, tokenizer_name=ANALYZER, index_option="freq")
    builder.add_integer_field("category_ids", indexed=True, fast=True)
    for name in ("lat", "lon", "rating_average", "rating_score", "response_rate", "quality"):
        builder.add_float_field(name, fast=True)
    for name in ("hourly_rate_minor", "rating_count", "radius_km", "last_active"):
        builder.add_integer_field(name, fast=True)
    builder.add_boolean_field("verified", indexed=True, fast=True)
    builder.add_integer_field("weekdays", indexed=True)  # date.weekday() of each day with hours
    builder.add_integer_field("blocked", indexed=True)  # date.toordinal() of each blocked date
    builder.add_text_field("suggest", tokenizer_name="raw", index_option="basic")
    builder.add_bytes_field("source", stored=True)
    return builder.build()


def _request_schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("tenant_id", indexed=True, fast=True)
    builder.add_integer_field("request_id", indexed=True, fast=True)
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


def _from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


def _static_quality(doc: ProDocument) -> float:
    """Best match without text, distance and recency: what a pro's signals are worth at any time."""
    points = ranking.signal_points(doc, None, doc.last_active)
    return sum(value for name, value in points.items() if name != "recency")


def _pro_document(doc: ProDocument) -> Document:
    fields: dict[str, Any] = {
        "tenant_id": doc.tenant_id, "pro_id": doc.pro_id, "name": doc.name, "headline": doc.headline,
        "skills": list(doc.skills), "category_names": list(doc.category_names), "bio": doc.bio,
        "category_ids": list(doc.category_ids), "hourly_rate_minor": doc.hourly_rate_minor,
        "rating_average": float(doc.rating_average), "rating_count": doc.rating_count,
        "rating_score": float(doc.rating_score), "radius_km": doc.radius_km, "verified": doc.verified,
        "last_active": _epoch(doc.last_active), "quality": _static_quality(doc),
        "weekdays": [WEEKDAY_CODES.index(day) for day in doc.available_days if day in WEEKDAY_CODES],
        "blocked": [date.fromisoformat(day).toordinal() for day in doc.blocked_dates],
        "suggest": suggest_entries(doc),
        "source": json.dumps(pro_source(doc)).encode(),
    }
    if doc.response_rate is not None:  # absent: ranking.NEUTRAL_RESPONSE
        fields["response_rate"] = float(doc.response_rate)
    if (point := located(doc)) is not None:
        fields["lat"], fields["lon"] = point
    return Document(**{name: value for name, value in fields.items() if value != []})


def _request_document(doc: RequestDocument) -> Document:
    fields: dict[str, Any] = {
        "tenant_id": doc.tenant_id, "request_id": doc.request_id, "title": doc.title,
        "description": doc.description, "category_name": doc.category_name, "category_id": doc.category_id,
        "created_at": _epoch(doc.created_at), "source": json.dumps(request_source(doc)).encode(),
    }
    if (point := located(doc)) is not None:
        fields["lat"], fields["lon"] = point
    return Document(**fields)


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

    def write(self, change: Callable[[tantivy.IndexWriter], None]) -> None:
        """Apply `change` with this index's one writer and commit; visible to this process's next search."""
        with self._write_lock:
            writer = self._open_writer()
            try:
                change(writer)
                writer.commit()
            except BaseException:
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
        if docs:
            self._pros.write(lambda writer: self._replace(writer, self._pros, "pro_id", [
                (doc.tenant_id, doc.pro_id, _pro_document(doc)) for doc in docs]))

    def delete_pros(self, tenant_id: int, pro_ids: Iterable[int]) -> None:
        self._delete(self._pros, "pro_id", tenant_id, pro_ids)

    def upsert_requests(self, docs: Sequence[RequestDocument]) -> None:
        if docs:
            self._requests.write(lambda writer: self._replace(writer, self._requests, "request_id", [
                (doc.tenant_id, doc.request_id, _request_document(doc)) for doc in docs]))

    def delete_requests(self, tenant_id: int, request_ids: Iterable[int]) -> None:
        self._delete(self._requests, "request_id", tenant_id, request_ids)

    def clear_tenant(self, tenant_id: int) -> None:
        for index in (self._pros, self._requests):
            index.write(lambda writer, index=index: writer.delete_documents_by_query(index.scoped(tenant_id)))

    @staticmethod
    def _replace(writer: tantivy.IndexWriter, index: _Index, id_field: str,
                 rows: list[tuple[int, int, Document]]) -> None:
        # Deletes apply to documents added before them in the same commit: delete, then add (one commit).
        for tenant_id, doc_id, _ in rows:
            writer.delete_documents_by_query(index.scoped(
                tenant_id, (Occur.Must, Query.term_query(index.schema, id_field, doc_id))))
        for _, _, document in rows:
            writer.add_document(document)

    @staticmethod
    def _delete(index: _Index, id_field: str, tenant_id: int, doc_ids: Iterable[int]) -> None:
        ids = sorted(set(doc_ids))
        if ids:
            index.write(lambda writer: writer.delete_documents_by_query(index.scoped(
                tenant_id, (Occur.Must, Query.term_set_query(index.schema, id_field, ids)))))

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
            candidates = self._best_candidates(searcher, matching, needed, now, text is not None)
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
        boxed = [*clauses, *index.bbox_clauses(query.origin, query.radius_km)]
        hits = index.every(searcher, index.scoped(tenant_id, *boxed))
        addresses = [address for _, address in hits]
        values = self._fast(searcher, addresses, ("lat", "lon", "radius_km", "pro_id"))
        inside: list[tuple[float, tantivy.DocAddress, float]] = []
        for (score, address), lat, lon, reach in zip(hits, values["lat"], values["lon"], values["radius_km"],
                                                     strict=True):
            distance = distance_km(query.origin, (lat, lon))
            if distance <= query.radius_km and (not query.serves_origin or distance <= reach):
                inside.append((score if has_text else 1.0, address, distance))
        pro_ids = {_key(address): pro_id for address, pro_id in zip(addresses, values["pro_id"], strict=True)}
        facets = (self._category_counts(searcher, index.scoped(tenant_id, (Occur.Must, Query.term_set_query(
            index.schema, "pro_id", sorted(pro_ids[_key(address)] for _, address, _ in inside)))))
            if inside else {})
        if category:
            in_category = {_key(address) for _, address in index.every(searcher, index.scoped(
                tenant_id, *boxed, *category))}
            inside = [row for row in inside if _key(row[1]) in in_category]
        candidates = self._candidates(searcher, [(score, address) for score, address, _ in inside], now, has_text)
        for candidate, (_, _, distance) in zip(candidates, inside, strict=True):
            candidate.distance_km = distance
            candidate.score = ranking.best_match_score(candidate.text_score, candidate, distance, now)
        page = self._ordered(candidates, sort)[query.offset:query.offset + query.limit]
        return ProResults(total=len(candidates), hits=self._pro_hits(searcher, page, sort), category_counts=facets)

    def _best_candidates(self, searcher: Searcher, matching: Query, needed: int, now: datetime,
                         has_text: bool) -> list[_Candidate]:
        """Enough candidates that the top `needed` by best match are among them (module docstring)."""
        # Phase-one key: BM25 (what is left, at most MAX_SIGNALS) or the static quality (left: recency).
        remainder = MAX_SIGNALS if has_text else ranking.WEIGHTS.recency
        fetch = max(MIN_CANDIDATES, needed)
        while True:
            if has_text:
                result = searcher.search(matching, limit=fetch, count=True)
                keyed = [(score, address) for score, address in result.hits]
            else:
                result = searcher.search(matching, limit=fetch, count=True, order_by_field="quality",
                                         order=Order.Desc)
                keyed = [(float(value), address) for value, address in result.hits]
            candidates = self._candidates(searcher, keyed, now, has_text)
            for candidate in candidates:
                candidate.score = ranking.best_match_score(candidate.text_score, candidate, None, now)
            if len(keyed) >= result.count:
                return candidates
            # No pro left out can score more than the last key fetched allows.
            last_key = keyed[-1][0]
            ceiling = (ranking.WEIGHTS.text * last_key if has_text else ranking.WEIGHTS.text + last_key) + remainder
            page_floor = sorted((candidate.score for candidate in candidates), reverse=True)[needed - 1]
            if ceiling < page_floor:
                return candidates
            fetch *= 4

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
        counted = searcher.terms_with_prefix("suggest", start, filter_query=self._pros.scoped(tenant_id))
        return merge_suggestions(((entry, count) for entry, count in counted if count > 0), limit)

    def fingerprints(self, tenant_id: int, kind: Kind) -> dict[int, str]:
        index, id_field = (self._pros, "pro_id") if kind is Kind.PRO else (self._requests, "request_id")
        searcher = index.searcher()
        result = {}
        for _, address in index.every(searcher, index.scoped(tenant_id)):
            source = json.loads(searcher.doc(address)["source"][0])
            result[int(source[id_field])] = source["fingerprint"]
        return result

    def close(self) -> None:
        """Nothing stays open between calls: each write batch drops its writer (and the lock) when done."""


def _key(address: tantivy.DocAddress) -> tuple[int, int]:
    return (address.segment_ord, address.doc)

