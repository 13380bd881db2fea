"""The search page's URLs (state/pros.py): the URL is the search, so what goes into it decides what a shared link,
back/forward and every facet, chip and page link open."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from state.pros import filter_chips, search_href


def params(href: str) -> dict[str, str]:
    assert urlsplit(href).path == "/pros"
    return dict(parse_qsl(urlsplit(href).query))


def test_defaults_and_blanks_stay_out_of_the_url():
    assert search_href({}) == "/pros"
    assert search_href({"q": "", "sort": "best", "radius": "25", "page": "1", "verified": ""}) == "/pros"
    assert params(search_href({"q": "plumber", "sort": "rating"})) == {"q": "plumber", "sort": "rating"}


def test_the_radius_goes_only_with_a_place():
    assert params(search_href({"radius": "50"})) == {}
    assert params(search_href({"place": "Austin", "radius": "50"})) == {"place": "Austin", "radius": "50"}
    assert params(search_href({"place": "Austin", "radius": "50"}, place="")) == {}


def test_any_change_but_the_page_goes_back_to_the_first_page():
    current = {"q": "clean", "category": "3", "page": "4"}
    assert params(search_href(current, page="5")) == {"q": "clean", "category": "3", "page": "5"}
    assert params(search_href(current, category="7")) == {"q": "clean", "category": "7"}
    assert params(search_href(current, q="tidy")) == {"q": "tidy", "category": "3"}


def test_the_url_keeps_a_stable_order_and_escapes_text():
    href = search_href({"sort": "price", "q": "a&b=c", "place": "Austin, TX, United States"})
    assert href == "/pros?q=a%26b%3Dc&place=Austin%2C+TX%2C+United+States&sort=price"
    assert params(href)["q"] == "a&b=c"


def test_each_chip_removes_its_own_filter_only():
    applied = {"q": "paint", "category": "2", "place": "Austin", "radius": "10", "price_min": "20",
               "price_max": "80", "min_rating": "4", "verified": "1", "date": "2031-05-12", "page": "3"}
    chips = {c.label: params(c.href) for c in filter_chips(applied, "Painting", "Austin, TX, United States")}
    assert list(chips) == ["Painting", "Within 10 km of Austin, TX, United States", "20 to 80 per hour",
                           "4+ stars", "Verified only", "Available Mon 12 May"]
    rest = {k: v for k, v in applied.items() if k != "page"}
    assert chips["Painting"] == {k: v for k, v in rest.items() if k != "category"}
    assert chips["Within 10 km of Austin, TX, United States"] == {
        k: v for k, v in rest.items() if k not in ("place", "radius")}
    assert chips["20 to 80 per hour"] == {k: v for k, v in rest.items() if k not in ("price_min", "price_max")}
    assert chips["Verified only"] == {k: v for k, v in rest.items() if k != "verified"}
    assert filter_chips({"q": "x", "sort": "rating"}, "", "") == []
