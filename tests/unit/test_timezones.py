"""Account time zones: names checked against the tz database, the groups the account page offers, and the zone a
phone number gives."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backend.accounts.timezones import (COMMON_ZONES, TimeZoneError, guess_time_zone, local_time, parse_time_zone,
                                        zone_groups, zone_label)


def test_known_names_are_kept_and_blank_means_unset():
    assert parse_time_zone("America/New_York") == "America/New_York"
    assert parse_time_zone("  Europe/Paris\n") == "Europe/Paris"
    assert parse_time_zone("US/Eastern") == "US/Eastern"  # an alias the database has: accepted, not offered
    assert parse_time_zone("") is None and parse_time_zone("   ") is None and parse_time_zone(None) is None


@pytest.mark.parametrize("bad", ["Mars/Olympus_Mons", "america/new_york", "America/New York", "../etc/passwd",
                                 "Etc/Unknown", "America/" + "x" * 70])
def test_anything_else_is_refused(bad):
    with pytest.raises(TimeZoneError, match="Choose a time zone from the list"):
        parse_time_zone(bad)


def test_the_list_offers_common_zones_first_then_each_area_sorted():
    groups = zone_groups()
    assert groups[0].label == "Common"
    assert [o.value for o in groups[0].options] == list(COMMON_ZONES)
    areas = {g.label: [o.value for o in g.options] for g in groups[1:]}
    assert "America" in areas and "Europe" in areas and "Asia" in areas
    for names in areas.values():
        assert names == sorted(names)
    offered = {o.value for g in groups for o in g.options}
    assert "US/Eastern" not in offered and "Etc/GMT+5" not in offered
    assert all(parse_time_zone(name) == name for name in offered)
    assert zone_label("America/Argentina/Buenos_Aires") == "Argentina / Buenos Aires"


def test_the_clock_there():
    noon_utc = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    assert local_time("Asia/Tokyo", noon_utc) == "21:00"
    assert local_time("America/New_York", noon_utc) == "07:00"
    assert local_time(None, noon_utc) == "12:00"


@pytest.mark.parametrize("e164, zone", [
    ("+12125550123", "America/New_York"),  # Manhattan
    ("+14155550123", "America/Los_Angeles"),
    ("+33612345678", "Europe/Paris"),
    ("+61412345678", None),  # an Australian mobile: Perth to Sydney
    ("+79161234567", None),  # a Russian mobile: eleven zones
    ("+447400123456", None),  # London, Jersey, Guernsey and the Isle of Man: several names
    ("not a number", None),
])
def test_a_number_gives_its_zone_only_when_it_has_exactly_one(e164, zone):
    assert guess_time_zone(e164) == zone
