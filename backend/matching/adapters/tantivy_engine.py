"""The embedded search engine: tantivy (Rust, in process, no server), one index directory per kind under `path`.

Tenant isolation: every document carries `tenant_id`, and every query, count, aggregation and suggestion goes
through `_Index.scoped`, which adds a required term on it; nothing else builds a top-level query. Writes replace and
delete documents by their `key`, which is the tenant and the id in one integer (`_doc_key`).

A search of pros is a few passes over the matches, each in Rust: an aggregation (the category counts), which runs in a
worker thread beside a top-k search that also counts the total (tantivy releases the GIL: two cores overlap them), or
for a place one fetch of the pros around it. A tenant's unfiltered counts are kept until the index changes. Python
reads fast fields of the candidates it ranks, and the stored documents of the page only.

Keywords (common.py's rules): a fuzzy or prefix clause as tantivy builds it is an automaton that reads every posting
of every term it matches, in every field and segment, before anything narrows it down. So the engine keeps a words
index (every word of the pros' text fields; _Vocabulary) and turns such a clause into the few terms it would match,
read lazily: the same scores. Those terms form one flat disjunction per word (_listed_clauses), never unions nested in
unions: tantivy buffers a union's matches 4,096 documents at a time, so in a conjunction with a place a nested union
scores most of the index to check a few pros. Keywords are scored per field (text_query) only where best match needs
the text relevance; counts, aggregations and orders by a field select through one field holding every word of the
five (ANY_TEXT, matches_query): the same pros.

Geography: tantivy has no geo type. Each pro is indexed in grid cells of 11 sizes (_cells); a place selects the cells
that meet its circle (_circle_cells; near a pole, a lat/lon box over fast fields), then the exact haversine distance
(backend.geo.distance_km) of every pro selected decides, so totals and category counts count only pros inside the
circle. A reindex writes neighbours together (backend.geo.locality_key) and a segment keeps write order, so a
place's pros are a few stretches of document ids, which is what a conjunction with keywords walks. Fewer than
PLACE_FETCH pros are counted in Python from one fetch (category ids packed in fast fields); more
by an aggregation: over the cells wholly inside the circle plus the others' pros one by one (a category search), or
over all the cells less the pros outside the circle.

Best match (ranking.best_match_score, computed here from fast fields: text relevance, the static quality stored at
indexing, recency from `now`, distance) is ranked in two phases, as Elasticsearch's rescoring does, but with a bound
that makes the page exact whenever it can be proved:
- browsing without a place: tantivy orders the matches by the stored static quality (fast field); no pro left out can
  score more than 1 + the last quality fetched + full recency, so rounds of candidates (x4 each) stop as soon as the
  page's last score beats that: exact, after reading a few hundred pros.
- keywords without a place: tantivy orders the matches by text relevance (BM25) and returns up to RESCORE_WINDOW of
  them; they are scored in that order, and scoring stops when the next one's text relevance + the highest static
  quality and recency among all matches (from the aggregation) cannot reach the page. Exact whenever that bound is
  reached within the window (at 100,000 pros: every page 1 and 5 of the benchmark's keyword queries); when thousands of
  matches tie on text relevance (one common word), the page is the exact best match among the RESCORE_WINDOW best
  text matches, the same contract as Elasticsearch's rescore window.
- with a place, every pro inside the circle is a candidate; each one's ceiling (text, distance and static quality
  known, full recency assumed) orders the exact scoring, which stops when the next ceiling cannot reach the page.
Other sorts (distance, rating, price) are exact: ties on the sort value are broken by pro id (for the rating, by the
number of reviews first), like the Elasticsearch adapter's `sort`: a price sort is one fast field holding the price
and the id; a rating sort's pros tied with the page's last one come from a second search ordered by a tie-break
field, so a page never reads more than its own pros.

Writers: tantivy allows one IndexWriter per index directory (a lock file; another process gets LockBusy). A writer
is opened per write batch under a thread lock, committed, and dropped once its merges finish, so the app's inline
jobs, a Celery worker and the `reindex` command can all write, one at a time. When another process holds the lock
longer than LOCK_WAIT_SECONDS, writes raise SearchUnavailable and the indexing job retries. Readers reload after
this process's commits and, at most every RELOAD_SECONDS, after another process's (meta.json changed).
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import json
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import tantivy
from tantivy import DocAddress, Document, FieldType, Index, Occur, Order, Query, Searcher

from backend.geo import EARTH_RADIUS_KM, bounding_box, distance_km
from backend.matching import ranking
from backend.matching.adapters.common import (
    NAME_ENTRIES,
    PRO_TEXT_FIELDS,
    REQUEST_TEXT_FIELDS,
    WEEKDAY_CODES,
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

SCHEMA_VERSION = 8  # part of the directory name: a changed schema starts an empty index, and `reindex` fills it
RELOAD_SECONDS = 0.5
LOCK_WAIT_SECONDS = 2.0  # another process's batch usually commits within milliseconds
WRITER_HEAP_BYTES = 50_000_000
ANALYZER = "folding"
ANY_TEXT = "any_text"
FACET_SIZE = 10_000  # categories of a marketplace: all of them
# Category ids packed in fast fields (see _category_packs): a place's pros are counted per category from these.
CATEGORY_PACKS, PACK_SLOTS, PACK_BITS = 4, 3, 21
PACK_OVERFLOW = 2 ** (PACK_SLOTS * PACK_BITS) - 1  # category_pack_0 of a pro whose ids do not fit: counted apart
# Grid cells of pros' locations (_cells), 0.01 degrees (~1 km) and 10 coarser levels, each twice the previous:
# a place is the cells meeting its circle, at most MAX_CELLS of them (_circle_cells).
CELL_DEGREES = [0.01 * 2 ** level for level in range(11)]
MAX_CELLS = 16  # more, finer cells fit the circle closer but cost more terms to look up (measured: 16-24 best)
MAX_INNER_CELLS = 256  # the cells counted by an aggregation as wholly inside a circle (_search_place)
CELL_MARGIN = 1e-7  # degrees (about a centimetre)
PLACE_FETCH = 1_000  # fewer pros around a place are counted from one fetch, more by an aggregation

# Best match (module docstring): the first round of candidates, and how many of the best text matches keywords
# re-rank at most.
FIRST_ROUND = 100
LISTED_TERMS = 32  # a fuzzy or prefix clause matching at most this many words is those words' term queries
RESCORE_WINDOW = 2_000


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
    # Every word of those fields in one: which pros match keywords, without scores, walks one term dictionary per
    # word instead of one per field (_Index.matches_query)
    builder.add_text_field(ANY_TEXT, tokenizer_name=ANALYZER, index_option="basic")
    builder.add_integer_field("category_ids", indexed=True, fast=True)
    for pack in range(CATEGORY_PACKS):  # category ids readable per document (fast_field_values reads one value)
        builder.add_unsigned_field(f"category_pack_{pack}", fast=True)
    for name in ("lat", "lon", "rating_average", "rating_score", "response_rate", "quality"):
        builder.add_float_field(name, fast=True)
    for name in ("hourly_rate_minor", "rating_count", "radius_km", "last_active"):
        builder.add_integer_field(name, fast=True)
    builder.add_boolean_field("verified", indexed=True, fast=True)
    builder.add_unsigned_field("rating_tiebreak", fast=True)  # _rating_tiebreak: the rating sort's ties in order
    builder.add_unsigned_field("price_up", fast=True)  # _price_keys: the price sorts, ties in pro id order
    builder.add_unsigned_field("price_down", fast=True)
    builder.add_integer_field("cells", indexed=True)  # _cells: where the pro is, at each CELL_DEGREES
    builder.add_integer_field("weekdays", indexed=True)  # date.weekday() of each day with hours
    builder.add_integer_field("blocked", indexed=True)  # date.toordinal() of each blocked date
    builder.add_text_field("suggest", tokenizer_name="raw", index_option="basic")
    builder.add_text_field("suggest_name", tokenizer_name="raw", index_option="basic")
    builder.add_bytes_field("source", stored=True)
    return builder.build()


def _words_schema() -> tantivy.Schema:
    """Every word of the pros' text fields once (_Vocabulary); `fast` lists the words an aggregation finds."""
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("word", tokenizer_name="raw", index_option="basic", fast=True)
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
        ANY_TEXT: [doc.name, doc.headline, *doc.skills, *doc.category_names, doc.bio],
        "category_ids": sorted(set(doc.category_ids)), "hourly_rate_minor": doc.hourly_rate_minor,
        "rating_average": float(doc.rating_average), "rating_count": doc.rating_count,
        "rating_score": float(doc.rating_score), "radius_km": doc.radius_km, "verified": doc.verified,
        "last_active": _epoch(doc.last_active), "quality": quality,
        "weekdays": [WEEKDAY_CODES.index(day) for day in doc.available_days if day in WEEKDAY_CODES],
        "blocked": [date.fromisoformat(day).toordinal() for day in doc.blocked_dates],
        "suggest": suggest_vocabulary(doc), "suggest_name": suggest_names(doc),
        "source": json.dumps(pro_source(doc)).encode(),
    }
    if doc.response_rate is not None:  # absent: ranking.NEUTRAL_RESPONSE
        fields["response_rate"] = float(doc.response_rate)
    if (point := located(doc)) is not None:
        fields["lat"], fields["lon"] = point
        fields["cells"] = _cells(*point)
    document = Document(**{name: value for name, value in fields.items() if value != []})
    document.add_unsigned("rating_tiebreak", _rating_tiebreak(doc.rating_count, doc.pro_id))
    up, down = _price_keys(doc.hourly_rate_minor, doc.pro_id)
    document.add_unsigned("price_up", up)
    document.add_unsigned("price_down", down)
    for pack, value in enumerate(_category_packs(doc.category_ids)):
        document.add_unsigned(f"category_pack_{pack}", value)
    return _with_fingerprint(document, doc.fingerprint)


def _cell(level: int, latitude_index: int, longitude_index: int) -> int:
    return level << 48 | latitude_index << 24 | longitude_index


def _cell_index(degrees: float, size: float) -> int:
    return int(degrees // size)


def _cells(lat: float, lon: float) -> list[int]:
    """The grid cells holding (lat, lon), one per level of CELL_DEGREES."""
    return [_cell(level, _cell_index(lat + 90, size), _cell_index(lon + 180, size))
            for level, size in enumerate(CELL_DEGREES)]


@functools.lru_cache(maxsize=4096)
def _circle_cells(lat: float, lon: float, km: float) -> tuple[list[int], list[int]] | None:
    """(the grid cells that meet the circle of `km` around (lat, lon), at the finest level of CELL_DEGREES with at
    most MAX_CELLS of them; cells wholly inside it, at the finest level with at most MAX_INNER_CELLS), or None when
    the circle reaches a pole or crosses the antimeridian. Row by row (a band of latitudes): the circle's
    half-width in longitude at a latitude (the spherical law of cosines solved for it) is largest at the band's
    widest latitude, which bounds the cells it meets; a cell is inside when its four corners are, which holds when
    its longitudes are within the smaller half-width of the band's two edges (at a fixed longitude offset, the
    distance is largest at a band's edge). CELL_MARGIN degrees of slack on every side cover floating-point
    rounding."""
    alpha = km / EARTH_RADIUS_KM
    phi0 = math.radians(lat)
    south, north = phi0 - alpha, phi0 + alpha
    min_lat, max_lat, min_lon, max_lon = bounding_box(lat, lon, km)
    if south <= -math.pi / 2 or north >= math.pi / 2 or min_lon > max_lon or max_lon - min_lon >= 180:
        return None
    sin0, cos0, cos_alpha = math.sin(phi0), math.cos(phi0), math.cos(alpha)
    widest = math.asin(min(1.0, sin0 / cos_alpha))

    def half_width(phi: float) -> float:  # degrees of longitude from `lon` to the circle at latitude phi
        phi = min(max(phi, south), north)
        cosine = (cos_alpha - sin0 * math.sin(phi)) / (cos0 * math.cos(phi))
        return math.degrees(math.acos(min(1.0, max(-1.0, cosine))))

    def cells(level: int, size: float, inner: bool, limit: int) -> list[int] | None:
        first_row, last_row = _cell_index(min_lat + 90, size), _cell_index(max_lat + 90, size)
        if last_row - first_row >= limit:
            return None
        found: list[int] = []
        for row in range(first_row, last_row + 1):
            low, high = row * size - 90, (row + 1) * size - 90  # the band's latitudes
            if inner:
                if math.radians(low - CELL_MARGIN) <= south or math.radians(high + CELL_MARGIN) >= north:
                    continue
                sure = min(half_width(math.radians(low)), half_width(math.radians(high))) - CELL_MARGIN
                first = _cell_index(lon - sure + CELL_MARGIN + 180, size) + 1
                last = _cell_index(lon + sure - CELL_MARGIN + 180, size) - 1
                found += [_cell(level, row, column) for column in range(first, last + 1)
                          if column * size - 180 - CELL_MARGIN >= lon - sure
                          and (column + 1) * size - 180 + CELL_MARGIN <= lon + sure]
            else:
                band_low, band_high = math.radians(max(low, min_lat)), math.radians(min(high, max_lat))
                widest_here = half_width(widest) if band_low <= widest <= band_high else 0.0
                reach = max(half_width(band_low), half_width(band_high), widest_here) + CELL_MARGIN
                found += [_cell(level, row, column) for column in
                          range(_cell_index(lon - reach + 180, size), _cell_index(lon + reach + 180, size) + 1)]
            if len(found) > limit:
                return None
        return sorted(found)

    meeting = next((found for level, size in enumerate(CELL_DEGREES)
                    if (found := cells(level, size, False, MAX_CELLS)) is not None), None)
    if meeting is None:
        return None
    inside = next((found for level, size in enumerate(CELL_DEGREES)
                   if (found := cells(level, size, True, MAX_INNER_CELLS)) is not None), [])
    return meeting, inside


def _price_keys(hourly_rate_minor: int, pro_id: int) -> tuple[int, int]:
    """The price sorts' orders as numbers: the rate, then the id (ascending: cheapest first, the lower id first), and
    the rate, then the id reversed (descending: dearest first, the lower id first). Rates are minor units, far below
    2**31."""
    rate = min(max(hourly_rate_minor, 0), 2 ** 31 - 1) << 32
    return rate | pro_id, rate | (2 ** 32 - 1 - pro_id)


def _rating_tiebreak(rating_count: int, pro_id: int) -> int:
    """Among pros of equal rating, the rating sort's order (more reviews, then the lower id) as one descending
    number: tantivy orders by one fast field."""
    return min(rating_count, 2 ** 31 - 1) << 32 | (2 ** 32 - 1 - pro_id)


def _category_packs(category_ids: Sequence[int]) -> list[int]:
    """The category ids, PACK_SLOTS to an unsigned integer (PACK_BITS each, in ascending order, 0 for an empty
    slot); [PACK_OVERFLOW] when they do not fit (more than CATEGORY_PACKS * PACK_SLOTS, or an id out of range):
    such pros are counted by an aggregation (_count_categories)."""
    ids = sorted(set(category_ids))
    if len(ids) > CATEGORY_PACKS * PACK_SLOTS or any(not 0 < id_ < 2 ** PACK_BITS - 1 for id_ in ids):
        return [PACK_OVERFLOW]
    return [sum(id_ << (PACK_BITS * slot) for slot, id_ in enumerate(ids[start:start + PACK_SLOTS]))
            for start in range(0, len(ids), PACK_SLOTS)]


_SLOT_MASK = 2 ** PACK_BITS - 1
_LAST_SLOT = PACK_BITS * (PACK_SLOTS - 1)


def _unpack(pack: int) -> list[int]:
    return [id_ for slot in range(PACK_SLOTS) if (id_ := pack >> (PACK_BITS * slot) & _SLOT_MASK)]


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

    def __init__(self, directory: Path, schema: tantivy.Schema, follower: _Index | None = None):
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.follower = follower  # reloaded right after this index, so never older than it (the words index)
        self.schema = schema
        self.analyzer = _analyzer()
        self.index = Index(schema, path=str(directory), reuse=True)
        self.index.register_tokenizer(ANALYZER, self.analyzer)
        self.index.config_reader(reload_policy="manual")
        self._write_lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._reloaded = time.monotonic()
        self._meta = self._meta_stamp()
        self.version = 0  # changes with every reload that may bring other documents

    def scoped(self, tenant_id: int, *clauses: tuple[Occur, Query]) -> Query:
        """The tenant's documents matching every clause. EVERY query of this engine is built here."""
        return Query.boolean_query([(Occur.Must, self.filter(Query.term_query(self.schema, "tenant_id", tenant_id))),
                                    *clauses])

    @staticmethod
    def filter(query: Query) -> Query:
        """A clause that selects without scoring (filters add nothing to the text relevance)."""
        return Query.const_score_query(query, 0.0)

    def searcher(self) -> Searcher:
        return self.snapshot()[0]

    def snapshot(self) -> tuple[Searcher, int]:
        """A searcher and its version. At most every RELOAD_SECONDS, the reader reloads when another process
        committed: tantivy rewrites meta.json with every commit (and merge)."""
        with self._reload_lock:
            if time.monotonic() - self._reloaded > RELOAD_SECONDS:
                self._reloaded = time.monotonic()
                if self._meta_stamp() != self._meta:
                    self._reload()
            return self.index.searcher(), self.version

    def reload(self) -> None:
        with self._reload_lock:
            self._reload()

    def _reload(self) -> None:
        self._meta = self._meta_stamp()  # first: a commit after it is reloaded next time
        self.index.reload()
        self.version += 1
        self._reloaded = time.monotonic()
        if self.follower is not None:
            self.follower.reload()

    def _meta_stamp(self) -> tuple[int, int, int] | None:
        with contextlib.suppress(FileNotFoundError):
            stat = os.stat(self.directory / "meta.json")
            return stat.st_ino, stat.st_mtime_ns, stat.st_size
        return None

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
            self.reload()

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

    def _query_terms(self, text: str) -> list[str]:
        return [token for word in query_words(text) for token in self.analyzer.analyze(word)]

    def text_query(self, fields: dict[str, float], text: str, vocabulary: _Vocabulary | None = None) -> Query | None:
        """common.py's keyword rules: every word in some field (fuzzy, the last one also as a prefix); a word
        scores its best field (BM25, +1 for a fuzzy or prefix match) times the field's boost. With a vocabulary,
        the fuzzy and prefix clauses are the terms they would match, listed (_Vocabulary): the same scores, as
        one flat disjunction per word (_listed_clauses)."""
        query_terms = self._query_terms(text)
        if not query_terms:
            return None
        prefix = prefix_word(query_terms)
        must = []
        for position, term in enumerate(query_terms):
            word_prefix = prefix if position == len(query_terms) - 1 else None
            listed = self._listed(term, word_prefix, vocabulary)
            if listed is not None:
                clauses = [clause for field, boost in fields.items()
                           for clause in self._listed_clauses(field, boost, term, *listed)]
            else:
                clauses = [Query.boost_query(Query.boolean_query(
                    [(Occur.Should, Query.term_query(self.schema, field, term)),
                     *self._automata(field, term, word_prefix)]), boost) for field, boost in fields.items()]
            must.append((Occur.Must, Query.disjunction_max_query(clauses)))
        return Query.boolean_query(must)

    @staticmethod
    def _listed(term: str, prefix: str | None, vocabulary: _Vocabulary | None) -> tuple[set[str], set[str]] | None:
        """(the words the fuzzy clause matches, the words the prefix clause matches), each empty when the word has
        no such clause; None when either is not listed (no vocabulary, or too many words: automata then)."""
        if vocabulary is None:
            return None
        edits = fuzzy_edits(term)
        near = vocabulary.near(term, edits) if edits else []
        starting = vocabulary.starting(prefix) if prefix else []
        if near is None or starting is None:
            return None
        return set(near), set(starting)

    def _listed_clauses(self, field: str, boost: float, term: str, near: set[str],
                        starting: set[str]) -> list[Query]:
        """A word's score in `field` as the max of clauses, each one term's postings, none a nested union: tantivy
        buffers a union's matches 4,096 documents at a time, so nested unions in a conjunction (a place, a filter)
        score most of the index to check a few pros. The field's score is boost x (BM25 + [some fuzzy word] +
        [some prefix word]); the word itself is in both lists whenever a pro has it (the lists are every matching
        word of the index), so a pro with the word scores its BM25 + its lists' bonus, the greatest clause. A
        pro without it scores 2 for a word in both lists, else 1 for a word in one, else 1 + 1 when it has a
        word only fuzzy and another only a prefix: the one clause that adds two disjunctions."""
        bm25 = Query.boost_query(Query.term_query(self.schema, field, term), boost)
        bonus = (term in near) + (term in starting)
        # a sum over one posting list: an intersection of the term with itself, which seeks instead of buffering
        clauses = [Query.boolean_query([(Occur.Must, bm25), (Occur.Must, self._const(field, [term], boost * bonus))])
                   if bonus else bm25]
        both = sorted((near & starting) - {term})
        only_near, only_prefix = sorted(near - starting - {term}), sorted(starting - near - {term})
        if both:
            clauses.append(self._const(field, both, 2 * boost))
        if only_near and only_prefix:
            clauses.append(Query.boolean_query([(Occur.Should, self._const(field, only_near, boost)),
                                                (Occur.Should, self._const(field, only_prefix, boost))]))
        elif only_near or only_prefix:
            clauses.append(self._const(field, only_near or only_prefix, boost))
        return clauses

    def _automata(self, field: str, term: str, prefix: str | None) -> list[tuple[Occur, Query]]:
        """The fuzzy and prefix clauses as automata over the field's terms, each scoring 1.0 on a match."""
        clauses = []
        if edits := fuzzy_edits(term):
            clauses.append((Occur.Should, Query.fuzzy_term_query(self.schema, field, term, distance=edits)))
        if prefix:
            clauses.append((Occur.Should, Query.fuzzy_term_query(self.schema, field, prefix, distance=0,
                                                                 prefix=True)))
        return clauses

    def _const(self, field: str, terms: list[str], score: float) -> Query:
        """`score` when `field` has any of `terms`: term queries, read lazily (they seek to the documents the other
        clauses propose, where an automaton reads all their postings)."""
        queries = [Query.term_query(self.schema, field, term) for term in terms]
        return Query.const_score_query(queries[0] if len(queries) == 1 else Query.disjunction_max_query(queries),
                                       score)

    def matches_query(self, text: str, vocabulary: _Vocabulary | None = None) -> Query | None:
        """The pros text_query matches, without its scores, over the ANY_TEXT field: a word matches there exactly
        when it matches in some field (the same tokens), so the same pros; for counts and orders by a field."""
        query_terms = self._query_terms(text)
        if not query_terms:
            return None
        prefix = prefix_word(query_terms)
        must = []
        for position, term in enumerate(query_terms):
            word_prefix = prefix if position == len(query_terms) - 1 else None
            listed = self._listed(term, word_prefix, vocabulary)
            if listed is not None:
                terms = sorted({term} | listed[0] | listed[1])
                options = [(Occur.Should, Query.term_query(self.schema, ANY_TEXT, word)) for word in terms]
            else:
                options = [(Occur.Should, Query.term_query(self.schema, ANY_TEXT, term)),
                           *self._automata(ANY_TEXT, term, word_prefix)]
            must.append((Occur.Must, Query.boolean_query(options)))
        return self.filter(Query.boolean_query(must))

    def count(self, searcher: Searcher, query: Query) -> int:
        return searcher.search(query, limit=1, count=True).count

    def every(self, searcher: Searcher, query: Query) -> list[tuple[float, tantivy.DocAddress]]:
        """Every hit of `query` with its score."""
        total = self.count(searcher, query)
        return [(score, address) for score, address in searcher.search(query, limit=total, count=False).hits] \
            if total else []

    def near(self, origin: tuple[float, float], km: float) -> tuple[list[tuple[Occur, Query]], Query | None]:
        """(clauses selecting at least every pro within `km` of `origin`, a little more: the grid cells meeting the
        circle (_circle_cells), or those covering its box across the antimeridian, or the box itself near a pole;
        a query of the pros surely within it, or None). Postings of a few terms, where a box's two range queries
        scan both coordinate fast fields of the whole index."""
        circle = _circle_cells(origin[0], origin[1], km)
        if circle is not None:
            meeting, inside = circle
            return ([(Occur.Must, self.filter(Query.term_set_query(self.schema, "cells", meeting)))],
                    Query.term_set_query(self.schema, "cells", inside) if inside else None)
        min_lat, max_lat, min_lon, max_lon = bounding_box(*origin, km)
        longitudes = [(min_lon, max_lon)] if min_lon <= max_lon else [(min_lon, 180.0), (-180.0, max_lon)]
        for level, size in enumerate(CELL_DEGREES):
            rows = range(_cell_index(min_lat + 90, size), _cell_index(max_lat + 90, size) + 1)
            columns = [column for low, high in longitudes
                       for column in range(_cell_index(low + 180, size), _cell_index(high + 180, size) + 1)]
            if len(rows) * len(columns) <= MAX_CELLS:
                cells = sorted(_cell(level, row, column) for row in rows for column in columns)
                return [(Occur.Must, self.filter(Query.term_set_query(self.schema, "cells", cells)))], None
        return self.bbox_clauses(origin, km), None

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


class _Vocabulary:
    """The words index as a search sees it: which words a fuzzy or a prefix clause would match, listed, so that
    the clause becomes those terms' queries, read lazily (_Index._listed_clauses). An automaton clause reads every posting
    of every term it matches, in every field and segment, before the other clauses narrow anything down: most of
    a keyword search's cost, and all of it in a small place. None when more than LISTED_TERMS words match (an
    automaton is then the cheaper way). Exact: the words index holds every word of every pro's text fields
    (written before the pros, and reloaded after them: _Index.follower), and a word no pro has matches nothing."""

    def __init__(self, index: _Index, cache: _VocabularyCache):
        self.schema = index.schema
        self.searcher = index.searcher()
        self.known, self.built = cache.for_words(self.searcher.num_docs)

    def near(self, term: str, edits: int) -> list[str] | None:
        if (term, edits) not in self.known:
            found = self.searcher.aggregate(Query.fuzzy_term_query(self.schema, "word", term, distance=edits),
                                            {"words": {"terms": {"field": "word", "size": LISTED_TERMS + 1}}})
            buckets = found["words"]["buckets"]
            self.known[term, edits] = None if len(buckets) > LISTED_TERMS or found["words"]["sum_other_doc_count"] \
                else sorted(bucket["key"] for bucket in buckets)
        return self.known[term, edits]

    def starting(self, prefix: str) -> list[str] | None:
        if (prefix, None) not in self.known:
            found = self.searcher.terms_with_prefix("word", prefix, limit=LISTED_TERMS + 1)
            self.known[prefix, None] = None if len(found) > LISTED_TERMS else sorted(word for word, _ in found)
        return self.known[prefix, None]


class _VocabularyCache:
    """The words a clause matches, and the keyword queries built from them, kept while the words index holds as
    many words: words are only ever added, so the same number of them is the same index (searches ask for the same
    words again and again)."""

    LIMIT = 10_000  # entries, then it starts over

    def __init__(self) -> None:
        self.words = -1
        self.known: dict[tuple[str, int | None], list[str] | None] = {}
        self.built: dict[str, tuple[Query | None, Query | None]] = {}

    def for_words(self, words: int) -> tuple[dict[tuple[str, int | None], list[str] | None],
                                             dict[str, tuple[Query | None, Query | None]]]:
        if words != self.words or len(self.known) + len(self.built) > self.LIMIT:
            self.words, self.known, self.built = words, {}, {}
        return self.known, self.built


class _TenantCounts:
    """Each tenant's category counts without any filter (browsing, the search page before anything is chosen: the
    most frequent search), kept for one version of the index: it changes with every commit seen
    (Elasticsearch's request cache keeps aggregations until a refresh alike)."""

    def __init__(self) -> None:
        self.version = -1
        self.known: dict[int, dict[str, Any]] = {}

    def get(self, version: int, tenant_id: int) -> dict[str, Any] | None:
        return self.known.get(tenant_id) if version == self.version else None

    def put(self, version: int, tenant_id: int, aggregated: dict[str, Any]) -> None:
        if version != self.version:
            self.version, self.known = version, {}
        self.known[tenant_id] = aggregated


def _done(value: Any) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future


_CATEGORY_TERMS = {"terms": {"field": "category_ids", "size": FACET_SIZE}}


class _Beside:
    """Worker threads for a search's aggregation, which runs beside its top-k pass: tantivy releases the GIL while
    it searches, so with two cores a search takes the longer pass's time, not both (Elasticsearch likewise searches
    a request's shards at once). Recreated in a forked child (a prefork Celery worker inherits no threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pool: ThreadPoolExecutor | None = None

    def __call__(self, call: Callable[..., Any], *args: Any) -> Future:
        with self.lock:
            if self.pool is None:
                self.pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="tantivy")
            return self.pool.submit(call, *args)


_beside = _Beside()
os.register_at_fork(after_in_child=_beside.__init__)


def _buckets(aggregation: dict[str, Any]) -> dict[int, int]:
    return {int(bucket["key"]): int(bucket["doc_count"]) for bucket in aggregation["categories"]["buckets"]}


@dataclass(frozen=True)
class _Scope:
    """A search's clauses. Its queries are all built by _Index.scoped, so all of them carry the tenant's term.
    With `scored`, the keywords score the hits (text_query); otherwise they only select (matches_query: the same
    pros, cheaper), for counts, aggregations and orders by a field."""

    index: _Index
    tenant_id: int
    text: Query | None  # text_query
    words: Query | None  # matches_query
    filters: tuple[tuple[Occur, Query], ...]  # every other filter but the category and the place
    category_id: int | None

    def counted(self, *extra: tuple[Occur, Query], scored: bool = False) -> Query:
        """What the category counts count: everything but the category filter."""
        keywords = self.text if scored else self.words
        return self.index.scoped(self.tenant_id, *([(Occur.Must, keywords)] if keywords is not None else []),
                                 *self.filters, *extra)

    def matching(self, *extra: tuple[Occur, Query], scored: bool = False) -> Query:
        category = () if self.category_id is None else (
            (Occur.Must, self.index.filter(Query.term_query(self.index.schema, "category_ids", self.category_id))),)
        return self.counted(*category, *extra, scored=scored)


@dataclass(slots=True)
class _Row:
    """A matching pro while ranking: where it is in the index, and what its order needs."""

    address: DocAddress
    text: float  # text relevance; 1.0 when browsing
    distance: float | None = None  # from the place, when there is one
    pro_id: int = 0
    score: float = 0.0  # best match, or the value sorted on


class _Recency:
    """ranking.py's recency points of a `last_active` fast field value (epoch seconds), once per distinct value."""

    def __init__(self, now: datetime):
        self.now_us = (now - _EPOCH) // timedelta(microseconds=1)
        self.known: dict[int, float] = {}

    def __call__(self, seconds: int) -> float:
        points = self.known.get(seconds)
        if points is None:
            # ranking.days_since(_from_epoch(seconds), now), the same float: timedelta.total_seconds() divides the
            # microseconds by a million
            days = max(0.0, (self.now_us - seconds * 1_000_000) / 1_000_000 / 86400)
            points = self.known[seconds] = ranking.WEIGHTS.recency * ranking.gauss(
                days, scale=ranking.RECENCY_HALF_DAYS, offset=ranking.RECENCY_OFFSET_DAYS)
        return points


def _best_match(text: float, quality: float, recency: float, distance_points: float = 0.0) -> float:
    """ranking.best_match_score from a pro's stored static quality (its rating, response and verified points,
    summed in ranking.signal_points' order), so the same float: text + ((static + recency) + distance); without a
    place, adding 0.0 changes nothing. Rounding is monotonic, so the same sum over upper bounds is an upper bound
    (the rescoring's ceilings)."""
    return ranking.WEIGHTS.text * text + ((quality + recency) + distance_points)


def _distance_points(distance: float) -> float:
    return ranking.WEIGHTS.distance * ranking.gauss(distance, scale=ranking.DISTANCE_HALF_KM)


def _distances(origin: tuple[float, float], lats: list[float], lons: list[float]) -> list[float]:
    """backend.geo.distance_km from `origin` to each point, the same operations with the origin's part once."""
    lat1, lon1 = math.radians(origin[0]), math.radians(origin[1])
    cos1 = math.cos(lat1)
    radians, sin, cos, asin, sqrt = math.radians, math.sin, math.cos, math.asin, math.sqrt
    result = []
    for lat, lon in zip(lats, lons, strict=True):
        lat2 = radians(lat)
        h = sin((lat2 - lat1) / 2) ** 2 + cos1 * cos(lat2) * sin((radians(lon) - lon1) / 2) ** 2
        result.append(EARTH_RADIUS_KM * 2 * asin(sqrt(min(1.0, h))))
    return result


# Sort -> (fast field, order, its type, the tie-break fast field, its order): the Elasticsearch adapter's `sort`.
# A sort by price is one ordered fast field, the price and the pro id in one number (_price_keys): no ties.
_FIELD_SORTS = {
    Sort.RATING: ("rating_score", Order.Desc, FieldType.Float, "rating_tiebreak", Order.Desc),
    Sort.PRICE_LOW: ("price_up", Order.Asc, None, None, None),
    Sort.PRICE_HIGH: ("price_down", Order.Desc, None, None, None),
}


class TantivyEngine:
    """SearchEngine over tantivy indexes in `path` (see the module docstring)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._words = _Index(self.path / f"words-v{SCHEMA_VERSION}", _words_schema())
        self._pros = _Index(self.path / f"pros-v{SCHEMA_VERSION}", _pro_schema(), follower=self._words)
        self._vocabulary = _VocabularyCache()
        self._tenant_counts = _TenantCounts()
        self._requests = _Index(self.path / f"requests-v{SCHEMA_VERSION}", _request_schema())

    # -- writes -------------------------------------------------------------------------------------------------

    def upsert_pros(self, docs: Sequence[ProDocument]) -> None:
        rows = {_doc_key(doc.tenant_id, doc.pro_id): _pro_document(doc) for doc in docs}  # the last one wins
        if rows:
            self._add_words(docs)
            self._pros.write(lambda writer: self._replace(writer, rows))

    def _add_words(self, docs: Iterable[ProDocument]) -> None:
        """The words of the documents' text fields that the words index lacks, committed before the documents
        (_Vocabulary). Words are never removed: one that no pro has any more matches nothing."""
        analyze = self._pros.analyzer.analyze
        words: set[str] = set()
        for doc in docs:  # the tokenizer splits on spaces: the fields' tokens, all at once
            words.update(analyze(" ".join((doc.name, doc.headline, *doc.skills, *doc.category_names, doc.bio))))
        index = self._words
        index.reload()  # the words other processes added
        searcher = index.searcher()
        new = sorted(word for word in words if not searcher.doc_freq("word", word))
        if new:
            index.write(lambda writer: [writer.add_document(Document(word=word)) for word in new])

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
        searcher, version = index.snapshot()
        now = query.now or datetime.now(UTC).replace(tzinfo=None)
        sort = effective_sort(query.sort, query.origin)
        # after the pros' searcher, so at least as new (_Index.follower)
        vocabulary = _Vocabulary(self._words, self._vocabulary)
        if vocabulary.searcher.num_docs == 0 < searcher.num_docs:  # a words index lost: the automata find all
            text, words = index.text_query(PRO_TEXT_FIELDS, query.text), index.matches_query(query.text)
        elif (built := vocabulary.built.get(query.text)) is not None:
            text, words = built
        else:
            text = index.text_query(PRO_TEXT_FIELDS, query.text, vocabulary)
            words = index.matches_query(query.text, vocabulary)
            vocabulary.built[query.text] = (text, words)
        scope = _Scope(index, tenant_id, text, words, tuple(self._pro_filters(query)), query.category_id)
        needed = query.offset + query.limit
        if query.origin is not None:
            total, facets, ranked = self._search_place(searcher, scope, query, text is not None, sort, needed, now)
        else:
            total, facets, ranked = self._search_everywhere(searcher, version, scope, text is not None, sort, needed,
                                                            now)
        page = ranked[query.offset:needed]
        return ProResults(total=total, hits=self._pro_hits(searcher, page), category_counts=facets)

    def _pro_filters(self, query: ProQuery) -> list[tuple[Occur, Query]]:
        """Every filter of the query except the category and the place (facets leave the category out; the place
        is its grid cells, then exact distances)."""
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

    def _search_everywhere(self, searcher: Searcher, version: int, scope: _Scope, has_text: bool, sort: Sort,
                           needed: int, now: datetime) -> tuple[int, dict[int, int], list[_Row]]:
        """Without a place: the category counts (an aggregation, beside the rest) and one top-k search with the
        total (a few for browsing's rounds or a sort's ties)."""
        keywords = has_text and sort is Sort.BEST
        aggregations: dict[str, Any] = {"categories": _CATEGORY_TERMS}
        if keywords:  # the rescoring's bound: the best signals any match has
            aggregations |= {"quality": {"max": {"field": "quality"}}, "active": {"max": {"field": "last_active"}}}
        unfiltered = scope.words is None and not scope.filters  # a tenant's counts: the same until the index changes
        known = self._tenant_counts.get(version, scope.tenant_id) if unfiltered else None
        counting = _beside(searcher.aggregate, scope.counted(), aggregations) if known is None else _done(known)
        try:
            if needed == 0:
                ranked, total = [], self._pros.count(searcher, scope.matching())
            elif sort is not Sort.BEST:
                ranked, total = self._by_field(searcher, scope, sort, needed)
            elif keywords:
                ranked, total = self._best_by_text(searcher, scope, needed, now, counting)
            else:
                ranked, total = self._best_by_quality(searcher, scope, needed, now)
        finally:
            aggregated = counting.result()
        if unfiltered and known is None:
            self._tenant_counts.put(version, scope.tenant_id, aggregated)
        return total, _buckets(aggregated), ranked

    def _best_by_text(self, searcher: Searcher, scope: _Scope, needed: int, now: datetime,
                      counting: Future) -> tuple[list[_Row], int]:
        """Keywords' best match (module docstring): up to RESCORE_WINDOW matches by text relevance, scored in that
        order until the next one's text relevance plus the best signals of any match cannot reach the page."""
        result = searcher.search(scope.matching(scored=True), limit=max(RESCORE_WINDOW, needed), count=True)
        hits = result.hits
        if not hits:
            return [], result.count
        recency = _Recency(now)
        aggregated = counting.result()
        best_signals = float(aggregated["quality"]["value"]) + recency(int(aggregated["active"]["value"]))
        rows: list[_Row] = []
        floor = -math.inf  # the page's last score so far
        position, take = 0, max(FIRST_ROUND, 4 * needed)
        while position < len(hits):
            chunk = hits[position:position + take]
            position += len(chunk)
            rows = self._top(rows + self._scored(searcher, chunk, recency, floor), needed)
            if len(rows) >= needed:
                floor = rows[-1].score
                if position < len(hits) and _best_match(hits[position][0], best_signals, 0.0) < floor:
                    break
            take *= 4
        return rows, result.count

    def _best_by_quality(self, searcher: Searcher, scope: _Scope, needed: int,
                         now: datetime) -> tuple[list[_Row], int]:
        """Browsing's best match, exactly (module docstring): rounds of the matches with the highest static quality
        until no pro left out can reach the page."""
        recency = _Recency(now)
        take = max(FIRST_ROUND, 4 * needed)
        total: int | None = None
        while True:
            result = searcher.search(scope.matching(), limit=take, count=total is None, order_by_field="quality",
                                     order=Order.Desc)
            total = result.count if total is None else total
            hits = result.hits
            rows = self._top(self._scored(searcher, [(1.0, address) for _, address in hits], recency), needed)
            if len(hits) >= total or len(hits) < take:
                break
            # No pro left out has a higher static quality than the last one fetched, nor more than full recency.
            ceiling = _best_match(1.0, float(hits[-1][0]), ranking.WEIGHTS.recency)
            if len(rows) >= needed and ceiling < rows[-1].score:
                break
            take *= 4
        return rows, total

    @staticmethod
    def _scored(searcher: Searcher, hits: list[tuple[float, DocAddress]], recency: _Recency,
                floor: float = -math.inf) -> list[_Row]:
        """(text relevance, address) -> rows scored by best match without a place; not those that cannot reach
        `floor` (the page's last score so far) even with full recency."""
        addresses = [address for _, address in hits]
        quality = searcher.fast_field_values("quality", addresses)
        if floor > -math.inf:
            full = ranking.WEIGHTS.recency
            kept = [i for i, ((text, _), points) in enumerate(zip(hits, quality, strict=True))
                    if _best_match(text, points, full) >= floor]
            hits, quality, addresses = [hits[i] for i in kept], [quality[i] for i in kept], [addresses[i] for i in kept]
        if not addresses:
            return []
        active = searcher.fast_field_values("last_active", addresses)
        pro_ids = searcher.fast_field_values("pro_id", addresses)
        return [_Row(address, text, pro_id=pro_id, score=_best_match(text, points, recency(seconds)))
                for (text, address), points, seconds, pro_id in zip(hits, quality, active, pro_ids, strict=True)]

    @staticmethod
    def _top(rows: list[_Row], needed: int) -> list[_Row]:
        """Best match's order (the pro id breaks ties, as in the Elasticsearch adapter), the first `needed`."""
        return heapq.nsmallest(needed, rows, key=lambda row: (-row.score, row.pro_id))

    def _by_field(self, searcher: Searcher, scope: _Scope, sort: Sort, needed: int) -> tuple[list[_Row], int]:
        """The first `needed` by a sort field; for the rating, the pros tied with the last of them come in
        tie-break order (a second search among them)."""
        index = self._pros
        field, order, field_type, tiebreak, tie_order = _FIELD_SORTS[sort]
        result = searcher.search(scope.matching(), limit=needed, count=True, order_by_field=field, order=order)
        hits = result.hits
        addresses = [address for _, address in hits]
        if len(hits) == needed and tiebreak is not None:  # more pros may share the last value
            boundary = hits[-1][0]
            addresses = [address for value, address in hits if value != boundary]
            tied = index.filter(Query.range_query(index.schema, field, field_type, boundary, boundary))
            addresses += [address for _, address in searcher.search(
                scope.matching((Occur.Must, tied)), limit=needed - len(addresses), count=False,
                order_by_field=tiebreak, order=tie_order).hits]
        rows = self._sorted(searcher, [_Row(address, 0.0) for address in addresses], sort)
        return rows, result.count

    @staticmethod
    def _sorted(searcher: Searcher, rows: list[_Row], sort: Sort) -> list[_Row]:
        """The Elasticsearch adapter's `sort` clauses, in Python: the value (kept as the row's score), then the
        pro id (for the rating, the number of reviews first)."""
        addresses = [row.address for row in rows]
        pro_ids = searcher.fast_field_values("pro_id", addresses) if rows else []
        if sort is Sort.DISTANCE:
            values: list[Any] = [row.distance for row in rows]
            keys = [(value, pro_id) for value, pro_id in zip(values, pro_ids, strict=True)]
        elif sort is Sort.RATING:
            values = searcher.fast_field_values("rating_score", addresses) if rows else []
            counts = searcher.fast_field_values("rating_count", addresses) if rows else []
            keys = [(-value, -count, pro_id) for value, count, pro_id in zip(values, counts, pro_ids, strict=True)]
        else:
            values = searcher.fast_field_values("hourly_rate_minor", addresses) if rows else []
            sign = 1 if sort is Sort.PRICE_LOW else -1
            keys = [(sign * value, pro_id) for value, pro_id in zip(values, pro_ids, strict=True)]
        for row, value, pro_id in zip(rows, values, pro_ids, strict=True):
            row.score, row.pro_id = float(value), pro_id
        return [rows[i] for i in sorted(range(len(rows)), key=keys.__getitem__)]

    def _search_place(self, searcher: Searcher, scope: _Scope, query: ProQuery, has_text: bool, sort: Sort,
                      needed: int, now: datetime) -> tuple[int, dict[int, int], list[_Row]]:
        """Every pro in the place's cells (`box`), kept when within the radius (and, for instant match, when their
        own radius reaches the place): exact totals, category counts and order (module docstring)."""
        assert query.origin is not None
        index = self._pros
        reach = query.radius_km
        if query.serves_origin:  # nobody reaches farther than the longest service radius: a smaller circle
            longest = searcher.search(scope.counted(), limit=1, order_by_field="radius_km", order=Order.Desc).hits
            reach = min(reach, float(longest[0][0])) if longest else 0.0
        near, surely = index.near(query.origin, reach)
        box = tuple(near)
        scored = has_text and sort is Sort.BEST  # only best match reads the text relevance
        if scope.category_id is not None and surely is not None and not query.serves_origin:
            # Counted by an aggregation over the cells surely inside the circle, plus the others' pros one by one;
            # the category's pros alone are ranked.
            counting = _beside(searcher.aggregate, scope.counted(*box, (Occur.Must, index.filter(surely))),
                               {"categories": _CATEGORY_TERMS})
            try:
                edge = self._every(searcher, scope.counted(*box, (Occur.MustNot, surely)))
                edge_inside, _ = self._split(searcher, edge, query, has_text)
                extra = self._categories(searcher, scope, [row.address for row in edge_inside])[0]
                inside, _ = self._split(searcher, self._every(searcher, scope.matching(*box, scored=scored)), query,
                                        has_text)
            finally:
                facets = _buckets(counting.result())
            for category_id, count in extra.items():
                facets[category_id] = facets.get(category_id, 0) + count
            return len(inside), facets, self._place_order(searcher, inside, sort, needed, now)
        first = searcher.search(scope.counted(*box, scored=scored), limit=PLACE_FETCH, count=True)
        if first.count < PLACE_FETCH:  # all of them at once: counted here
            inside, _ = self._split(searcher, first.hits, query, has_text)
            facets, members = self._categories(searcher, scope, [row.address for row in inside])
            if scope.category_id is not None:
                inside = [row for row, member in zip(inside, members, strict=True) if member]
        else:  # counted by an aggregation over all the cells, less their pros outside the circle
            counting = _beside(searcher.aggregate, scope.counted(*box), {"categories": _CATEGORY_TERMS})
            try:
                hits = searcher.search(scope.counted(*box, scored=scored), limit=first.count, count=False).hits
                inside, outside = self._split(searcher, hits, query, has_text)
            finally:
                facets = _buckets(counting.result())
            for category_id, count in self._categories(searcher, scope, outside)[0].items():
                facets[category_id] -= count
            facets = {category_id: count for category_id, count in facets.items() if count}
            if scope.category_id is not None:
                in_box = searcher.search(scope.matching(*box), limit=first.count, count=False).hits
                in_category = {_key(address) for _, address in in_box}
                inside = [row for row in inside if _key(row.address) in in_category]
        return len(inside), facets, self._place_order(searcher, inside, sort, needed, now)

    def _place_order(self, searcher: Searcher, inside: list[_Row], sort: Sort, needed: int,
                     now: datetime) -> list[_Row]:
        if sort is Sort.BEST:
            return self._best_in_place(searcher, inside, needed, now)
        return self._sorted(searcher, inside, sort)[:needed]

    @staticmethod
    def _every(searcher: Searcher, query: Query) -> list[tuple[float, DocAddress]]:
        """Every hit of `query`: one search when they are fewer than PLACE_FETCH."""
        first = searcher.search(query, limit=PLACE_FETCH, count=True)
        if first.count <= len(first.hits):
            return first.hits
        return searcher.search(query, limit=first.count, count=False).hits

    @staticmethod
    def _split(searcher: Searcher, hits: list[tuple[float, DocAddress]], query: ProQuery,
               has_text: bool) -> tuple[list[_Row], list[DocAddress]]:
        """Hits around a place -> (rows within the radius, with their distance; the addresses of the others)."""
        assert query.origin is not None
        addresses = [address for _, address in hits]
        if not addresses:
            return [], []
        distances = _distances(query.origin, searcher.fast_field_values("lat", addresses),
                               searcher.fast_field_values("lon", addresses))
        reaches = (searcher.fast_field_values("radius_km", addresses) if query.serves_origin
                   else [math.inf] * len(addresses))
        inside, outside = [], []
        for (score, address), distance, own in zip(hits, distances, reaches, strict=True):
            if distance <= query.radius_km and distance <= own:
                inside.append(_Row(address, score if has_text else 1.0, distance))
            else:
                outside.append(address)
        return inside, outside

    def _categories(self, searcher: Searcher, scope: _Scope,
                    addresses: list[DocAddress]) -> tuple[dict[int, int], list[bool]]:
        """Pros per category among `addresses`, and which of them are in the query's category: from the packed
        category ids (_category_packs); pros whose ids did not fit are asked of the index by their ids."""
        counts: dict[int, int] = {}
        if not addresses:
            return counts, []
        packs = searcher.fast_field_values("category_pack_0", addresses)
        ids = [_unpack(pack) if pack and pack != PACK_OVERFLOW else [] for pack in packs]
        overflow = [position for position, pack in enumerate(packs) if pack == PACK_OVERFLOW]
        full = [position for position, pack in enumerate(packs)  # a full pack: the next one may hold more
                if pack and pack != PACK_OVERFLOW and pack >> _LAST_SLOT]
        for pack_number in range(1, CATEGORY_PACKS):
            if not full:
                break
            more = searcher.fast_field_values(f"category_pack_{pack_number}", [addresses[i] for i in full])
            for position, pack in zip(full, more, strict=True):
                ids[position] += _unpack(pack) if pack else []
            full = [position for position, pack in zip(full, more, strict=True) if pack and pack >> _LAST_SLOT]
        wanted = scope.category_id
        members = [wanted in mine for mine in ids]
        for mine in ids:
            for category_id in mine:
                counts[category_id] = counts.get(category_id, 0) + 1
        if overflow:
            index = self._pros
            pro_ids = searcher.fast_field_values("pro_id", [addresses[i] for i in overflow])
            theirs = (Occur.Must, Query.term_set_query(index.schema, "pro_id", sorted(pro_ids)))
            aggregated = searcher.aggregate(index.scoped(scope.tenant_id, theirs), {"categories": _CATEGORY_TERMS})
            for category_id, count in _buckets(aggregated).items():
                counts[category_id] = counts.get(category_id, 0) + count
            if wanted is not None:
                category = (Occur.Must, index.filter(Query.term_query(index.schema, "category_ids", wanted)))
                found = searcher.search(index.scoped(scope.tenant_id, theirs, category), limit=len(overflow),
                                        count=False).hits
                in_category = set(searcher.fast_field_values("pro_id", [address for _, address in found])
                                  if found else [])
                for position, pro_id in zip(overflow, pro_ids, strict=True):
                    members[position] = pro_id in in_category
        return counts, members

    @staticmethod
    def _best_in_place(searcher: Searcher, rows: list[_Row], needed: int, now: datetime) -> list[_Row]:
        """Best match among `rows`, exactly: each pro's ceiling (text, distance and static quality, plus full
        recency) orders the scoring, which stops once the next ceiling cannot reach the page."""
        if not rows or needed == 0:
            return []
        quality = searcher.fast_field_values("quality", [row.address for row in rows])
        near = [_distance_points(row.distance) for row in rows]  # type: ignore[arg-type]
        ceilings = [_best_match(row.text, points, ranking.WEIGHTS.recency, distance_points)
                    for row, points, distance_points in zip(rows, quality, near, strict=True)]
        order = sorted(range(len(rows)), key=ceilings.__getitem__, reverse=True)
        recency = _Recency(now)
        scored: list[_Row] = []
        position, take = 0, max(FIRST_ROUND, 4 * needed)
        while position < len(order):
            chunk = order[position:position + take]
            position += len(chunk)
            addresses = [rows[i].address for i in chunk]
            active = searcher.fast_field_values("last_active", addresses)
            pro_ids = searcher.fast_field_values("pro_id", addresses)
            for i, seconds, pro_id in zip(chunk, active, pro_ids, strict=True):
                row = rows[i]
                row.pro_id, row.score = pro_id, _best_match(row.text, quality[i], recency(seconds), near[i])
                scored.append(row)
            if position < len(order) and len(scored) >= needed:
                if ceilings[order[position]] < heapq.nlargest(needed, (row.score for row in scored))[-1]:
                    break
            take *= 4
        return TantivyEngine._top(scored, needed)

    @staticmethod
    def _fast(searcher: Searcher, addresses: list[DocAddress], names: Sequence[str]) -> dict[str, list]:
        if not addresses:
            return {name: [] for name in names}
        return {name: searcher.fast_field_values(name, addresses) for name in names}

    @staticmethod
    def _pro_hits(searcher: Searcher, page: list[_Row]) -> list[ProHit]:
        return [ProHit(doc=pro_from_source(json.loads(searcher.doc(row.address)["source"][0])),
                       score=float(row.score), distance_km=row.distance) for row in page]

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

