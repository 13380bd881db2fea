"""The Elasticsearch adapter's request bodies, built without a server, against golden JSON files.

The golden files (tests/unit/golden/elastic_*.json) are what we send to Elasticsearch. A change to one is a change
to what every search asks, so it must be reviewed like code: read the diff of the JSON, not only the test result.
Regenerate after an intended change with

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_elastic_queries.py

then review `git diff tests/unit/golden/`.
"""

from __future__ import annotations

import json
import os
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from backend.matching import ranking
from backend.matching.adapters import elastic
from backend.matching.ports import ProQuery, RequestQuery, Sort

GOLDEN = Path(__file__).parent / "golden"
NOW = datetime(2026, 3, 2, 12, 0)
BERLIN = (52.52, 13.405)

CASES: dict[str, Any] = {
    "pros_browse": lambda: elastic.pro_search_body(1, ProQuery(now=NOW), NOW),
    "pros_keywords": lambda: elastic.pro_search_body(1, ProQuery(text="Emergency plumbr in Berlín", now=NOW), NOW),
    "pros_every_filter": lambda: elastic.pro_search_body(7, ProQuery(
        text="tiles", category_id=3, origin=BERLIN, radius_km=15, price_min_minor=2000, price_max_minor=8000,
        min_rating=4, verified_only=True, available_on=date(2026, 3, 4), exclude_ids=(9, 4), offset=12, limit=12,
        now=NOW), NOW),
    "pros_instant_match_radii": lambda: elastic.radius_values_body(7, ProQuery(
        category_id=3, origin=BERLIN, radius_km=500, serves_origin=True, available_on=date(2026, 3, 4),
        exclude_ids=(4,), limit=5, now=NOW)),
    "pros_instant_match": lambda: elastic.pro_search_body(7, ProQuery(
        category_id=3, origin=BERLIN, radius_km=500, serves_origin=True, available_on=date(2026, 3, 4),
        exclude_ids=(4,), limit=5, now=NOW), NOW, radius_values=[5, 25, 50, 500]),
    "pros_sort_distance": lambda: elastic.pro_search_body(1, ProQuery(origin=BERLIN, sort=Sort.DISTANCE), NOW),
    "pros_sort_rating": lambda: elastic.pro_search_body(1, ProQuery(sort=Sort.RATING), NOW),
    "pros_sort_price": lambda: elastic.pro_search_body(1, ProQuery(sort=Sort.PRICE_LOW, text="paint"), NOW),
    "pros_sort_price_desc": lambda: elastic.pro_search_body(1, ProQuery(sort=Sort.PRICE_HIGH), NOW),
    "suggest": lambda: elastic.suggest_body(1, "plu"),
    "requests_keywords_near": lambda: elastic.request_search_body(1, RequestQuery(
        text="leaking tap", category_ids=(3, 1), origin=BERLIN, radius_km=30, offset=20, limit=20)),
    "requests_browse": lambda: elastic.request_search_body(1, RequestQuery()),
    "fingerprints": lambda: elastic.fingerprints_body(1, "pro_id", 1042),
    "mapping_pros": lambda: {"settings": elastic.SETTINGS, "mappings": elastic.PRO_MAPPING},
    "mapping_requests": lambda: {"settings": elastic.SETTINGS, "mappings": elastic.REQUEST_MAPPING},
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_body_matches_golden(name):
    body = json.loads(json.dumps(CASES[name]()))  # as sent: JSON, tuples as lists
    path = GOLDEN / f"elastic_{name}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    assert path.exists(), f"{path.name} is missing: run with UPDATE_GOLDEN=1 and review it"
    assert body == json.loads(path.read_text()), f"{path.name} changed: review, then UPDATE_GOLDEN=1"


@pytest.mark.parametrize("name", [name for name in CASES if not name.startswith("mapping")])
def test_every_query_is_scoped_to_its_tenant(name):
    body = json.loads(json.dumps(CASES[name]()))
    tenant = 7 if name.startswith(("pros_every", "pros_instant")) else 1
    query = body["query"]
    scoped = query["function_score"]["query"] if "function_score" in query else query
    assert {"term": {"tenant_id": tenant}} in scoped["bool"]["filter"]


def test_best_match_functions_are_ranking_py():
    body = elastic.pro_search_body(1, ProQuery(origin=BERLIN, now=NOW), NOW)
    score = body["query"]["function_score"]
    assert (score["score_mode"], score["boost_mode"]) == ("sum", "sum")
    location, rating, response, verified, recency = score["functions"]
    assert location == {"gauss": {"location": {"origin": {"lat": 52.52, "lon": 13.405},
                                               "scale": f"{ranking.DISTANCE_HALF_KM:g}km", "offset": "0km",
                                               "decay": ranking.DECAY}}, "weight": ranking.WEIGHTS.distance}
    assert rating["field_value_factor"]["factor"] * 5 == ranking.WEIGHTS.rating
    assert response["field_value_factor"] == {"field": "response_rate", "factor": ranking.WEIGHTS.response,
                                              "missing": ranking.NEUTRAL_RESPONSE}
    assert verified == {"filter": {"term": {"verified": True}}, "weight": ranking.WEIGHTS.verified}
    assert recency["gauss"]["last_active"]["origin"] == "2026-03-02T12:00:00"
    assert recency["weight"] == ranking.WEIGHTS.recency
    assert body["query"]["function_score"]["query"]["bool"]["must"] == [{"match_all": {}}]  # browsing scores 1.0
    assert "function_score" not in json.dumps(elastic.pro_search_body(1, ProQuery(sort=Sort.RATING), NOW))


def test_serves_origin_needs_one_clause_per_radius():
    clause = elastic.serves(BERLIN, 30, [10, 50, 10, 30]).to_dict()
    assert clause == {"bool": {"minimum_should_match": 1, "should": [
        {"terms": {"radius_km": [30, 50]}},
        {"bool": {"filter": [{"term": {"radius_km": 10}},
                             {"geo_distance": {"distance": "10km", "location": {"lat": 52.52, "lon": 13.405}}}]}},
    ]}}
    assert elastic.serves(BERLIN, 30, []).to_dict() == {"match_none": {}}  # nobody in range at all
