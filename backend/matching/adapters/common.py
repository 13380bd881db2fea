"""What the two search adapters share, so that they index the same things and read a query the same way.

- Keywords: a query is split into words (stop words dropped unless nothing else is left); EVERY word must match in
  at least one text field (a pro for "house cleaning" cleans, not just "house ..."), within FUZZY edits of a
  word of the field (0 under 4 letters, 1 from 4, 2 from 8: Elasticsearch's `fuzziness: "AUTO:4,8"`); the last word
  also matches as a prefix (typing "plumb" finds "plumber"). A word's score is its best field's, times that field's
  boost (PRO_TEXT_FIELDS), and the words' scores add up.
- Suggestions: every pro carries "key\\x1fDisplay" entries (SUGGEST_SEPARATOR) for its skills, category names and
  headline words (`suggest_vocabulary`) and its name (`suggest_names`), one entry per word position ("pipe repair"
  and "repair" both lead to "Pipe repair"); the engines count entries whose key starts with the folded last word
  typed (all vocabulary entries, the first NAME_ENTRIES names in key order), and `merge_vocabulary_and_names`
  orders them: what pros do, most pros first, then names.
- A document is stored whole (`pro_source`/`pro_from_source`), so hits are rebuilt without the database.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import fields
from datetime import date, datetime
from typing import Any

from backend.matching.ports import ProDocument, RequestDocument, Sort

# Field -> boost. A name or a skill says more about what a pro does than a word somewhere in the bio.
PRO_TEXT_FIELDS: dict[str, float] = {"name": 3.0, "skills": 2.5, "headline": 2.0, "category_names": 2.0,
                                     "bio": 1.0}
REQUEST_TEXT_FIELDS: dict[str, float] = {"title": 3.0, "category_name": 2.0, "description": 1.0}

# Words that would make every-word matching fail for no reason ("plumber in berlin": the place is a filter).
STOPWORDS = frozenset(
    "a an and are as at be by for from i in into is it me my near of on or our please the to we with you your"
    .split())
MAX_QUERY_WORDS = 8  # a pasted paragraph is not a search; the first words decide
PREFIX_MIN_LETTERS = 3  # the last word matches as a prefix from this length ("pl" would match half the index)
FUZZY_ONE_FROM, FUZZY_TWO_FROM = 4, 8
ES_FUZZINESS = f"AUTO:{FUZZY_ONE_FROM},{FUZZY_TWO_FROM}"

SUGGEST_SEPARATOR = "\x1f"
SUGGEST_MIN_LETTERS = 3  # headline words shorter than this are not worth suggesting

WEEKDAY_CODES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # date.weekday() order

_WORD = re.compile(r"[^\W_]+")


def fold(text: str) -> str:
    """Lower case without accents: what both engines' analyzers make of a word ("Café" -> "cafe")."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def query_words(text: str) -> list[str]:
    """The words a keyword query must match, folded; stop words only when there is nothing else."""
    folded = [fold(word) for word in words(text)]
    meaningful = [word for word in folded if word not in STOPWORDS]
    return (meaningful or folded)[:MAX_QUERY_WORDS]


def fuzzy_edits(word: str) -> int:
    """Typos forgiven in a word: Elasticsearch's AUTO:4,8."""
    if len(word) >= FUZZY_TWO_FROM:
        return 2
    return 1 if len(word) >= FUZZY_ONE_FROM else 0


def prefix_word(words_: list[str]) -> str | None:
    """The last word, when it is long enough to match as a prefix."""
    if words_ and len(words_[-1]) >= PREFIX_MIN_LETTERS:
        return words_[-1]
    return None


# ---------------------------------------------------------------------------------------------------- suggest

def _phrase_entries(phrases: Iterable[str]) -> set[str]:
    entries = set()
    for phrase in phrases:
        display = " ".join(phrase.split())
        parts = [fold(word) for word in words(display)]
        for start in range(len(parts)):
            entries.add(f"{' '.join(parts[start:])}{SUGGEST_SEPARATOR}{display}")
    return entries


def suggest_vocabulary(doc: ProDocument) -> list[str]:
    """A pro's suggestion entries ("key\x1fDisplay") for what they do: skills, category names, headline words.
    Shared by many pros, so few distinct entries: counted in full."""
    entries = _phrase_entries([*doc.skills, *doc.category_names])
    for word in words(doc.headline):
        key = fold(word)
        if len(key) >= SUGGEST_MIN_LETTERS and key not in STOPWORDS and not key.isdigit():
            entries.add(f"{key}{SUGGEST_SEPARATOR}{word.lower()}")
    return sorted(entries)


def suggest_names(doc: ProDocument) -> list[str]:
    """A pro's name as suggestion entries (one per word: "schm" finds "Anna Schmidt"). Nearly one distinct entry per
    pro, so the engines read only the first NAME_ENTRIES (in key order) that match."""
    return sorted(_phrase_entries([doc.name]))


NAME_ENTRIES = 20


def merge_vocabulary_and_names(vocabulary: Iterable[tuple[str, int]], names: Iterable[tuple[str, int]],
                               limit: int) -> list[str]:
    """What the pros do first (most pros first), then names, one per display case-insensitively."""
    first = merge_suggestions(vocabulary, limit)
    seen = {display.casefold() for display in first}
    rest = [display for display in merge_suggestions(names, limit) if display.casefold() not in seen]
    return (first + rest)[:limit]


def suggest_prefix(text: str) -> str:
    """What suggestions must start with: the folded last word typed ("" when there is none)."""
    typed = words(text)
    return fold(typed[-1]) if typed else ""


def merge_suggestions(counted: Iterable[tuple[str, int]], limit: int) -> list[str]:
    """(entry, number of pros) -> displays, most pros first, one per display case-insensitively.

    Two keys of one display in one pro ("pipe pipes") count that pro once (max); the same display written
    differently by different pros ("Plumbing", "plumbing") adds up, shown as most pros write it."""
    per_display: dict[str, int] = {}
    for entry, count in counted:
        display = entry.partition(SUGGEST_SEPARATOR)[2]
        per_display[display] = max(per_display.get(display, 0), count)
    grouped: dict[str, list[tuple[int, str]]] = {}
    for display, count in per_display.items():
        grouped.setdefault(display.casefold(), []).append((count, display))
    ranked = []
    for key, variants in grouped.items():
        variants.sort(key=lambda variant: (-variant[0], variant[1]))
        ranked.append((-sum(count for count, _ in variants), key, variants[0][1]))
    ranked.sort()
    return [display for _, _, display in ranked[:limit]]


def lucene_prefix_regex(prefix: str) -> str:
    """A Lucene regular expression matching strings that start with `prefix` literally (terms `include`)."""
    return "".join(f"\\{ch}" if ch in '.?+*|{}[]()"\\#@&<>~' else ch for ch in prefix) + ".*"


# ---------------------------------------------------------------------------------------------------- documents

_PRO_FIELD_NAMES = tuple(f.name for f in fields(ProDocument))
_REQUEST_FIELD_NAMES = tuple(f.name for f in fields(RequestDocument))
_PRO_FIELDS = set(_PRO_FIELD_NAMES)
_REQUEST_FIELDS = set(_REQUEST_FIELD_NAMES)


def pro_source(doc: ProDocument) -> dict[str, Any]:
    """The document as JSON-ready data (dates as ISO text)."""
    return _jsonable(doc, _PRO_FIELD_NAMES)


def pro_from_source(source: dict[str, Any]) -> ProDocument:
    values = {key: value for key, value in source.items() if key in _PRO_FIELDS}
    values["last_active"] = datetime.fromisoformat(values["last_active"])
    return ProDocument(**values)


def request_source(doc: RequestDocument) -> dict[str, Any]:
    return _jsonable(doc, _REQUEST_FIELD_NAMES)


def request_from_source(source: dict[str, Any]) -> RequestDocument:
    values = {key: value for key, value in source.items() if key in _REQUEST_FIELDS}
    for key in ("created_at", "expires_at"):
        values[key] = datetime.fromisoformat(values[key])
    if values.get("preferred_start"):
        values["preferred_start"] = date.fromisoformat(values["preferred_start"])
    return RequestDocument(**values)


def _jsonable(doc: ProDocument | RequestDocument, names: tuple[str, ...]) -> dict[str, Any]:
    # Not dataclasses.asdict: it deep-copies every value, the slowest part of indexing 100,000 pros.
    values = {}
    for name in names:
        value = getattr(doc, name)
        values[name] = value.isoformat() if isinstance(value, date | datetime) else value
    return values


def located(doc: ProDocument | RequestDocument) -> tuple[float, float] | None:
    if doc.latitude is None or doc.longitude is None:
        return None
    return (doc.latitude, doc.longitude)


def effective_sort(sort: Sort, origin: tuple[float, float] | None) -> Sort:
    """Nearest first needs a place: without one it is best match (ports.Sort)."""
    return Sort.BEST if sort is Sort.DISTANCE and origin is None else sort
