"""A local stand-in for Elasticsearch 9, so the real `elasticsearch` client (and the adapter's queries) can be
tested offline: no Elasticsearch, OpenSearch or compatible server can be installed here.

It speaks the REST API the adapter uses, in Elasticsearch's shapes: index exists/create/delete (with `mappings` and
`settings`), `_bulk` (NDJSON; index and delete), `_doc` (index, delete), `_search`, `_count`, `_delete_by_query`, `_refresh`. Every answer
carries `X-Elastic-Product: Elasticsearch` (without it the client raises UnsupportedProductError) and the
`application/vnd.elasticsearch+json; compatible-with=9` content type the client asks for in `Accept`.

What it checks, because Elasticsearch does, so that a mistake fails here before production:
- mappings: `dynamic: strict` refuses unknown fields, values must suit their field's type, `_routing.required`
  refuses writes without routing; only the analyzers it knows (standard tokenizer, lowercase, asciifolding);
- refresh: writes become searchable only on a refresh (`refresh=true|wait_for` on the write, or `_refresh`);
- queries: it EVALUATES the subset the adapter emits: bool (must/filter/should/must_not/minimum_should_match),
  term, terms, range, ids, exists, prefix, match_all, match_none, geo_distance, multi_match (best_fields with
  fuzziness "AUTO[:low,high]" or a number, phrase_prefix), function_score (gauss on geo_point and date,
  field_value_factor, filter+weight; score_mode and boost_mode "sum"); sort on fields, `_score` and
  `_geo_distance`; from/size, search_after, track_total_hits, post_filter, `_source` filtering; terms
  aggregations (size, include). Anything else is a 400 `parsing_exception`, as Elasticsearch answers an unknown
  query, so a new query shape fails loudly instead of being half-understood.
Scores: BM25 (k1 1.2, b 0.75) over the index's own statistics, a fuzzy match counting half; close to, but not, Lucene's
numbers: tests must not depend on exact text scores, only on what the functions add (computed as Elasticsearch
does: gauss decay, arc distance on its 6371008.7714 m sphere).

Failure injection: `fail_next(n, status)` answers the next requests with an error without running them;
`unreachable = True` drops every connection unanswered (the client sees a ConnectionError).

Use: `with FakeElasticsearch() as fake: ElasticEngine(fake.url)`.
"""

from __future__ import annotations

import copy
import json
import math
import re
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.http_fake import ServedFake

PRODUCT_HEADERS = {"X-Elastic-Product": "Elasticsearch",
                   "Content-Type": "application/vnd.elasticsearch+json; compatible-with=9"}
VERSION = "9.1.0"
EARTH_RADIUS_M = 6371008.7714  # Elasticsearch's GeoUtils.EARTH_MEAN_RADIUS
K1, B = 1.2, 0.75
FUZZY_FACTOR = 0.5
DEFAULT_TRACK_TOTAL = 10_000
NUMERIC = {"integer", "long", "short", "byte", "double", "float", "half_float", "scaled_float"}


class EsError(Exception):
    """An error answer in Elasticsearch's shape: {"error": {"type", "reason", "root_cause"}, "status"}."""

    def __init__(self, status: int, kind: str, reason: str):
        super().__init__(reason)
        self.status, self.kind, self.reason = status, kind, reason

    def body(self) -> dict[str, Any]:
        cause = {"type": self.kind, "reason": self.reason}
        return {"error": {**cause, "root_cause": [cause]}, "status": self.status}


def _bad_query(reason: str) -> EsError:
    return EsError(400, "parsing_exception", reason)


# ---------------------------------------------------------------------------------------------------- analysis

_TOKEN = re.compile(r"[^\W_]+")


def _fold(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


@dataclass
class _Analyzer:
    fold: bool

    def tokens(self, text: str) -> list[str]:
        words = [word.lower() for word in _TOKEN.findall(text)]
        return [_fold(word) for word in words] if self.fold else words


def _analyzers(settings: dict[str, Any]) -> dict[str, _Analyzer]:
    known = {"standard": _Analyzer(fold=False)}
    defined = settings.get("analysis", {}).get("analyzer", {})
    for name, spec in defined.items():
        filters = spec.get("filter", [])
        if spec.get("type") != "custom" or spec.get("tokenizer") != "standard" or \
                any(f not in ("lowercase", "asciifolding") for f in filters) or "lowercase" not in filters:
            raise EsError(400, "illegal_argument_exception", f"the fake does not know analyzer [{name}]: {spec}")
        known[name] = _Analyzer(fold="asciifolding" in filters)
    return known


# ---------------------------------------------------------------------------------------------------- values

def _parse_date(value: Any) -> float:
    """A date field's value as epoch milliseconds (naive ISO text is UTC, as in Elasticsearch)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time())
        except ValueError as exc:
            raise EsError(400, "mapper_parsing_exception", f"failed to parse date [{text}]") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp() * 1000


def _parse_point(value: Any) -> tuple[float, float]:
    if isinstance(value, dict) and {"lat", "lon"} <= value.keys():
        return float(value["lat"]), float(value["lon"])
    if isinstance(value, str) and "," in value:
        lat, lon = value.split(",", 1)
        return float(lat), float(lon)
    if isinstance(value, list) and len(value) == 2:
        return float(value[1]), float(value[0])
    raise EsError(400, "parse_exception", f"failed to parse geo point [{value}]")


def _arc_distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return EARTH_RADIUS_M * 2 * math.asin(min(1.0, math.sqrt(h)))


_UNITS_M = {"km": 1000.0, "m": 1.0, "mi": 1609.344, "yd": 0.9144, "ft": 0.3048, "cm": 0.01, "mm": 0.001}
_UNITS_MS = {"d": 86_400_000.0, "h": 3_600_000.0, "m": 60_000.0, "s": 1000.0, "ms": 1.0}


def _amount(text: Any, units: dict[str, float], what: str) -> float:
    match = re.fullmatch(r"\s*([0-9.]+)\s*([a-z]*)\s*", str(text))
    if not match or (match.group(2) and match.group(2) not in units):
        raise _bad_query(f"failed to parse {what} [{text}]")
    return float(match.group(1)) * units.get(match.group(2) or next(iter(units)), 1.0)


def _damerau(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (transpositions count one), capped at limit + 1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def _fuzziness(value: Any, term: str) -> int:
    if value is None:
        return 0
    text = str(value)
    if text.upper().startswith("AUTO"):
        low, high = 3, 6
        if ":" in text:
            low, high = (int(part) for part in text.split(":", 1)[1].split(","))
        return 0 if len(term) < low else 1 if len(term) < high else 2
    if text.isdigit():
        return min(2, int(text))
    raise _bad_query(f"bad fuzziness [{text}]")


# ---------------------------------------------------------------------------------------------------- indices

@dataclass
class _Doc:
    id: str
    source: dict[str, Any]
    routing: str | None
    seq: int


@dataclass
class _Index:
    name: str
    mappings: dict[str, Any]
    settings: dict[str, Any]
    analyzers: dict[str, _Analyzer]
    latest: dict[str, _Doc] = field(default_factory=dict)  # every write
    visible: dict[str, _Doc] = field(default_factory=dict)  # what searches see: `latest` at the last refresh

    @property
    def properties(self) -> dict[str, dict[str, Any]]:
        return self.mappings.get("properties", {})

    def field_type(self, name: str) -> str | None:
        spec = self.properties.get(name)
        return spec.get("type", "object") if spec else None

    def analyzer(self, name: str) -> _Analyzer:
        return self.analyzers[self.properties.get(name, {}).get("analyzer", "standard")]

    def refresh(self) -> None:
        self.visible = dict(self.latest)

    def check(self, source: dict[str, Any], routing: str | None) -> None:
        """What Elasticsearch's mapper refuses."""
        if self.mappings.get("_routing", {}).get("required") and not routing:
            raise EsError(400, "routing_missing_exception", f"routing is required for [{self.name}]")
        for key, value in source.items():
            kind = self.field_type(key)
            if kind is None:
                if self.mappings.get("dynamic") == "strict":
                    raise EsError(400, "strict_dynamic_mapping_exception",
                                  f"mapping set to strict, dynamic introduction of [{key}] within [_doc] "
                                  "is not allowed")
                continue
            for item in value if isinstance(value, list) else [value]:
                if item is not None:
                    _check_value(key, kind, item)


def _check_value(key: str, kind: str, value: Any) -> None:
    ok = {
        "text": isinstance(value, str), "keyword": isinstance(value, str | int | float | bool),
        "boolean": isinstance(value, bool) or value in ("true", "false"),
        "date": isinstance(value, str | int), "geo_point": True,
    }.get(kind, isinstance(value, int | float) and not isinstance(value, bool) if kind in NUMERIC else True)
    if kind in ("integer", "long", "short", "byte") and isinstance(value, float) and not value.is_integer():
        ok = False
    if not ok:
        raise EsError(400, "document_parsing_exception", f"failed to parse field [{key}] of type [{kind}]")
    if kind == "date":
        _parse_date(value)
    if kind == "geo_point":
        _parse_point(value)


def _values(doc: _Doc, name: str) -> list[Any]:
    value = doc.source.get(name)
    if value is None:
        return []
    return [item for item in (value if isinstance(value, list) else [value]) if item is not None]


# ---------------------------------------------------------------------------------------------------- queries

class _Context:
    """One search: the index, and its term statistics for BM25 (computed once per field)."""

    def __init__(self, index: _Index):
        self.index = index
        self._stats: dict[str, tuple[int, float, dict[str, int]]] = {}
        self._tokens: dict[tuple[str, str], list[str]] = {}

    def tokens(self, doc: _Doc, name: str) -> list[str]:
        key = (doc.id, name)
        if key not in self._tokens:
            analyzer = self.index.analyzer(name)
            self._tokens[key] = [token for value in _values(doc, name) for token in analyzer.tokens(str(value))]
        return self._tokens[key]

    def stats(self, name: str) -> tuple[int, float, dict[str, int]]:
        if name not in self._stats:
            docs = [doc for doc in self.index.visible.values() if _values(doc, name)]
            frequencies: dict[str, int] = {}
            total = 0
            for doc in docs:
                tokens = self.tokens(doc, name)
                total += len(tokens)
                for token in set(tokens):
                    frequencies[token] = frequencies.get(token, 0) + 1
            self._stats[name] = (len(docs), total / len(docs) if docs else 0.0, frequencies)
        return self._stats[name]

    def bm25(self, doc: _Doc, name: str, token: str) -> float:
        count, average, frequencies = self.stats(name)
        tokens = self.tokens(doc, name)
        frequency = tokens.count(token)
        if not frequency:
            return 0.0
        df = frequencies.get(token, 0)
        idf = math.log(1 + (count - df + 0.5) / (df + 0.5))
        return idf * frequency * (K1 + 1) / (frequency + K1 * (1 - B + B * len(tokens) / (average or 1)))


Result = tuple[bool, float]


def evaluate(query: dict[str, Any], doc: _Doc, ctx: _Context) -> Result:
    """(matches, score) of one query clause for one document."""
    if not isinstance(query, dict) or len(query) != 1:
        raise _bad_query(f"a query is an object with one key: {query!r}")
    kind, spec = next(iter(query.items()))
    handler = _QUERIES.get(kind)
    if handler is None:
        raise _bad_query(f"unknown query [{kind}]")
    return handler(spec, doc, ctx)


def _bool(spec: dict[str, Any], doc: _Doc, ctx: _Context) -> Result:
    allowed = {"must", "filter", "should", "must_not", "minimum_should_match", "boost"}
    if unknown := set(spec) - allowed:
        raise _bad_query(f"[bool] unknown parameters {sorted(unknown)}")

    def clauses(key: str) -> list[dict[str, Any]]:
        value = spec.get(key, [])
        return value if isinstance(value, list) else [value]

    score = 0.0
    for clause in clauses("must"):
        matched, points = evaluate(clause, doc, ctx)
        if not matched:
            return False, 0.0
        score += points
    for clause in clauses("filter"):
        if not evaluate(clause, doc, ctx)[0]:
            return False, 0.0
    for clause in clauses("must_not"):
        if evaluate(clause, doc, ctx)[0]:
            return False, 0.0
    should = [evaluate(clause, doc, ctx) for clause in clauses("should")]
    required = spec.get("minimum_should_match")
    if required is None:
        required = 1 if should and not clauses("must") and not clauses("filter") else 0
    if sum(matched for matched, _ in should) < int(required):
        return False, 0.0
    score += sum(points for matched, points in should if matched)
    return True, score * float(spec.get("boost", 1.0))


def _field_spec(spec: dict[str, Any], query: str, extra: set[str] = frozenset()) -> tuple[str, Any, dict]:
    fields = {key: value for key, value in spec.items() if key not in {"boost", "_name"} | extra}
    if len(fields) != 1:
        raise _bad_query(f"[{query}] query malformed: {spec}")
    name, value = next(iter(fields.items()))
    options = {key: value for key, value in spec.items() if key != name}
    return name, value, options


def _same(index: _Index, name: str, stored: Any, wanted: Any, doc: _Doc, ctx: _Context) -> bool:
    kind = index.field_type(name)
    if kind == "text":
        return str(wanted) in ctx.tokens(doc, name)
    if kind in NUMERIC:
        try:
            return float(stored) == float(wanted)
        except (TypeError, ValueError):
            return False
    if kind == "boolean":
        return str(stored).lower() == str(wanted).lower()
    if kind == "date":
        return _parse_date(stored) == _parse_date(wanted)
    return str(stored) == str(wanted) if not isinstance(stored, bool) else stored == wanted


def _term(spec: dict[str, Any], doc: _Doc, ctx: _Context) -> Result:
    name, value, _ = _field_spec(spec, "term")
    if isinstance(value, dict):
        value = value["value"]
    matched = any(_same(ctx.index, name, stored, value, doc, ctx) for stored in _values(doc, name))
    return matched, 1.0 if matched else 0.0


def _terms(spec: dict[str, Any], doc: _Doc, ctx: _Context) -> Result:
    name, wanted, _ = _field_spec(spec, "terms")
    if not isinstance(wanted, list):
        raise _bad_query("[terms] query does not support a single value; give a list")
    matched = any(_same(ctx.index, name, stored, value, doc, ctx) for stored in _values(doc, name)
                  for value in wanted)
    return matched, 1.0 if matched else 0.0


def _range(spec: dict[str, Any], doc: _Doc, ctx: _Context) -> Result:
    name, bounds, _ = _field_spec(spec, "range")
    if unknown := set(bounds) - {"gt", "gte", "lt", "lte", "format", "boost"}:
        raise _bad_query(f"[range] unknown bounds {sorted(unknown)}")
    convert: Callable[[Any], float] = _parse_date if ctx.index.field_type(name) == "date" else float
    checks = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b,
              "lte": lambda a, b: a <= b}
    for value in _values(doc, name):
        if all(checks[key](convert(value), convert(bound)) for key, bound in bounds.items() if key in checks):
            return True, 1.0
    return False, 0.0


def _ids(spec: dict[str, Any], doc: _Doc, ctx: _Context) -> Result:
    return doc.id in spec["values"], 1.0


def _exists(spec: dict[str, Any], doc: _Doc, ctx: _Context) -> Result:
    return bool(_values(doc, spec["field"])), 1.0


def _prefix(spec: dict[str, Any], doc: _Doc, ctx: _Context) -> Result:
    name, value, _ = _field_spec(spec, "prefix")
    if isinstance(value, dict):
        value = value["value"]
    if ctx.index.field_type(name) == "text":
        candidates = ctx.tokens(doc, name)
    else:
        candidates = [str(stored) for stored in _values(doc, name)]
    matched = any(candidate.startswith(str(value)) for candidate in candidates)
    return matched, 1.0 if matched else 0.0


def _match_all(spec: dict[str, Any], doc: _Doc, ctx: _Context) -> Result:
    return True, float(spec.get("boost", 1.0))


def _match_none(spec: dict[str, Any], doc: _Doc, ctx: _Context) -> Result:
    return False, 0.0


def _geo_distance(spec: dict[str, Any], doc: _Doc, ctx: _Context) -> Result:
    name, origin, options = _field_spec(spec, "geo_distance", {"distance", "distance_type", "validation_method"})
    if options.get("distance_type", "arc") != "arc":
        raise _bad_query("the fake knows only distance_type arc")
    limit = _amount(options["distance"], _UNITS_M, "distance")
    center = _parse_point(origin)
    matched = any(_arc_distance_m(center, _parse_point(value)) <= limit for value in _values_geo(doc, name))
    return matched, 1.0 if matched else 0.0


def _values_geo(doc: _Doc, name: str) -> list[Any]:
    value = doc.source.get(name)
    if value is None:
        return []
    return value if isinstance(value, list) and value and not isinstance(value[0], int | float) else [value]


def _multi_match(spec: dict[str, Any], doc: _Doc, ctx: _Context) -> Result:
    allowed = {"query", "fields", "type", "fuzziness", "operator", "boost", "tie_breaker"}
    if unknown := set(spec) - allowed:
        raise _bad_query(f"[multi_match] unknown parameters {sorted(unknown)}")
    kind = spec.get("type", "best_fields")
    if kind not in ("best_fields", "phrase_prefix"):
        raise _bad_query(f"the fake knows multi_match types best_fields and phrase_prefix, not [{kind}]")
    if kind == "phrase_prefix" and "fuzziness" in spec:
        raise EsError(400, "illegal_argument_exception", "fuzziness not allowed for type [phrase_prefix]")
    best = None
    for entry in spec["fields"]:
        name, _, boost = entry.partition("^")
        if ctx.index.field_type(name) != "text":
            raise _bad_query(f"the fake matches text fields only, not [{name}]")
        tokens = ctx.index.analyzer(name).tokens(str(spec["query"]))
        scored = (_phrase_prefix(tokens, doc, name, ctx) if kind == "phrase_prefix"
                  else _match_tokens(tokens, spec.get("fuzziness"), spec.get("operator", "or"), doc, name, ctx))
        if scored is not None:
            points = scored * float(boost or 1.0)
            best = points if best is None else max(best, points)
    if best is None:
        return False, 0.0
    return True, best * float(spec.get("boost", 1.0))


def _match_tokens(tokens: list[str], fuzziness: Any, operator: str, doc: _Doc, name: str,
                  ctx: _Context) -> float | None:
    present = ctx.tokens(doc, name)
    scores = []
    for token in tokens:
        if token in present:
            scores.append(ctx.bm25(doc, name, token))
            continue
        edits = _fuzziness(fuzziness, token)
        near = [candidate for candidate in set(present) if edits and _damerau(token, candidate, edits) <= edits]
        scores.append(max((ctx.bm25(doc, name, candidate) * FUZZY_FACTOR for candidate in near), default=None))
    matched = [score for score in scores if score is not None]
    if not matched or (operator == "and" and len(matched) < len(tokens)):
        return None
    return sum(matched)


def _phrase_prefix(tokens: list[str], doc: _Doc, name: str, ctx: _Context) -> float | None:
    if not tokens:
        return None
    present = ctx.tokens(doc, name)
    *head, last = tokens
    for start in range(len(present) - len(head)):
        if present[start:start + len(head)] == head and present[start + len(head)].startswith(last):
            return 1.0  # a prefix query scores a constant, as Lucene's constant-score rewrite does
    return None


def _function_score(spec: dict[str, Any], doc: _Doc, ctx: _Context) -> Result:
    allowed = {"query", "functions", "score_mode", "boost_mode", "boost", "max_boost", "min_score"}
    if unknown := set(spec) - allowed:
        raise _bad_query(f"[function_score] unknown parameters {sorted(unknown)}")
    for key in ("score_mode", "boost_mode"):
        if spec.get(key, "multiply") != "sum":
            raise _bad_query(f"the fake implements {key} [sum] only, not [{spec.get(key, 'multiply')}]")
    matched, query_score = evaluate(spec.get("query", {"match_all": {}}), doc, ctx)
    if not matched:
        return False, 0.0
    total = 0.0
    for function in spec.get("functions", []):
        if "filter" in function and not evaluate(function["filter"], doc, ctx)[0]:
            continue
        total += _score_function(function, doc, ctx) * float(function.get("weight", 1.0))
    return True, (query_score + total) * float(spec.get("boost", 1.0))


def _score_function(function: dict[str, Any], doc: _Doc, ctx: _Context) -> float:
    kinds = set(function) - {"filter", "weight"}
    if not kinds:
        return 1.0  # filter + weight alone
    if len(kinds) != 1:
        raise _bad_query(f"a score function has one type: {sorted(kinds)}")
    kind = kinds.pop()
    spec = function[kind]
    if kind == "field_value_factor":
        if spec.get("modifier", "none") != "none":
            raise _bad_query("the fake implements field_value_factor modifier [none] only")
        values = _values(doc, spec["field"])
        if not values:
            if "missing" not in spec:
                raise EsError(400, "exception", f"Missing value for field [{spec['field']}]")
            value = float(spec["missing"])
        else:
            value = float(values[0])
        return value * float(spec.get("factor", 1.0))
    if kind == "gauss":
        return _gauss(spec, doc, ctx)
    raise _bad_query(f"the fake does not implement score function [{kind}]")


def _gauss(spec: dict[str, Any], doc: _Doc, ctx: _Context) -> float:
    name, params, _ = _field_spec(spec, "gauss", {"multi_value_mode"})
    kind = ctx.index.field_type(name)
    decay = float(params.get("decay", 0.5))
    if kind == "geo_point":
        origin = _parse_point(params["origin"])
        scale = _amount(params["scale"], _UNITS_M, "scale")
        offset = _amount(params.get("offset", "0m"), _UNITS_M, "offset")
        values = _values_geo(doc, name)
        if not values:
            return 1.0  # Elasticsearch: a document without the field decays not at all
        distance = _arc_distance_m(origin, _parse_point(values[0]))
    elif kind == "date":
        origin_ms = _parse_date(params["origin"]) if params.get("origin", "now") != "now" else \
            datetime.now(UTC).timestamp() * 1000
        scale = _amount(params["scale"], _UNITS_MS, "scale")
        offset = _amount(params.get("offset", "0d"), _UNITS_MS, "offset")
        values = _values(doc, name)
        if not values:
            return 1.0
        distance = abs(_parse_date(values[0]) - origin_ms)
    else:
        raise _bad_query(f"the fake implements gauss on geo_point and date fields, not [{kind}]")
    sigma_squared = -(scale ** 2) / (2 * math.log(decay))
    return math.exp(-(max(0.0, distance - offset) ** 2) / (2 * sigma_squared))


_QUERIES: dict[str, Callable[[Any, _Doc, _Context], Result]] = {
    "bool": _bool, "term": _term, "terms": _terms, "range": _range, "ids": _ids, "exists": _exists,
    "prefix": _prefix, "match_all": _match_all, "match_none": _match_none, "geo_distance": _geo_distance,
    "multi_match": _multi_match, "function_score": _function_score,
}


# ---------------------------------------------------------------------------------------------------- search

_SEARCH_KEYS = {"query", "post_filter", "aggs", "aggregations", "sort", "from", "size", "track_total_hits",
                "_source", "search_after", "track_scores"}


def _sort_keys(sort: list[Any], doc: _Doc, score: float, index: _Index) -> list[tuple[Any, bool, Any]]:
    """Per sort clause: (comparable key, descending, value shown in the hit's "sort")."""
    keys = []
    for clause in sort:
        if isinstance(clause, str):
            clause = {clause: "desc" if clause == "_score" else "asc"}
        (name, spec), = clause.items()
        order = spec if isinstance(spec, str) else spec.get("order", "desc" if name == "_score" else "asc")
        descending = order == "desc"
        if name == "_score":
            keys.append((score, descending, score))
        elif name == "_geo_distance":
            options = dict(spec)
            unit = options.pop("unit", "m")
            options.pop("order", None)
            if options.pop("distance_type", "arc") != "arc":
                raise _bad_query("the fake knows only distance_type arc")
            (field_name, origin), = options.items()
            values = _values_geo(doc, field_name)
            shown = _arc_distance_m(_parse_point(origin), _parse_point(values[0])) / _UNITS_M[unit] \
                if values else math.inf
            keys.append((shown, descending, shown))
        else:
            kind = index.field_type(name)
            if kind is None:
                raise EsError(400, "query_shard_exception", f"No mapping found for [{name}] in order to sort on")
            if kind == "text":
                raise EsError(400, "illegal_argument_exception", f"Text fields are not sortable: [{name}]")
            values = _values(doc, name)
            if kind == "date":
                values = [_parse_date(value) for value in values]
            value = (max(values) if descending else min(values)) if values else None
            keys.append((value, descending, value))
    return keys


class _Descending:
    """Orders the other way round (descending sorts of any comparable value)."""

    def __init__(self, value: Any):
        self.value = value

    def __lt__(self, other: _Descending) -> bool:
        return other.value < self.value

    def __gt__(self, other: _Descending) -> bool:
        return other.value > self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and other.value == self.value


def _compare_key(keys: list[tuple[Any, bool, Any]]) -> tuple:
    """Missing values last whatever the order, as Elasticsearch's default `missing: _last`."""
    return tuple((1, 0) if value is None else (0, _Descending(value) if descending else value)
                 for value, descending, _ in keys)


def _source(source: dict[str, Any], spec: Any) -> dict[str, Any] | None:
    if spec is None or spec is True:
        return copy.deepcopy(source)
    if spec is False:
        return None
    includes = spec if isinstance(spec, list) else spec.get("includes", [])
    excludes = [] if isinstance(spec, list) else spec.get("excludes", [])
    return {key: copy.deepcopy(value) for key, value in source.items()
            if (not includes or key in includes) and key not in excludes}


def _terms_agg(spec: dict[str, Any], docs: list[_Doc], index: _Index) -> dict[str, Any]:
    if unknown := set(spec) - {"field", "size", "include", "order", "min_doc_count"}:
        raise _bad_query(f"[terms] aggregation: unknown parameters {sorted(unknown)}")
    name = spec["field"]
    kind = index.field_type(name)
    if kind in (None, "text"):
        raise EsError(400, "illegal_argument_exception", f"field [{name}] cannot be aggregated with terms")
    include = spec.get("include")
    if include is not None and not isinstance(include, str):
        raise _bad_query("the fake supports a regular expression `include` only")
    pattern = re.compile(include, re.DOTALL) if include else None
    counts: dict[Any, int] = {}
    for doc in docs:
        for value in set(_values(doc, name)):
            if pattern is None or pattern.fullmatch(str(value)):
                counts[value] = counts.get(value, 0) + 1
    order = spec.get("order", {"_count": "desc"})
    if order == {"_count": "desc"}:
        buckets = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    elif order in ({"_key": "asc"}, {"_key": "desc"}):
        buckets = sorted(counts.items(), reverse=order["_key"] == "desc")
    else:
        raise _bad_query(f"the fake orders terms buckets by _count desc or _key, not {order}")
    size = int(spec.get("size", 10))
    shown = buckets[:size]
    return {"doc_count_error_upper_bound": 0, "sum_other_doc_count": sum(count for _, count in buckets[size:]),
            "buckets": [{"key": key, "doc_count": count} for key, count in shown]}


def search(index: _Index, body: dict[str, Any]) -> dict[str, Any]:
    if unknown := set(body) - _SEARCH_KEYS:
        raise _bad_query(f"Unknown key for a START_OBJECT in [{sorted(unknown)[0]}].")
    ctx = _Context(index)
    query = body.get("query", {"match_all": {}})
    matched: list[tuple[_Doc, float]] = []
    for doc in sorted(index.visible.values(), key=lambda d: d.seq):
        ok, score = evaluate(query, doc, ctx)
        if ok:
            matched.append((doc, score))
    aggs_spec = body.get("aggs", body.get("aggregations", {}))
    aggregations = {}
    for name, spec in aggs_spec.items():
        (kind, params), = spec.items()
        if kind != "terms":
            raise _bad_query(f"Unknown aggregation type [{kind}]")
        aggregations[name] = _terms_agg(params, [doc for doc, _ in matched], index)
    if "post_filter" in body:
        matched = [(doc, score) for doc, score in matched if evaluate(body["post_filter"], doc, ctx)[0]]
    sort = body.get("sort", ["_score"])
    if not isinstance(sort, list):
        sort = [sort]
    keyed = [(_sort_keys(sort, doc, score, index), doc, score) for doc, score in matched]
    keyed.sort(key=lambda row: (_compare_key(row[0]), row[1].seq))
    if "search_after" in body:
        after = body["search_after"]
        keyed = [row for row in keyed if _compare_key(row[0]) > _compare_key(
            [(value, descending, None) for value, (_, descending, _) in zip(after, row[0], strict=True)])]
    start, size = int(body.get("from", 0)), int(body.get("size", 10))
    scores_shown = any((c == "_score" or (isinstance(c, dict) and "_score" in c)) for c in sort) or \
        body.get("track_scores")
    hits = []
    for keys, doc, score in keyed[start:start + size]:
        hit: dict[str, Any] = {"_index": index.name, "_id": doc.id, "_score": score if scores_shown else None,
                               "_source": _source(doc.source, body.get("_source"))}
        if doc.routing is not None:
            hit["_routing"] = doc.routing
        if "sort" in body:
            hit["sort"] = [shown for _, _, shown in keys]
        if hit["_source"] is None:
            del hit["_source"]
        hits.append(hit)
    answer: dict[str, Any] = {"took": 1, "timed_out": False,
                              "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
                              "hits": {"max_score": max((score for _, _, score in keyed), default=None)
                                       if scores_shown else None, "hits": hits}}
    track = body.get("track_total_hits", DEFAULT_TRACK_TOTAL)
    if track is not False:
        limit = math.inf if track is True else int(track)
        answer["hits"]["total"] = ({"value": len(keyed), "relation": "eq"} if len(keyed) <= limit
                                   else {"value": int(limit), "relation": "gte"})
    if aggregations:
        answer["aggregations"] = aggregations
    return answer


# ---------------------------------------------------------------------------------------------------- server

@dataclass
class RecordedRequest:
    method: str
    path: str
    params: dict[str, str]
    body: Any


@dataclass
class _Failure:
    remaining: int
    status: int


class FakeElasticsearch(ServedFake):
    """In-memory Elasticsearch (see the module docstring). `requests` records every request."""

    thread_name = "fake-elasticsearch"

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host, port)
        self.indices: dict[str, _Index] = {}
        self.requests: list[RecordedRequest] = []
        self.unreachable = False
        self._failures: list[_Failure] = []
        self._lock = threading.RLock()
        self._seq = 0

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        return type("FakeElasticsearchHandler", (_Handler,), {"fake": self})

    def fail_next(self, n: int = 1, status: int = 503) -> None:
        """The next `n` requests answer `status` (an Elasticsearch error body) without doing anything."""
        with self._lock:
            self._failures.append(_Failure(n, status))

    def searches(self) -> list[dict[str, Any]]:
        """The bodies of the _search requests received, oldest first."""
        return [request.body for request in self.requests if request.path.endswith("/_search")]

    # -- dispatch -----------------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, params: dict[str, str], raw: bytes,
               content_type: str) -> tuple[int, Any]:
        with self._lock:
            body = _decode(raw, content_type)
            self.requests.append(RecordedRequest(method, path, params, body))
            for failure in self._failures:
                if failure.remaining > 0:
                    failure.remaining -= 1
                    return failure.status, EsError(failure.status, "unavailable_shards_exception",
                                                   "injected failure").body()
            try:
                return self._route(method, path, params, body)
            except EsError as exc:
                return exc.status, exc.body()
            except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a malformed body, as ES sees it
                return 400, _bad_query(f"malformed request: {exc!r}").body()

    def _route(self, method: str, path: str, params: dict[str, str], body: Any) -> tuple[int, Any]:
        parts = [unquote(part) for part in path.strip("/").split("/") if part]
        if not parts:
            return 200, {"name": "fake", "cluster_name": "fake", "version": {"number": VERSION},
                         "tagline": "You Know, for Search"}
        if parts == ["_bulk"] or (len(parts) == 2 and parts[1] == "_bulk"):
            return self._bulk(body, parts[0] if len(parts) == 2 else None, params)
        names = parts[0].split(",")
        if len(parts) == 1:
            if method == "HEAD":
                return (200 if all(name in self.indices for name in names) else 404), None
            if method == "PUT":
                return self._create(parts[0], body or {})
            if method == "DELETE":
                return self._delete_indices(names, params)
        elif len(parts) == 2 and method in ("GET", "POST"):
            action = parts[1]
            if action == "_search":
                index = self._one(names)
                return 200, search(index, body or {})
            if action == "_count":
                index = self._one(names)
                return 200, {"count": search(index, {"query": (body or {}).get("query", {"match_all": {}}),
                                                     "size": 0, "track_total_hits": True})["hits"]["total"]["value"]}
            if action == "_refresh":
                for name in names:
                    self._index(name).refresh()
                return 200, {"_shards": {"total": 1, "successful": 1, "failed": 0}}
            if action == "_delete_by_query":
                return self._delete_by_query(names, body or {}, params)
        elif len(parts) == 3 and parts[1] == "_doc" and method in ("PUT", "POST", "DELETE"):
            index = self._index(parts[0])
            action = "delete" if method == "DELETE" else "index"
            result = self._write(index, action, {"_id": parts[2], "routing": params.get("routing")}, body)
            if params.get("refresh") in ("true", "wait_for", ""):
                index.refresh()
            return result.pop("status"), result
        raise EsError(405 if len(parts) <= 2 else 400, "illegal_argument_exception",
                      f"the fake has no handler for [{method} {path}]")

    def _index(self, name: str) -> _Index:
        if name not in self.indices:
            raise EsError(404, "index_not_found_exception", f"no such index [{name}]")
        return self.indices[name]

    def _one(self, names: list[str]) -> _Index:
        if len(names) != 1:
            raise EsError(400, "illegal_argument_exception", "the fake searches one index at a time")
        return self._index(names[0])

    def _create(self, name: str, body: dict[str, Any]) -> tuple[int, Any]:
        if name in self.indices:
            raise EsError(400, "resource_already_exists_exception", f"index [{name}] already exists")
        if unknown := set(body) - {"mappings", "settings", "aliases"}:
            raise _bad_query(f"unknown key [{sorted(unknown)[0]}] for create index")
        settings = body.get("settings", {})
        self.indices[name] = _Index(name, body.get("mappings", {}), settings, _analyzers(settings))
        return 200, {"acknowledged": True, "shards_acknowledged": True, "index": name}

    def _delete_indices(self, names: list[str], params: dict[str, str]) -> tuple[int, Any]:
        missing = [name for name in names if name not in self.indices]
        if missing and params.get("ignore_unavailable") != "true":
            raise EsError(404, "index_not_found_exception", f"no such index [{missing[0]}]")
        for name in names:
            self.indices.pop(name, None)
        return 200, {"acknowledged": True}

    def _bulk(self, lines: Any, default_index: str | None, params: dict[str, str]) -> tuple[int, Any]:
        if not isinstance(lines, list):
            raise EsError(400, "illegal_argument_exception", "The bulk request must be terminated by a newline")
        items, errors, touched = [], False, set()
        position = 0
        while position < len(lines):
            action_line = lines[position]
            (action, meta), = action_line.items()
            position += 1
            name = meta.get("_index", default_index)
            if action not in ("index", "create", "delete"):
                raise EsError(400, "illegal_argument_exception", f"the fake's bulk knows index and delete, not {action}")
            source = None
            if action != "delete":
                source = lines[position]
                position += 1
            try:
                index = self._index(name)
                touched.add(name)
                items.append({action: self._write(index, action, meta, source)})
            except EsError as exc:
                errors = True
                items.append({action: {"_index": name, "_id": meta.get("_id"), "status": exc.status,
                                       "error": exc.body()["error"]}})
        if params.get("refresh") in ("true", "wait_for", ""):
            for name in touched:
                self.indices[name].refresh()
        return 200, {"took": 1, "errors": errors, "items": items}

    def _write(self, index: _Index, action: str, meta: dict[str, Any], source: Any) -> dict[str, Any]:
        doc_id, routing = meta.get("_id"), meta.get("routing")
        if action == "delete":
            if index.mappings.get("_routing", {}).get("required") and not routing:
                raise EsError(400, "routing_missing_exception", f"routing is required for [{index.name}]")
            existed = index.latest.pop(doc_id, None)
            return {"_index": index.name, "_id": doc_id, "result": "deleted" if existed else "not_found",
                    "status": 200 if existed else 404}
        if not doc_id:
            raise EsError(400, "action_request_validation_exception", "the fake needs an _id")
        index.check(source, routing)
        existed = doc_id in index.latest
        self._seq += 1
        index.latest[doc_id] = _Doc(doc_id, copy.deepcopy(source), routing, self._seq)
        return {"_index": index.name, "_id": doc_id, "result": "updated" if existed else "created",
                "status": 200 if existed else 201}

    def _delete_by_query(self, names: list[str], body: dict[str, Any], params: dict[str, str]) -> tuple[int, Any]:
        if set(body) - {"query"}:
            raise _bad_query("_delete_by_query takes a query only")
        deleted = 0
        for name in names:
            index = self._index(name)
            ctx = _Context(index)
            doomed = [doc.id for doc in index.visible.values() if evaluate(body["query"], doc, ctx)[0]]
            for doc_id in doomed:
                if index.latest.pop(doc_id, None) is not None:
                    deleted += 1
            if params.get("refresh") in ("true", ""):
                index.refresh()
        return 200, {"took": 1, "timed_out": False, "total": deleted, "deleted": deleted, "failures": []}


def _decode(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    text = raw.decode()
    if "ndjson" in content_type:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise EsError(400, "parse_exception", f"request body is not JSON: {exc}") from exc


class _Handler(BaseHTTPRequestHandler):
    fake: FakeElasticsearch  # set per server by FakeElasticsearch._handler
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms delayed-ACK stall

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._serve()

    def do_POST(self) -> None:  # noqa: N802
        self._serve()

    def do_PUT(self) -> None:  # noqa: N802
        self._serve()

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve()

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve()

    def _serve(self) -> None:
        if self.fake.unreachable:
            self.close_connection = True
            return  # no answer at all: the client sees the connection drop
        url = urlsplit(self.path)
        params = {key: values[-1] for key, values in parse_qs(url.query, keep_blank_values=True).items()}
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            status, body = self.fake.handle(self.command, url.path, params, raw,
                                             self.headers.get("Content-Type", ""))
        except EsError as exc:
            status, body = exc.status, exc.body()
        payload = b"" if body is None else json.dumps(body).encode()
        try:
            self.send_response(status)
            for name, value in PRODUCT_HEADERS.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # `fake.requests` is the log
