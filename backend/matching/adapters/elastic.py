"""Elasticsearch as the search engine (ELASTICSEARCH_URL): the `elasticsearch` 9.x client, queries built with its DSL.

Indexes: one per kind (`<prefix>-pros-v1`, `<prefix>-requests-v1`), shared by every tenant, each document carrying
`tenant_id`. Not an index per tenant: a marketplace platform hosts thousands of tenants, most of them small, and
every index costs the cluster shards (heap, file handles, cluster-state updates on creation); thousands of tiny
shards are Elasticsearch's classic way to fall over, while one index scales by its shard count. Writes and searches
are routed by tenant (`routing=<tenant id>`, required by the mapping), so a tenant's documents live in one shard and
its queries touch only that shard. Isolation is one function: `scoped()` builds every query this adapter sends
(searches, counts, aggregations, suggestions, deletes) with a `term` filter on `tenant_id`; nothing else builds a
top-level query. Document ids are "<tenant>-<id>", so upserts of two tenants never collide.

Best match is ranking.py's formula stated as a query: `function_score` over the keyword query (or `match_all`,
scoring 1.0, when browsing) with
    gauss on `location` (origin the place, scale DISTANCE_HALF_KM, decay 0.5)      weight WEIGHTS.distance
    field_value_factor `rating_score` * WEIGHTS.rating / 5
    field_value_factor `response_rate` * WEIGHTS.response (missing: NEUTRAL_RESPONSE)
    filter `verified`                                                              weight WEIGHTS.verified
    gauss on `last_active` (origin the query's now, offset/scale in days)          weight WEIGHTS.recency
summed (`score_mode: sum`) and added to the query's score (`boost_mode: sum`). The embedded engine computes the
same with ranking.best_match_score.

Instant match (`serves_origin`: the pro's own radius must reach the place) without scripts, exactly: a first request
asks which service radii occur among the pros within the query's radius (a terms aggregation on `radius_km`: at
most 500 values, 1..500 km); the search then requires, for each radius r, "radius_km = r and within r km". Totals,
facets and paging stay Elasticsearch's own. (A `geo_shape` circle per pro would be approximated by a polygon.)

Facets: a terms aggregation on `category_ids` over the query without the category, the category as `post_filter`.
Writes use `refresh=true`: the port promises that a search after `upsert` sees it (jobs write one pro at a time;
a reindex writes in batches, one refresh each). Any client error (unreachable, timeout, 4xx/5xx) is raised as
SearchUnavailable; 4xx are logged as errors too, since they mean a query this adapter built was refused.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError
from elasticsearch.dsl import A, Q, Search
from elasticsearch.dsl.function import SF
from elasticsearch.dsl.query import Query

from backend.geo import distance_km
from backend.matching import ranking
from backend.matching.adapters.common import (
    ES_FUZZINESS,
    PRO_TEXT_FIELDS,
    REQUEST_TEXT_FIELDS,
    WEEKDAY_CODES,
    effective_sort,
    located,
    lucene_prefix_regex,
    NAME_ENTRIES,
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

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1  # in the index names: a changed mapping goes to a new index, which `reindex` fills
FACET_SIZE = 10_000
SUGGEST_BUCKETS = 100
FINGERPRINT_PAGE = 1_000
MAX_RADIUS_KM = 500  # profiles' service radius is 1..500 km
ANALYZER = "folding"
SETTINGS = {
    "analysis": {"analyzer": {ANALYZER: {"type": "custom", "tokenizer": "standard",
                                         "filter": ["lowercase", "asciifolding"]}}},
}
_TEXT = {"type": "text", "analyzer": ANALYZER}
_STORED_ONLY = {"type": "keyword", "index": False, "doc_values": False}
PRO_MAPPING = {
    "dynamic": "strict",
    "_routing": {"required": True},
    "properties": {
        "tenant_id": {"type": "integer"}, "pro_id": {"type": "integer"},
        "name": _TEXT, "headline": _TEXT, "bio": _TEXT, "skills": _TEXT, "category_names": _TEXT,
        "category_ids": {"type": "integer"}, "city": {"type": "keyword"},
        "latitude": {"type": "double", "index": False}, "longitude": {"type": "double", "index": False},
        "location": {"type": "geo_point"}, "radius_km": {"type": "integer"},
        "hourly_rate_minor": {"type": "integer"}, "currency": {"type": "keyword"},
        "verified": {"type": "boolean"}, "avatar_url": _STORED_ONLY,
        "rating_average": {"type": "double"}, "rating_count": {"type": "integer"},
        "rating_score": {"type": "double"}, "completed_jobs": {"type": "integer"},
        "response_rate": {"type": "double"}, "median_quote_minutes": {"type": "integer"},
        "available_days": {"type": "keyword"}, "blocked_dates": {"type": "keyword"},
        "last_active": {"type": "date"}, "fingerprint": {"type": "keyword"},
        "suggest": {"type": "keyword"}, "suggest_name": {"type": "keyword"},
    },
}
REQUEST_MAPPING = {
    "dynamic": "strict",
    "_routing": {"required": True},
    "properties": {
        "tenant_id": {"type": "integer"}, "request_id": {"type": "integer"}, "client_id": {"type": "integer"},
        "title": _TEXT, "description": _TEXT, "category_name": _TEXT, "category_id": {"type": "integer"},
        "city": {"type": "keyword"},
        "latitude": {"type": "double", "index": False}, "longitude": {"type": "double", "index": False},
        "location": {"type": "geo_point"},
        "budget_min_minor": {"type": "integer"}, "budget_max_minor": {"type": "integer"},
        "currency": {"type": "keyword"}, "preferred_start": {"type": "date"}, "created_at": {"type": "date"},
        "expires_at": {"type": "date"}, "fingerprint": {"type": "keyword"},
    },
}


# ---------------------------------------------------------------------------------------------------- queries
# Pure functions of the query: tests/unit/test_elastic_queries.py compares their output with golden JSON files.

def scoped(tenant_id: int, *, must: Sequence[Query] = (), filters: Sequence[Query] = (),
           must_not: Sequence[Query] = ()) -> Query:
    """The tenant's documents matching the clauses. EVERY query this adapter sends is built here."""
    return Q("bool", must=list(must), filter=[Q("term", tenant_id=tenant_id), *filters], must_not=list(must_not))


def text_query(fields: dict[str, float], text: str) -> Query | None:
    """common.py's keyword rules: each word must match some field (fuzzy; the last one also as a prefix), scored by
    its best field times the field's boost."""
    words = query_words(text)
    if not words:
        return None
    boosted = [f"{field}^{boost:g}" for field, boost in fields.items()]
    prefix = prefix_word(words)
    clauses = []
    for position, word in enumerate(words):
        fuzzy = Q("multi_match", query=word, fields=boosted, type="best_fields", fuzziness=ES_FUZZINESS)
        if position == len(words) - 1 and prefix:
            clauses.append(Q("bool", should=[fuzzy, Q("multi_match", query=prefix, fields=boosted,
                                                      type="phrase_prefix")], minimum_should_match=1))
        else:
            clauses.append(fuzzy)
    return Q("bool", must=clauses)


def geo(point: tuple[float, float]) -> dict[str, float]:
    return {"lat": point[0], "lon": point[1]}


def within(point: tuple[float, float], km: float) -> Query:
    return Q("geo_distance", distance=f"{km:g}km", location=geo(point))


def pro_filters(query: ProQuery, radius_values: Sequence[int] | None = None) -> tuple[list[Query], list[Query]]:
    """(filter, must_not) clauses of every criterion but the category (a post_filter: facets ignore it)."""
    filters: list[Query] = []
    must_not: list[Query] = []
    if query.origin is not None:
        filters.append(within(query.origin, query.radius_km))
        if query.serves_origin:
            filters.append(serves(query.origin, query.radius_km, radius_values or []))
    if query.price_min_minor is not None or query.price_max_minor is not None:
        price = {key: value for key, value in (("gte", query.price_min_minor), ("lte", query.price_max_minor))
                 if value is not None}
        filters.append(Q("range", hourly_rate_minor=price))
    if query.min_rating is not None:
        filters.append(Q("range", rating_average={"gte": float(query.min_rating)}))
        filters.append(Q("range", rating_count={"gte": 1}))
    if query.verified_only:
        filters.append(Q("term", verified=True))
    if query.available_on is not None:
        filters.append(Q("term", available_days=WEEKDAY_CODES[query.available_on.weekday()]))
        must_not.append(Q("term", blocked_dates=query.available_on.isoformat()))
    if query.exclude_ids:
        must_not.append(Q("terms", pro_id=sorted(set(query.exclude_ids))))
    return filters, must_not


def serves(origin: tuple[float, float], radius_km: float, radius_values: Sequence[int]) -> Query:
    """The pro's own service radius reaches `origin`: one exact clause per radius that occurs (module docstring)."""
    reaching = sorted({value for value in radius_values if value >= radius_km})
    clauses = [Q("terms", radius_km=reaching)] if reaching else []
    clauses += [Q("bool", filter=[Q("term", radius_km=value), within(origin, value)])
                for value in sorted(set(radius_values)) if value < radius_km]
    return Q("bool", should=clauses, minimum_should_match=1) if clauses else Q("match_none")


def best_match(scored: Query, origin: tuple[float, float] | None, now: datetime) -> Query:
    """ranking.py's formula as a function_score (module docstring)."""
    functions = []
    if origin is not None:
        functions.append(SF("gauss", location={"origin": geo(origin), "scale": f"{ranking.DISTANCE_HALF_KM:g}km",
                                               "offset": "0km", "decay": ranking.DECAY},
                            weight=ranking.WEIGHTS.distance))
    functions += [
        SF("field_value_factor", field="rating_score", factor=ranking.WEIGHTS.rating / 5, missing=0),
        SF("field_value_factor", field="response_rate", factor=ranking.WEIGHTS.response,
           missing=ranking.NEUTRAL_RESPONSE),
        SF({"filter": Q("term", verified=True), "weight": ranking.WEIGHTS.verified}),
        SF("gauss", last_active={"origin": now.isoformat(timespec="seconds"),
                                 "offset": f"{ranking.RECENCY_OFFSET_DAYS}d",
                                 "scale": f"{ranking.RECENCY_HALF_DAYS}d", "decay": ranking.DECAY},
           weight=ranking.WEIGHTS.recency),
    ]
    return Q("function_score", query=scored, functions=functions, score_mode="sum", boost_mode="sum")


def pro_sort(sort: Sort, origin: tuple[float, float] | None) -> list[Any]:
    """The order of each sort, the pro id breaking ties (the embedded engine orders alike)."""
    if sort is Sort.DISTANCE and origin is not None:
        return [{"_geo_distance": {"location": geo(origin), "order": "asc", "unit": "km", "distance_type": "arc"}},
                {"pro_id": "asc"}]
    if sort is Sort.RATING:
        return [{"rating_score": "desc"}, {"rating_count": "desc"}, {"pro_id": "asc"}]
    if sort is Sort.PRICE_LOW:
        return [{"hourly_rate_minor": "asc"}, {"pro_id": "asc"}]
    if sort is Sort.PRICE_HIGH:
        return [{"hourly_rate_minor": "desc"}, {"pro_id": "asc"}]
    return [{"_score": "desc"}, {"pro_id": "asc"}]


def pro_search_body(tenant_id: int, query: ProQuery, now: datetime,
                    radius_values: Sequence[int] | None = None) -> dict[str, Any]:
    """The _search body of a pro query (with `serves_origin`, `radius_values` from `radius_values_body` first)."""
    sort = effective_sort(query.sort, query.origin)
    text = text_query(PRO_TEXT_FIELDS, query.text)
    filters, must_not = pro_filters(query, radius_values)
    matching = scoped(tenant_id, must=[text if text is not None else Q("match_all")], filters=filters,
                      must_not=must_not)
    search = Search().query(best_match(matching, query.origin, now) if sort is Sort.BEST else matching)
    search.aggs.bucket("categories", A("terms", field="category_ids", size=FACET_SIZE))
    if query.category_id is not None:
        search = search.post_filter(Q("term", category_ids=query.category_id))
    search = search.sort(*pro_sort(sort, query.origin)).source(excludes=["suggest", "suggest_name"])
    return search.extra(from_=query.offset, size=query.limit, track_total_hits=True).to_dict()


def radius_values_body(tenant_id: int, query: ProQuery) -> dict[str, Any]:
    """Which service radii occur among the pros the query could return (instant match's first step)."""
    assert query.origin is not None
    filters, must_not = pro_filters(replace(query, serves_origin=False))
    search = Search().query(scoped(tenant_id, filters=filters, must_not=must_not))
    search.aggs.bucket("radii", A("terms", field="radius_km", size=MAX_RADIUS_KM))
    return search.extra(size=0).to_dict()


def suggest_body(tenant_id: int, start: str) -> dict[str, Any]:
    """Entries starting with `start`: what pros do (the most frequent), and the first names in key order
    (common.py: names are nearly all distinct)."""
    starting = Q("bool", should=[Q("prefix", suggest=start), Q("prefix", suggest_name=start)],
                 minimum_should_match=1)
    search = Search().query(scoped(tenant_id, filters=[starting]))
    include = lucene_prefix_regex(start)
    search.aggs.bucket("vocabulary", A("terms", field="suggest", include=include, size=SUGGEST_BUCKETS))
    search.aggs.bucket("names", A("terms", field="suggest_name", include=include, size=NAME_ENTRIES,
                                  order={"_key": "asc"}))
    return search.extra(size=0).to_dict()


def request_search_body(tenant_id: int, query: RequestQuery) -> dict[str, Any]:
    text = text_query(REQUEST_TEXT_FIELDS, query.text)
    filters = []
    if query.category_ids:
        filters.append(Q("terms", category_id=sorted(set(query.category_ids))))
    if query.origin is not None:
        filters.append(within(query.origin, query.radius_km))
    matching = scoped(tenant_id, must=[text] if text is not None else [], filters=filters)
    order: list[Any] = [{"created_at": "desc"}, {"request_id": "desc"}]
    search = Search().query(matching).sort(*([{"_score": "desc"}] if text is not None else []), *order)
    return search.extra(from_=query.offset, size=query.limit, track_total_hits=True).to_dict()


def fingerprints_body(tenant_id: int, id_field: str, after: int | None) -> dict[str, Any]:
    search = Search().query(scoped(tenant_id)).sort({id_field: "asc"}).source([id_field, "fingerprint"])
    search = search.extra(size=FINGERPRINT_PAGE, track_total_hits=False)
    if after is not None:
        search = search.extra(search_after=[after])
    return search.to_dict()


# ---------------------------------------------------------------------------------------------------- documents

def doc_id(tenant_id: int, own_id: int) -> str:
    return f"{tenant_id}-{own_id}"


def pro_body(doc: ProDocument) -> dict[str, Any]:
    body = {**pro_source(doc), "suggest": suggest_vocabulary(doc), "suggest_name": suggest_names(doc)}
    if (point := located(doc)) is not None:
        body["location"] = geo(point)
    return body


def request_body(doc: RequestDocument) -> dict[str, Any]:
    body = request_source(doc)
    if (point := located(doc)) is not None:
        body["location"] = geo(point)
    return body


# ---------------------------------------------------------------------------------------------------- engine

class ElasticEngine:
    """SearchEngine over Elasticsearch (see the module docstring)."""

    def __init__(self, url: str, *, index_prefix: str = "marketplace", client: Elasticsearch | None = None):
        self._client = client or Elasticsearch(url, request_timeout=10, max_retries=1, retry_on_timeout=True)
        self.pros_index = f"{index_prefix}-pros-v{SCHEMA_VERSION}"
        self.requests_index = f"{index_prefix}-requests-v{SCHEMA_VERSION}"
        self._ready = False

    # -- plumbing -----------------------------------------------------------------------------------------------

    @contextmanager
    def _unavailable(self) -> Iterator[None]:
        try:
            yield
        except ApiError as exc:
            if 400 <= exc.status_code < 500 and exc.status_code != 429:  # 429: busy, not a bad request
                log.error("Elasticsearch refused a request: %s %s", exc.status_code, exc.body)
            raise SearchUnavailable(f"Elasticsearch answered {exc.status_code}: {exc.message}") from exc
        except TransportError as exc:
            raise SearchUnavailable(f"Elasticsearch is unreachable: {exc}") from exc

    def _ensure_indices(self) -> None:
        """Create both indexes once (idempotent: an index another process created first is fine)."""
        if self._ready:
            return
        with self._unavailable():
            for name, mapping in ((self.pros_index, PRO_MAPPING), (self.requests_index, REQUEST_MAPPING)):
                if self._client.indices.exists(index=name):
                    continue
                try:
                    self._client.indices.create(index=name, settings=SETTINGS, mappings=mapping)
                except ApiError as exc:
                    if exc.error != "resource_already_exists_exception":
                        raise
        self._ready = True

    def _search(self, index: str, tenant_id: int, body: dict[str, Any]) -> dict[str, Any]:
        self._ensure_indices()
        with self._unavailable():
            return dict(self._client.search(index=index, body=body, routing=str(tenant_id)))

    def _bulk(self, operations: list[dict[str, Any]]) -> None:
        if not operations:
            return
        self._ensure_indices()
        with self._unavailable():
            response = self._client.bulk(operations=operations, refresh=True)
        if response.get("errors"):
            for item in response["items"]:
                action, result = next(iter(item.items()))
                if result.get("status", 200) >= 300 and not (action == "delete" and result["status"] == 404):
                    raise SearchUnavailable(f"Elasticsearch refused a document: {result.get('error')}")

    # -- writes -------------------------------------------------------------------------------------------------

    def upsert_pros(self, docs: Sequence[ProDocument]) -> None:
        self._bulk([line for doc in docs for line in (
            {"index": {"_index": self.pros_index, "_id": doc_id(doc.tenant_id, doc.pro_id),
                       "routing": str(doc.tenant_id)}}, pro_body(doc))])

    def delete_pros(self, tenant_id: int, pro_ids: Iterable[int]) -> None:
        self._bulk([{"delete": {"_index": self.pros_index, "_id": doc_id(tenant_id, pro_id),
                                "routing": str(tenant_id)}} for pro_id in sorted(set(pro_ids))])

    def upsert_requests(self, docs: Sequence[RequestDocument]) -> None:
        self._bulk([line for doc in docs for line in (
            {"index": {"_index": self.requests_index, "_id": doc_id(doc.tenant_id, doc.request_id),
                       "routing": str(doc.tenant_id)}}, request_body(doc))])

    def delete_requests(self, tenant_id: int, request_ids: Iterable[int]) -> None:
        self._bulk([{"delete": {"_index": self.requests_index, "_id": doc_id(tenant_id, request_id),
                                "routing": str(tenant_id)}} for request_id in sorted(set(request_ids))])

    def clear_tenant(self, tenant_id: int) -> None:
        self._ensure_indices()
        with self._unavailable():
            self._client.delete_by_query(index=[self.pros_index, self.requests_index],
                                         query=scoped(tenant_id).to_dict(), routing=str(tenant_id),
                                         refresh=True, conflicts="proceed")

    # -- reads --------------------------------------------------------------------------------------------------

    def search_pros(self, tenant_id: int, query: ProQuery) -> ProResults:
        now = query.now or datetime.now(UTC).replace(tzinfo=None)
        radius_values = None
        if query.origin is not None and query.serves_origin:
            answer = self._search(self.pros_index, tenant_id, radius_values_body(tenant_id, query))
            radius_values = [int(bucket["key"]) for bucket in answer["aggregations"]["radii"]["buckets"]]
        answer = self._search(self.pros_index, tenant_id, pro_search_body(tenant_id, query, now, radius_values))
        sort = effective_sort(query.sort, query.origin)
        hits = []
        for hit in answer["hits"]["hits"]:
            doc = pro_from_source(hit["_source"])
            point = located(doc)
            distance = distance_km(query.origin, point) if query.origin is not None and point else None
            if sort is Sort.BEST:
                score = hit["_score"]
            else:  # the sort value; a distance as backend.geo measures it, like the embedded engine's
                score = distance if sort is Sort.DISTANCE else hit["sort"][0]
            hits.append(ProHit(doc=doc, score=float(score), distance_km=distance))
        facets = {int(bucket["key"]): int(bucket["doc_count"])
                  for bucket in answer["aggregations"]["categories"]["buckets"]}
        return ProResults(total=int(answer["hits"]["total"]["value"]), hits=hits, category_counts=facets)

    def search_requests(self, tenant_id: int, query: RequestQuery) -> RequestResults:
        answer = self._search(self.requests_index, tenant_id, request_search_body(tenant_id, query))
        hits = []
        for hit in answer["hits"]["hits"]:
            doc = request_from_source(hit["_source"])
            point = located(doc)
            distance = distance_km(query.origin, point) if query.origin is not None and point else None
            hits.append(RequestHit(doc=doc, score=float(hit.get("_score") or 0.0), distance_km=distance))
        return RequestResults(total=int(answer["hits"]["total"]["value"]), hits=hits)

    def suggest(self, tenant_id: int, prefix: str, limit: int = 8) -> list[str]:
        start = suggest_prefix(prefix)
        if not start or limit <= 0:
            return []
        answer = self._search(self.pros_index, tenant_id, suggest_body(tenant_id, start))
        vocabulary, names = ([(bucket["key"], bucket["doc_count"]) for bucket in answer["aggregations"][name]["buckets"]]
                             for name in ("vocabulary", "names"))
        return merge_vocabulary_and_names(vocabulary, names, limit)

    def fingerprints(self, tenant_id: int, kind: Kind) -> dict[int, str]:
        index, id_field = ((self.pros_index, "pro_id") if kind is Kind.PRO
                           else (self.requests_index, "request_id"))
        result: dict[int, str] = {}
        after: int | None = None
        while True:
            page = self._search(index, tenant_id, fingerprints_body(tenant_id, id_field, after))["hits"]["hits"]
            for hit in page:
                result[int(hit["_source"][id_field])] = hit["_source"]["fingerprint"]
            if len(page) < FINGERPRINT_PAGE:
                return result
            after = int(page[-1]["sort"][0])

    def drop_indices(self) -> None:
        """Delete both indexes (tests against a shared live cluster clean up with this)."""
        with self._unavailable():
            self._client.indices.delete(index=[self.pros_index, self.requests_index], ignore_unavailable=True)
        self._ready = False

    def close(self) -> None:
        self._client.close()
