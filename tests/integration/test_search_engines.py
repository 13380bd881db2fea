"""One behaviour suite for every SearchEngine adapter: the embedded tantivy index for real, Elasticsearch through
the local fake server (tests/fakes/elastic_server.py, spoken to by the real `elasticsearch` client), and a real
Elasticsearch when ELASTICSEARCH_URL is set (skipped otherwise, saying so).

What every adapter must do alike: keywords with typos and field boosts, every filter, exact place filtering, facets
that ignore the category filter, every sort, stable paging, suggestions, fingerprints, tenant isolation, and best
match in the order ranking.py states (a fixture where each signal decides one pair).
"""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest
from elasticsearch import BadRequestError, Elasticsearch

from backend.geo import bounding_box, distance_km
from backend.matching import ranking
from backend.matching.adapters import tantivy_engine
from backend.matching.adapters.elastic import ElasticEngine
from backend.matching.adapters.tantivy_engine import TantivyEngine
from backend.matching.ports import (
    Kind,
    ProDocument,
    ProQuery,
    RequestDocument,
    RequestQuery,
    SearchEngine,
    SearchUnavailable,
    Sort,
    fingerprinted,
)
from tests.fakes.elastic_server import FakeElasticsearch

LIVE_URL = os.environ.get("ELASTICSEARCH_URL", "")
NOW = datetime(2026, 3, 2, 12, 0, 0)  # a Monday
BERLIN = (52.5200, 13.4050)
EARTH_KM = 6371.0
T1, T2 = 1, 2


def north(origin: tuple[float, float], km: float) -> tuple[float, float]:
    """The point `km` due north of `origin` (exact on backend.geo's sphere)."""
    return (origin[0] + math.degrees(km / EARTH_KM), origin[1])


def east(origin: tuple[float, float], km: float) -> tuple[float, float]:
    """A point `km` from `origin` along its parallel's great circle start (east), found by bisection."""
    low, high = 0.0, 10.0
    for _ in range(60):
        middle = (low + high) / 2
        if distance_km(origin, (origin[0], origin[1] + middle)) < km:
            low = middle
        else:
            high = middle
    return (origin[0], origin[1] + low)


def pro(pro_id: int, tenant_id: int = T1, *, at: tuple[float, float] | None = BERLIN, **fields) -> ProDocument:
    values = dict(
        tenant_id=tenant_id, pro_id=pro_id, name=f"Pro {pro_id}", headline="Handyman for small jobs",
        bio="I fix things around the house.", skills=["Repairs"], category_ids=[1], category_names=["Handyman"],
        city="Berlin, Germany", latitude=at[0] if at else None, longitude=at[1] if at else None, radius_km=50,
        hourly_rate_minor=4000, currency="EUR", verified=False, avatar_url="", rating_average=0.0,
        rating_count=0, rating_score=3.5, completed_jobs=0, response_rate=None, median_quote_minutes=None,
        available_days=["mon", "tue", "wed", "thu", "fri"], blocked_dates=[], last_active=NOW - timedelta(days=1))
    values.update(fields)
    return fingerprinted(ProDocument(**values))


def request_doc(request_id: int, tenant_id: int = T1, *, at: tuple[float, float] | None = BERLIN,
                **fields) -> RequestDocument:
    values = dict(
        tenant_id=tenant_id, request_id=request_id, client_id=900 + request_id, title=f"Request {request_id}",
        description="Need help at home", category_id=1, category_name="Handyman", city="Berlin, Germany",
        latitude=at[0] if at else None, longitude=at[1] if at else None, budget_min_minor=5000,
        budget_max_minor=10000, currency="EUR", preferred_start=None, created_at=NOW - timedelta(hours=request_id),
        expires_at=NOW + timedelta(days=30))
    values.update(fields)
    return fingerprinted(RequestDocument(**values))


def q(**fields) -> ProQuery:
    return ProQuery(now=NOW, **fields)


def ids(results) -> list[int]:
    return [hit.doc.pro_id for hit in results.hits]


# ---------------------------------------------------------------------------------------------------- engines

@pytest.fixture(params=[
    "tantivy",
    "elastic-fake",
    pytest.param("elastic-live", marks=pytest.mark.skipif(
        not LIVE_URL, reason="ELASTICSEARCH_URL is not set: no Elasticsearch server to test against "
                             "(the same suite ran against the fake server)")),
])
def engine(request, tmp_path) -> Iterator[SearchEngine]:
    if request.param == "tantivy":
        built: SearchEngine = TantivyEngine(tmp_path / "search")
        yield built
        built.close()
    elif request.param == "elastic-fake":
        with FakeElasticsearch() as fake:
            built = ElasticEngine(fake.url)
            yield built
            built.close()
    else:
        prefix = f"test-{uuid.uuid4().hex[:10]}"
        built = ElasticEngine(LIVE_URL, index_prefix=prefix)
        yield built
        built.drop_indices()
        built.close()


# ---------------------------------------------------------------------------------------------------- writes

def test_upsert_replaces_and_delete_removes(engine):
    engine.upsert_pros([pro(1), pro(2)])
    assert engine.search_pros(T1, q()).total == 2

    engine.upsert_pros([pro(1, headline="Roofer"), pro(1, headline="Tiler and plasterer")])  # the last one wins
    results = engine.search_pros(T1, q(text="plasterer"))
    assert ids(results) == [1] and results.total == 1
    assert engine.search_pros(T1, q()).total == 2  # replaced, not added

    engine.delete_pros(T1, [1, 99])  # an unknown id is no error
    assert ids(engine.search_pros(T1, q())) == [2]
    engine.delete_pros(T1, [])
    assert engine.search_pros(T1, q()).total == 1


def test_a_hit_carries_the_whole_document(engine):
    doc = pro(7, skills=["Pipe repair", "Boilers"], category_ids=[1, 3], category_names=["Handyman", "Plumbing"],
              response_rate=0.75, median_quote_minutes=95, blocked_dates=["2026-03-04"], verified=True,
              rating_average=4.5, rating_count=12, rating_score=4.1, completed_jobs=9)
    engine.upsert_pros([doc])
    [hit] = engine.search_pros(T1, q(text="boilers")).hits
    assert hit.doc == doc and hit.distance_km is None


# ---------------------------------------------------------------------------------------------------- keywords

def test_keywords_forgive_typos_and_match_prefixes(engine):
    engine.upsert_pros([
        pro(1, headline="Emergency plumber", skills=["Pipe repair"], category_names=["Plumbing"]),
        pro(2, headline="Licensed electrician", skills=["Wiring"], category_names=["Electrical"], category_ids=[2]),
        pro(3, headline="Garden design", skills=["Hedges"], category_names=["Gardening"], category_ids=[3, 1]),
    ])
    assert ids(engine.search_pros(T1, q(text="plumbr"))) == [1]  # one edit from 4 letters
    assert ids(engine.search_pros(T1, q(text="elektrican"))) == [2]  # two edits from 8 letters
    assert ids(engine.search_pros(T1, q(text="plumb"))) == [1]  # the last word is a prefix
    assert ids(engine.search_pros(T1, q(text="Émergency"))) == [1]  # accents folded
    assert ids(engine.search_pros(T1, q(text="a plumber in the city"))) == []  # "city" matches nobody
    assert ids(engine.search_pros(T1, q(text="plumber for pipe"))) == [1]  # stop words do not have to match
    assert ids(engine.search_pros(T1, q(text="gar"))) == [3]
    assert engine.search_pros(T1, q(text="xylophone")).total == 0
    # The category counts count the same matches (typos and prefixes included), whatever the category filter.
    typo = engine.search_pros(T1, q(text="elektrican", category_id=1))
    assert typo.total == 0 and typo.category_counts == {2: 1}
    assert engine.search_pros(T1, q(text="gar", category_id=3)).category_counts == {1: 1, 3: 1}


def test_every_word_must_match_somewhere(engine):
    engine.upsert_pros([
        pro(1, headline="House cleaning", skills=["Windows"]),
        pro(2, headline="House painting", skills=["Walls"]),
    ])
    assert ids(engine.search_pros(T1, q(text="house cleaning"))) == [1]
    assert ids(engine.search_pros(T1, q(text="cleaning windows"))) == [1]  # words in different fields
    assert sorted(ids(engine.search_pros(T1, q(text="house")))) == [1, 2]


def test_field_boosts_rank_a_name_or_skill_above_the_bio(engine):
    same = dict(headline="Home services", bio="Friendly and tidy.", skills=["Repairs"])
    engine.upsert_pros([
        pro(1, **{**same, "bio": "Friendly and tidy. I also lay mosaic floors."}),
        pro(2, **{**same, "skills": ["Repairs", "Mosaic"]}),
        pro(3, **{**same, "name": "Mosaic Masters"}),
    ])
    assert ids(engine.search_pros(T1, q(text="mosaic"))) == [3, 2, 1]


# ---------------------------------------------------------------------------------------------------- filters

def test_category_filter_and_facets_that_ignore_it(engine):
    engine.upsert_pros([
        pro(1, category_ids=[1]), pro(2, category_ids=[1, 2]), pro(3, category_ids=[2]),
        pro(4, category_ids=[3], verified=True), pro(5, category_ids=[1], verified=True),
    ])
    results = engine.search_pros(T1, q(category_id=1))
    assert sorted(ids(results)) == [1, 2, 5] and results.total == 3
    assert results.category_counts == {1: 3, 2: 2, 3: 1}  # other categories still show what they would give
    verified = engine.search_pros(T1, q(category_id=2, verified_only=True))
    assert verified.total == 0 and verified.category_counts == {1: 1, 3: 1}  # other filters do apply


def test_category_counts_follow_every_write(engine):
    # The embedded engine keeps a tenant's unfiltered counts for one version of its index: a write is a new one.
    engine.upsert_pros([pro(1, category_ids=[1]), pro(2, category_ids=[2]), pro(3, T2, category_ids=[1])])
    assert engine.search_pros(T1, q()).category_counts == {1: 1, 2: 1}
    engine.upsert_pros([pro(4, category_ids=[2, 3])])
    assert engine.search_pros(T1, q(category_id=3)).category_counts == {1: 1, 2: 2, 3: 1}
    engine.delete_pros(T1, [1])
    assert engine.search_pros(T1, q()).category_counts == {2: 2, 3: 1}
    assert engine.search_pros(T2, q()).category_counts == {1: 1}


def test_facets_in_a_place_count_every_category(engine):
    many = list(range(1, 14))  # more categories than the embedded engine packs per pro: counted another way
    engine.upsert_pros([
        pro(1, category_ids=[4, 2, 2_000_000, 9, 5]), pro(2, category_ids=[2]), pro(3, category_ids=[2],
                                                                                  at=north(BERLIN, 40)),
    ])
    assert engine.search_pros(T1, q(origin=BERLIN, radius_km=10)).category_counts == {
        2: 2, 4: 1, 5: 1, 9: 1, 2_000_000: 1}
    engine.upsert_pros([pro(4, category_ids=many), pro(5, category_ids=[3_000_000, 2])])
    counts = engine.search_pros(T1, q(origin=BERLIN, radius_km=10, category_id=2)).category_counts
    assert counts == {**{i: 1 for i in many}, 2: 4, 4: 2, 5: 2, 9: 2, 2_000_000: 1, 3_000_000: 1}


def test_tantivy_counts_a_big_box_by_an_aggregation(tmp_path, monkeypatch):
    # A box of PLACE_FETCH pros or more is counted by an aggregation, less the pros in its corners (outside the
    # circle): the same totals, category counts and pages as counting the pros one by one.
    engine = TantivyEngine(tmp_path / "search")
    min_lat, max_lat, min_lon, max_lon = bounding_box(*BERLIN, 10)
    corner = (BERLIN[0] + (max_lat - BERLIN[0]) * 0.9, BERLIN[1] + (max_lon - BERLIN[1]) * 0.9)
    engine.upsert_pros([
        pro(1, category_ids=[4, 2, 2_000_000, 9, 5]), pro(2, category_ids=[2], at=north(BERLIN, 3)),
        pro(3, category_ids=[2], at=corner), pro(4, category_ids=list(range(1, 14)), at=corner),
        pro(5, category_ids=[3_000_000, 2], at=east(BERLIN, 5), hourly_rate_minor=1000),
        pro(6, category_ids=[3_000_000], at=corner),
    ])
    queries = [q(origin=BERLIN, radius_km=10), q(origin=BERLIN, radius_km=10, category_id=2),
               q(origin=BERLIN, radius_km=10, category_id=3_000_000, sort=Sort.DISTANCE),
               q(origin=BERLIN, radius_km=10, sort=Sort.PRICE_LOW), q(origin=BERLIN, radius_km=10, category_id=7)]
    one_by_one = [engine.search_pros(T1, query) for query in queries]
    assert one_by_one[0].category_counts == {2: 3, 4: 1, 5: 1, 9: 1, 2_000_000: 1, 3_000_000: 1}
    assert [results.total for results in one_by_one] == [3, 3, 1, 3, 0]
    assert ids(one_by_one[2]) == [5] and ids(one_by_one[3])[0] == 5
    monkeypatch.setattr(tantivy_engine, "PLACE_FETCH", 1)
    assert [engine.search_pros(T1, query) for query in queries] == one_by_one


@pytest.mark.parametrize("text", ["care", "after care", "carer", "hand strip", "cart", "plumbr", "xylophone care"])
def test_tantivy_listed_keywords_score_exactly_as_its_automata(tmp_path, text):
    # With the words index, a word's fuzzy and prefix clauses become the terms they match, in one flat
    # disjunction per word (_Index._listed_clauses); without it, automata. Same pros, same scores, in every case
    # of the bonus: the word itself, a word both near and a prefix, one only near ("card"), one only a prefix
    # ("careful"), and both of those in one field without the word (pro 5).
    engine = TantivyEngine(tmp_path / "search")
    engine.upsert_pros([
        pro(1, headline="Home care", bio="After school care and careful driving"),
        pro(2, headline="Carer", skills=["Card games"], bio="Hand stripping of terriers"),
        pro(3, name="Cart Ridley", headline="Cargo bikes", bio="care care care"),
        pro(4, headline="Plumber", skills=["Careers advice"], bio="after hours"),
        pro(5, headline="Magician", skills=["Card tricks", "Careful packing"], bio="Handy strip lights"),
    ])
    index, searcher = engine._pros, engine._pros.searcher()
    vocabulary = tantivy_engine._Vocabulary(engine._words, engine._vocabulary)

    def scores(query) -> dict[int, float]:
        hits = searcher.search(index.scoped(T1, (tantivy_engine.Occur.Must, query)), limit=10).hits
        pro_ids = searcher.fast_field_values("pro_id", [address for _, address in hits])
        return dict(zip(pro_ids, (score for score, _ in hits), strict=True))

    listed = scores(index.text_query(tantivy_engine.PRO_TEXT_FIELDS, text, vocabulary))
    automata = scores(index.text_query(tantivy_engine.PRO_TEXT_FIELDS, text))
    assert listed.keys() == automata.keys()
    assert all(listed[pro_id] == pytest.approx(automata[pro_id], rel=1e-6) for pro_id in automata)
    words = searcher.search(index.scoped(T1, (tantivy_engine.Occur.Must, index.matches_query(text, vocabulary))),
                            limit=10, count=True)
    assert words.count == len(automata)
    if text == "care":  # the fixture reaches the case of a near word and a prefix word without the word itself
        assert automata[5] == pytest.approx(2 * 2.5)  # "card" (+1) and "careful" (+1) in skills (boost 2.5)


def destination(origin: tuple[float, float], km: float, bearing: float) -> tuple[float, float]:
    """The point `km` from `origin` along `bearing` (degrees) on backend.geo's sphere, longitude in [-180, 180)."""
    lat1, lon1, angle, theta = math.radians(origin[0]), math.radians(origin[1]), km / EARTH_KM, math.radians(bearing)
    lat2 = math.asin(math.sin(lat1) * math.cos(angle) + math.cos(lat1) * math.sin(angle) * math.cos(theta))
    lon2 = lon1 + math.atan2(math.sin(theta) * math.sin(angle) * math.cos(lat1),
                             math.cos(angle) - math.sin(lat1) * math.sin(lat2))
    return (math.degrees(lat2), (math.degrees(lon2) + 540) % 360 - 180)


@pytest.mark.parametrize("origin,km", [((0, 179.9), 50), ((65, -179.5), 250), ((89.9, 45), 50), ((-89.5, 0), 100),
                                       (BERLIN, 10), (BERLIN, 400), ((-33.9, 151.2), 3)])
def test_tantivy_places_across_the_antimeridian_near_the_poles_and_at_every_scale(tmp_path, monkeypatch, origin, km):
    # The embedded engine narrows a place to the grid cells around it (or its box near a pole): whatever the
    # cells, exactly the pros within the radius, as backend.geo measures it.
    engine = TantivyEngine(tmp_path / "search")
    points = [destination(origin, km * share, bearing) for share in (0.2, 0.9, 0.99, 1.01, 1.3)
              for bearing in range(0, 360, 30)]
    engine.upsert_pros([pro(i, at=point) for i, point in enumerate(points, start=1)])
    expected = sorted(i for i, point in enumerate(points, start=1) if distance_km(origin, point) <= km)
    assert len(expected) == 36
    for sort in (Sort.BEST, Sort.DISTANCE):
        results = engine.search_pros(T1, q(origin=origin, radius_km=km, sort=sort, limit=100))
        assert results.total == 36 and sorted(ids(results)) == expected
    monkeypatch.setattr(tantivy_engine, "PLACE_FETCH", 1)  # counted by aggregations, in and around the circle
    results = engine.search_pros(T1, q(origin=origin, radius_km=km, category_id=1, limit=100))
    assert results.total == 36 and sorted(ids(results)) == expected and results.category_counts == {1: 36}


def test_tantivy_grid_cells_hold_the_circle_and_the_inner_ones_are_inside_it():
    rng = random.Random(7)
    for _ in range(300):
        origin = (rng.uniform(-80, 80), rng.uniform(-179, 179))
        km = rng.choice([0.5, 3, 10, 25, 60, 100, 300, 800])
        cells = tantivy_engine._circle_cells(*origin, km)
        if cells is None:  # near a pole or across the antimeridian: the box
            continue
        meeting, inside = set(cells[0]), set(cells[1])
        level = next(iter(meeting)) >> 48
        min_lat, max_lat, min_lon, max_lon = bounding_box(*origin, km)
        for _ in range(200):
            point = (rng.uniform(min_lat, max_lat), rng.uniform(min_lon, max_lon))
            if rng.random() < 0.3:  # on the circle itself
                point = destination(origin, km * rng.choice([0.999999, 1.0, 1.000001]), rng.uniform(0, 360))
            cell = tantivy_engine._cells(*point)[level]
            if distance_km(origin, point) <= km:
                assert cell in meeting
            if cell in inside:
                assert distance_km(origin, point) <= km


def test_place_and_radius_are_exact(engine):
    min_lat, max_lat, min_lon, max_lon = bounding_box(*BERLIN, 10)
    corner = (BERLIN[0] + (max_lat - BERLIN[0]) * 0.9, BERLIN[1] + (max_lon - BERLIN[1]) * 0.9)
    assert distance_km(BERLIN, corner) > 10  # inside the box, outside the circle
    engine.upsert_pros([
        pro(1, at=north(BERLIN, 4)), pro(2, at=east(BERLIN, 9.5)), pro(3, at=north(BERLIN, 10.5)),
        pro(4, at=corner), pro(5, at=None), pro(6, at=north(BERLIN, 300)),
    ])
    results = engine.search_pros(T1, q(origin=BERLIN, radius_km=10, sort=Sort.DISTANCE))
    assert ids(results) == [1, 2] and results.total == 2
    assert [round(hit.distance_km, 2) for hit in results.hits] == [4.0, 9.5]
    assert results.category_counts == {1: 2}
    wide = engine.search_pros(T1, q(origin=BERLIN, radius_km=500, sort=Sort.DISTANCE))
    assert ids(wide) == [1, 2, 3, 4, 6]  # a pro without a location never matches a place
    assert engine.search_pros(T1, q()).total == 6  # without a place, everyone


def test_serves_origin_needs_the_pros_own_radius_to_reach_the_place(engine):
    engine.upsert_pros([
        pro(1, at=north(BERLIN, 20), radius_km=25), pro(2, at=north(BERLIN, 20), radius_km=10),
        pro(3, at=north(BERLIN, 5), radius_km=4), pro(4, at=north(BERLIN, 60), radius_km=100),
    ])
    within = engine.search_pros(T1, q(origin=BERLIN, radius_km=500, serves_origin=True, sort=Sort.DISTANCE))
    assert ids(within) == [1, 4] and within.total == 2
    assert engine.search_pros(T1, q(origin=BERLIN, radius_km=30, serves_origin=True)).total == 1
    assert engine.search_pros(T1, q(origin=BERLIN, radius_km=500)).total == 4


def test_price_rating_and_verified_filters(engine):
    engine.upsert_pros([
        pro(1, hourly_rate_minor=2500), pro(2, hourly_rate_minor=4000, rating_average=4.6, rating_count=10),
        pro(3, hourly_rate_minor=6000, rating_average=3.9, rating_count=3, verified=True),
        pro(4, hourly_rate_minor=9000, verified=True),
    ])
    assert sorted(ids(engine.search_pros(T1, q(price_min_minor=4000, price_max_minor=6000)))) == [2, 3]
    assert sorted(ids(engine.search_pros(T1, q(price_max_minor=3000)))) == [1]
    assert sorted(ids(engine.search_pros(T1, q(price_min_minor=8000)))) == [4]
    assert sorted(ids(engine.search_pros(T1, q(min_rating=3.9)))) == [2, 3]  # unrated pros are left out
    assert sorted(ids(engine.search_pros(T1, q(min_rating=4.5)))) == [2]
    assert sorted(ids(engine.search_pros(T1, q(verified_only=True)))) == [3, 4]


def test_available_on_a_date(engine):
    engine.upsert_pros([
        pro(1, available_days=["mon", "wed"]), pro(2, available_days=["sat", "sun"]),
        pro(3, available_days=["wed"], blocked_dates=["2026-03-04"]), pro(4, available_days=[]),
    ])
    wednesday, saturday = date(2026, 3, 4), date(2026, 3, 7)
    assert sorted(ids(engine.search_pros(T1, q(available_on=wednesday)))) == [1]
    assert sorted(ids(engine.search_pros(T1, q(available_on=wednesday + timedelta(days=7))))) == [1, 3]
    assert sorted(ids(engine.search_pros(T1, q(available_on=saturday)))) == [2]


def test_exclude_ids(engine):
    engine.upsert_pros([pro(1), pro(2), pro(3)])
    results = engine.search_pros(T1, q(exclude_ids=(1, 3)))
    assert ids(results) == [2] and results.total == 1


# ---------------------------------------------------------------------------------------------------- sorts, paging

@pytest.fixture
def varied(engine) -> list[ProDocument]:
    docs = [pro(i, at=north(BERLIN, (i * 7) % 23 + 0.5), hourly_rate_minor=2000 + (i * 1300) % 5000,
                rating_average=round(3 + (i % 5) * 0.4, 1), rating_count=i % 4,
                rating_score=3.5 + ((i * 3) % 7) / 10 if i % 4 else 3.5,
                verified=i % 3 == 0, response_rate=None if i % 5 == 0 else (i % 10) / 10,
                last_active=NOW - timedelta(days=(i * 11) % 90))
            for i in range(1, 31)]
    engine.upsert_pros(docs)
    return docs


def test_every_sort(engine, varied):
    by_id = {doc.pro_id: doc for doc in varied}
    nearest = engine.search_pros(T1, q(origin=BERLIN, radius_km=50, sort=Sort.DISTANCE, limit=30))
    distances = [hit.distance_km for hit in nearest.hits]
    assert distances == sorted(distances) and nearest.total == 30
    assert [hit.score for hit in nearest.hits] == distances

    rating = engine.search_pros(T1, q(sort=Sort.RATING, limit=30))
    assert ids(rating) == sorted(by_id, key=lambda i: (-by_id[i].rating_score, -by_id[i].rating_count, i))

    cheap = engine.search_pros(T1, q(sort=Sort.PRICE_LOW, limit=30))
    assert ids(cheap) == sorted(by_id, key=lambda i: (by_id[i].hourly_rate_minor, i))
    dear = engine.search_pros(T1, q(sort=Sort.PRICE_HIGH, limit=30))
    assert ids(dear) == sorted(by_id, key=lambda i: (-by_id[i].hourly_rate_minor, i))

    best = engine.search_pros(T1, q(sort=Sort.BEST, limit=30))
    expected = sorted(by_id, key=lambda i: (-ranking.best_match_score(1.0, by_id[i], None, NOW), i))
    assert ids(best) == expected
    assert ids(engine.search_pros(T1, q(sort=Sort.DISTANCE, limit=30))) == expected  # no place: best match


@pytest.mark.parametrize("sort", list(Sort))
def test_paging_is_stable(engine, varied, sort):
    everything = engine.search_pros(T1, q(origin=BERLIN, radius_km=50, sort=sort, limit=30))
    pages = [engine.search_pros(T1, q(origin=BERLIN, radius_km=50, sort=sort, offset=offset, limit=7))
             for offset in range(0, 42, 7)]
    assert {page.total for page in pages} == {30}
    assert [i for page in pages for i in ids(page)] == ids(everything)
    assert pages[-1].hits == []  # past the end


def test_sorted_pages_without_a_place_take_ties_in_pro_id_order(engine):
    # Written in reverse: an engine's own order of equal values (tantivy: the document's place) is not the id.
    engine.upsert_pros([pro(i, hourly_rate_minor=5000 if i % 2 else 3000) for i in reversed(range(1, 12))])
    pages = [ids(engine.search_pros(T1, q(sort=Sort.PRICE_LOW, offset=offset, limit=4))) for offset in (0, 4, 8)]
    assert pages == [[2, 4, 6, 8], [10, 1, 3, 5], [7, 9, 11]]


def test_best_match_without_a_place_is_exact_beyond_the_first_candidates(engine):
    # 210 well-rated pros who have not been active for months, then 50 rated a little lower but active today:
    # recency lifts the latter above the former, although the static quality puts them last. The first round of
    # candidates (tantivy: FIRST_ROUND, by quality or by text relevance) holds none of them; the page must still be
    # the exact top by ranking.py.
    away, today = NOW - timedelta(days=200), NOW - timedelta(hours=3)
    docs = [pro(i, rating_score=4.0 + (i % 10) / 100, response_rate=0.5, last_active=away) for i in range(1, 211)]
    docs += [pro(i, rating_score=3.2 + (i % 10) / 100, response_rate=0.5, last_active=today, verified=i % 7 == 0)
             for i in range(211, 261)]
    engine.upsert_pros(docs)
    expected = sorted(docs, key=lambda d: (-ranking.best_match_score(1.0, d, None, NOW), d.pro_id))
    assert expected[0].pro_id > 210 and expected[49].pro_id > 210
    browse = engine.search_pros(T1, q(limit=25))
    assert browse.total == 260
    assert ids(browse) == [d.pro_id for d in expected[:25]]
    assert ids(engine.search_pros(T1, q(offset=230, limit=30))) == [d.pro_id for d in expected[230:]]
    for hit in browse.hits:  # the score is ranking.py's, to float precision
        assert hit.score == pytest.approx(ranking.best_match_score(1.0, hit.doc, None, NOW), abs=1e-4)
    # Keywords every pro matches alike ("handyman" is in every headline): the signals decide, exactly.
    assert ids(engine.search_pros(T1, q(text="handyman", limit=25))) == [d.pro_id for d in expected[:25]]


def test_tantivy_rescores_keywords_within_its_window(tmp_path, monkeypatch):
    # Keywords' best match re-ranks the RESCORE_WINDOW best text matches (the adapter's docstring, as
    # Elasticsearch's rescore window): when the bound cannot prove the page within them, the page is the exact best
    # match among them. Here the 5 pros with the best signals have the longest bios (the lowest text relevance).
    monkeypatch.setattr(tantivy_engine, "RESCORE_WINDOW", 20)
    engine = TantivyEngine(tmp_path / "search")
    filler = " ".join(f"word{i}" for i in range(60))
    top = dict(verified=True, response_rate=1.0, rating_average=5.0, rating_count=50, rating_score=4.9)
    low = dict(response_rate=0.0)
    engine.upsert_pros([pro(i, headline="Garden care", bio=f"Garden work. {filler[:i * 7]}", **(top if i > 55 else low))
                        for i in range(1, 61)])
    assert ids(engine.search_pros(T1, q(text="garden", limit=5))) == [1, 2, 3, 4, 5]
    monkeypatch.setattr(tantivy_engine, "RESCORE_WINDOW", 60)
    assert ids(engine.search_pros(T1, q(text="garden", limit=5))) == [56, 57, 58, 59, 60]


def test_best_match_with_a_place_is_exact_beyond_the_first_candidates(engine):
    # As above, in a place: the pros scored first (the highest possible scores: full recency assumed) are the
    # inactive ones; the page must still be the exact top.
    away, today = NOW - timedelta(days=200), NOW - timedelta(hours=3)
    docs = [pro(i, at=north(BERLIN, i % 17 * 0.01), rating_score=4.0 + (i % 10) / 100, last_active=away)
            for i in range(1, 211)]
    docs += [pro(i, at=north(BERLIN, i % 13 * 0.01), rating_score=3.2 + (i % 10) / 100, last_active=today)
             for i in range(211, 261)]
    engine.upsert_pros(docs)

    def score(doc: ProDocument) -> float:
        return ranking.best_match_score(1.0, doc, distance_km(BERLIN, (doc.latitude, doc.longitude)), NOW)

    expected = [d.pro_id for d in sorted(docs, key=lambda d: (-score(d), d.pro_id))]
    assert all(i > 210 for i in expected[:50])
    results = engine.search_pros(T1, q(origin=BERLIN, radius_km=5, limit=25))
    assert results.total == 260 and ids(results) == expected[:25]
    assert ids(engine.search_pros(T1, q(origin=BERLIN, radius_km=5, offset=240, limit=25))) == expected[240:]


def test_browse_with_a_place_scores_like_ranking(engine, varied):
    results = engine.search_pros(T1, q(origin=BERLIN, radius_km=50, limit=30))
    for hit in results.hits:
        assert hit.distance_km == pytest.approx(distance_km(BERLIN, (hit.doc.latitude, hit.doc.longitude)))
        # Elasticsearch measures the distance on its own sphere: a few metres of difference at most.
        assert hit.score == pytest.approx(ranking.best_match_score(1.0, hit.doc, hit.distance_km, NOW), abs=2e-3)


# ---------------------------------------------------------------------------------------------------- ranking

def test_best_match_order_where_each_signal_decides_one_pair(engine):
    """Six pairs, each pair alike but for one signal (text, distance, rating, response, verified, recency); the
    pairs differ from each other by distance so that they interleave in a known order."""
    common = dict(headline="Garden care", skills=["Lawns"], bio="Lawns and hedges.", category_names=["Gardening"])
    recent, stale = NOW - timedelta(days=2), NOW - timedelta(days=120)
    fixture = [
        # distance decides: 0.5 km vs 12 km
        pro(11, name="Near", at=north(BERLIN, 0.5), **common), pro(12, name="Far", at=north(BERLIN, 12), **common),
        # the shrunk rating decides: 4.7 from 40 reviews vs unrated (3.5)
        pro(21, name="Loved", at=north(BERLIN, 9), rating_average=4.8, rating_count=40, rating_score=4.7,
            **common),
        pro(22, name="Unrated", at=north(BERLIN, 9), **common),
        # the response rate decides: 1.0 vs 0.1
        pro(31, name="Quick", at=north(BERLIN, 1), response_rate=1.0, **common),
        pro(32, name="Slow", at=north(BERLIN, 1), response_rate=0.1, **common),
        # verification decides
        pro(41, name="Checked", at=north(BERLIN, 7), verified=True, **common),
        pro(42, name="Unchecked", at=north(BERLIN, 7), **common),
        # recency decides: active 2 days ago vs 120 days ago
        pro(51, name="Active", at=north(BERLIN, 10), last_active=recent, **common),
        pro(52, name="Away", at=north(BERLIN, 10), last_active=stale, **common),
    ]
    text_pair = [  # the text decides: "garden" in the name as well as the headline
        pro(61, name="Garden Guild", at=north(BERLIN, 2), **common),
        pro(62, name="Green Guild", at=north(BERLIN, 2), **common),
    ]
    engine.upsert_pros(fixture + text_pair)

    results = engine.search_pros(T1, q(text="garden", origin=BERLIN, radius_km=25, limit=20))
    order = [i for i in ids(results) if i < 60]
    assert order == [31, 41, 11, 21, 32, 42, 22, 51, 12, 52]
    # The literal above is what ranking.py computes for these documents (equal text relevance):
    by_id = {doc.pro_id: doc for doc in fixture}
    computed = sorted(by_id, key=lambda i: -ranking.best_match_score(
        0.0, by_id[i], distance_km(BERLIN, (by_id[i].latitude, by_id[i].longitude)), NOW))
    assert order == computed
    for better, worse in ((11, 12), (21, 22), (31, 32), (41, 42), (51, 52), (61, 62)):
        assert ids(results).index(better) < ids(results).index(worse)
    scores = {hit.doc.pro_id: hit.score for hit in results.hits}
    assert scores[61] - scores[62] > 0.1  # by text relevance alone: everything else is equal


# ---------------------------------------------------------------------------------------------------- suggestions

def test_suggest_offers_skills_categories_names_and_headline_words(engine):
    engine.upsert_pros([
        pro(1, name="Paula Plume", headline="Plumber with twenty years", skills=["Pipe repair", "Plumbing"],
            category_names=["Plumbing"]),
        pro(2, name="Max Weber", headline="Plumber and heating", skills=["Plumbing", "Boilers"],
            category_names=["Plumbing", "Heating"]),
        pro(3, name="Ines Pluto", headline="Painter", skills=["Walls", "Plumbing"], category_names=["Painting"]),
    ])
    assert engine.suggest(T1, "plu") == ["Plumbing", "plumber", "Ines Pluto", "Paula Plume"]
    assert engine.suggest(T1, "emergency PLU", limit=2) == ["Plumbing", "plumber"]  # the last word, any case
    assert engine.suggest(T1, "rep") == ["Pipe repair"]  # any word of a skill
    assert engine.suggest(T1, "pa") == ["painter", "Painting", "Paula Plume"]  # what pros do, then names
    assert engine.suggest(T1, "web") == ["Max Weber"]
    assert engine.suggest(T1, "zzz") == []
    assert engine.suggest(T1, "") == []


# ---------------------------------------------------------------------------------------------------- consistency

def test_fingerprints_and_clear_tenant(engine):
    docs = [pro(1), pro(2, headline="Other")]
    engine.upsert_pros(docs)
    engine.upsert_requests([request_doc(5)])
    assert engine.fingerprints(T1, Kind.PRO) == {1: docs[0].fingerprint, 2: docs[1].fingerprint}
    assert engine.fingerprints(T1, Kind.REQUEST) == {5: request_doc(5).fingerprint}
    engine.upsert_pros([pro(2, headline="Changed")])
    assert engine.fingerprints(T1, Kind.PRO)[2] == pro(2, headline="Changed").fingerprint
    engine.upsert_pros([replace(pro(3), fingerprint="")])  # a document nobody fingerprinted
    assert engine.fingerprints(T1, Kind.PRO)[3] == ""

    engine.clear_tenant(T1)
    assert engine.fingerprints(T1, Kind.PRO) == {} and engine.fingerprints(T1, Kind.REQUEST) == {}
    assert engine.search_pros(T1, q()).total == 0


# ---------------------------------------------------------------------------------------------------- isolation

def test_tenants_never_see_each_other(engine):
    same = dict(headline="Emergency plumber", skills=["Plumbing"], category_ids=[1], category_names=["Plumbing"])
    engine.upsert_pros([pro(1, T1, **same), pro(2, T1, **same), pro(1, T2, name="Other", **same),
                        pro(3, T2, category_ids=[7], category_names=["Roofing"])])
    engine.upsert_requests([request_doc(1, T1, title="Leaking pipe"), request_doc(1, T2, title="Leaking pipe")])

    for query in (q(), q(text="plumber"), q(origin=BERLIN, radius_km=10), q(sort=Sort.RATING),
                  q(origin=BERLIN, radius_km=500, serves_origin=True), q(text="plumbing", origin=BERLIN)):
        results = engine.search_pros(T1, query)
        assert {hit.doc.tenant_id for hit in results.hits} == {T1}, query
        assert results.total == 2 and results.category_counts == {1: 2}, query
    assert ids(engine.search_pros(T2, q(sort=Sort.PRICE_LOW))) == [1, 3]
    assert engine.search_pros(T2, q()).category_counts == {1: 1, 7: 1}
    assert engine.search_pros(3, q()).total == 0

    assert "Other" not in engine.suggest(T1, "oth") and engine.suggest(T2, "oth") == ["Other"]
    assert engine.suggest(T1, "roo") == []
    assert set(engine.fingerprints(T1, Kind.PRO)) == {1, 2}
    assert set(engine.fingerprints(T2, Kind.PRO)) == {1, 3}
    [mine] = engine.search_requests(T1, RequestQuery(text="pipe")).hits
    assert mine.doc.tenant_id == T1

    engine.delete_pros(T2, [1, 2])  # tenant 2's pro 1 only: tenant 1's pros 1 and 2 stay
    assert sorted(ids(engine.search_pros(T1, q()))) == [1, 2]
    assert ids(engine.search_pros(T2, q())) == [3]
    engine.delete_requests(T2, [1])
    assert engine.search_requests(T1, RequestQuery()).total == 1
    engine.clear_tenant(T2)
    assert engine.search_pros(T1, q()).total == 2 and engine.search_pros(T2, q()).total == 0


# ---------------------------------------------------------------------------------------------------- requests

def test_requests_search(engine):
    engine.upsert_requests([
        request_doc(1, title="Fix a leaking tap", category_id=3, category_name="Plumbing"),
        request_doc(2, title="Paint the bedroom", category_id=4, category_name="Painting", at=north(BERLIN, 30)),
        request_doc(3, title="Replace bathroom tap", category_id=3, category_name="Plumbing", at=None),
        request_doc(4, title="Hang shelves", description="Two shelves, one tap to move"),
    ])
    newest = engine.search_requests(T1, RequestQuery())
    assert [hit.doc.request_id for hit in newest.hits] == [1, 2, 3, 4] and newest.total == 4
    taps = engine.search_requests(T1, RequestQuery(text="tap"))
    assert [hit.doc.request_id for hit in taps.hits][-1] == 4  # a title beats the description
    assert {hit.doc.request_id for hit in taps.hits} == {1, 3, 4}
    assert [h.doc.request_id for h in engine.search_requests(T1, RequestQuery(category_ids=(3, 4))).hits] == [1, 2, 3]
    near = engine.search_requests(T1, RequestQuery(origin=BERLIN, radius_km=10))
    assert [hit.doc.request_id for hit in near.hits] == [1, 4] and near.hits[0].distance_km == pytest.approx(0)
    page = engine.search_requests(T1, RequestQuery(offset=1, limit=2))
    assert [hit.doc.request_id for hit in page.hits] == [2, 3] and page.total == 4
    [hit] = engine.search_requests(T1, RequestQuery(text="bedroom")).hits
    assert hit.doc == request_doc(2, title="Paint the bedroom", category_id=4, category_name="Painting",
                                  at=north(BERLIN, 30))
    engine.delete_requests(T1, [1, 2])
    assert engine.search_requests(T1, RequestQuery()).total == 2


def test_a_document_is_searchable_as_soon_as_upsert_returns(engine):
    for i, wood in enumerate(("oak", "birch", "maple", "cedar", "walnut"), start=1):
        engine.upsert_pros([pro(i, headline=f"Carpenter working {wood}")])
        assert ids(engine.search_pros(T1, q(text=wood))) == [i]
    engine.upsert_pros([replace(pro(1), headline="Roofer")])
    assert ids(engine.search_pros(T1, q(text="roofer"))) == [1]


# ---------------------------------------------------------------------------------------------------- tantivy only

def test_tantivy_refuses_writes_while_another_process_holds_the_index(tmp_path, monkeypatch):
    engine = TantivyEngine(tmp_path / "search")
    engine.upsert_pros([pro(1)])
    monkeypatch.setattr(tantivy_engine, "LOCK_WAIT_SECONDS", 0.2)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITER, str(tmp_path / "search" / f"pros-v{tantivy_engine.SCHEMA_VERSION}")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(SearchUnavailable, match="being written by another process"):
            engine.upsert_pros([pro(2)])
        assert ids(engine.search_pros(T1, q())) == [1]  # reading goes on
    finally:
        holder.communicate("done\n", timeout=30)
    engine.upsert_pros([pro(2)])  # the lock is free again: the job's retry succeeds
    assert sorted(ids(engine.search_pros(T1, q()))) == [1, 2]


HOLD_WRITER = """
import sys, tantivy
index = tantivy.Index.open(sys.argv[1])
writer = index.writer(heap_size=15_000_000, num_threads=1)
print("locked", flush=True)
sys.stdin.readline()
"""


def test_tantivy_readers_see_another_writers_commits(tmp_path):
    reader, writer = TantivyEngine(tmp_path / "search"), TantivyEngine(tmp_path / "search")
    assert reader.search_pros(T1, q()).total == 0
    writer.upsert_pros([pro(1)])
    time.sleep(tantivy_engine.RELOAD_SECONDS + 0.1)
    assert ids(reader.search_pros(T1, q())) == [1]


def test_tantivy_index_survives_a_restart(tmp_path):
    TantivyEngine(tmp_path / "search").upsert_pros([pro(1, headline="Stonemason")])
    assert ids(TantivyEngine(tmp_path / "search").search_pros(T1, q(text="stonemason"))) == [1]


# ---------------------------------------------------------------------------------------------------- elastic only

@pytest.fixture
def fake() -> Iterator[FakeElasticsearch]:
    with FakeElasticsearch() as server:
        yield server


def test_elastic_errors_become_search_unavailable(fake):
    engine = ElasticEngine(fake.url)
    engine.upsert_pros([pro(1)])
    fake.fail_next(status=503)  # the client retries a 503 once by itself
    assert ids(engine.search_pros(T1, q())) == [1]
    fake.fail_next(n=2, status=503)
    with pytest.raises(SearchUnavailable, match="503"):
        engine.search_pros(T1, q())
    assert ids(engine.search_pros(T1, q())) == [1]  # the next request goes through
    fake.fail_next(status=500)  # not retried: at once
    with pytest.raises(SearchUnavailable):
        engine.upsert_pros([pro(2)])
    fake.unreachable = True
    with pytest.raises(SearchUnavailable, match="unreachable"):
        engine.suggest(T1, "pro")
    fake.unreachable = False
    assert engine.search_pros(T1, q()).total == 1


def test_elastic_routes_every_request_by_tenant(fake):
    engine = ElasticEngine(fake.url)
    engine.upsert_pros([pro(1, T1), pro(1, T2)])
    engine.search_pros(T2, q(text="handyman", origin=BERLIN, serves_origin=True))
    engine.suggest(T2, "han")
    engine.fingerprints(T2, Kind.PRO)
    engine.clear_tenant(T2)
    searches = [r for r in fake.requests if r.path.endswith(("/_search", "/_delete_by_query"))]
    assert len(searches) == 5 and {r.params["routing"] for r in searches} == {"2"}
    [bulk] = [r for r in fake.requests if r.path == "/_bulk"]
    assert [line["index"]["routing"] for line in bulk.body[::2]] == ["1", "2"]


def test_elastic_index_creation_is_idempotent(fake, monkeypatch):
    ElasticEngine(fake.url).upsert_pros([pro(1)])
    second = ElasticEngine(fake.url)
    # Another process created the indexes between our check and our create: the 400 is not an error.
    monkeypatch.setattr(second._client.indices, "exists", lambda **_: False)
    second.upsert_pros([pro(2)])
    assert second.search_pros(T1, q()).total == 2


def test_the_fake_refuses_what_elasticsearch_would(fake):
    client = Elasticsearch(fake.url)
    ElasticEngine(fake.url, client=client).upsert_pros([pro(1)])
    index = "marketplace-pros-v1"
    with pytest.raises(BadRequestError, match="parsing_exception"):
        client.search(index=index, query={"fuzzy_wuzzy": {"name": "x"}})
    with pytest.raises(BadRequestError, match="strict_dynamic_mapping_exception"):
        client.index(index=index, id="1-9", routing="1", document={"pro_id": 9, "nickname": "x"})
    with pytest.raises(BadRequestError, match="routing_missing_exception"):
        client.index(index=index, id="1-9", document={"pro_id": 9})
    client.index(index=index, id="1-9", routing="1", document={"tenant_id": 1, "pro_id": 9})
    assert client.count(index=index)["count"] == 1  # not searchable before a refresh
    client.indices.refresh(index=index)
    assert client.count(index=index)["count"] == 2
