"""Time zones of accounts: IANA names (zoneinfo), checked against the system's tz database, offered for choosing in
groups, and guessed from a verified phone number (`phonenumbers.timezone`) when the number says exactly one.

Pure functions (no database): AccountService stores the name on the user row; notifications read it (Contacts) to
keep quiet hours on the recipient's clock.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

import phonenumbers
from phonenumbers import NumberParseException
from phonenumbers import timezone as phone_zones

MAX_NAME = 64  # the column's length; the longest IANA name is about half of it

# Offered first: the zones most people of our marketplaces live in, west to east.
COMMON_ZONES = (
    "Pacific/Honolulu", "America/Anchorage", "America/Los_Angeles", "America/Phoenix", "America/Denver",
    "America/Chicago", "America/New_York", "America/Halifax", "America/Sao_Paulo", "UTC", "Europe/London",
    "Europe/Paris", "Europe/Berlin", "Africa/Johannesburg", "Europe/Istanbul", "Asia/Dubai", "Asia/Kolkata",
    "Asia/Singapore", "Asia/Tokyo", "Australia/Sydney", "Pacific/Auckland",
)
# The other groups: IANA's areas. Names outside them (aliases such as "US/Eastern", "EST5EDT", "Etc/GMT+5", whose
# sign is the reverse of what it reads) are still accepted, but not offered.
AREAS = ("Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific")


@dataclass(frozen=True)
class ZoneOption:
    value: str  # the IANA name
    label: str  # "New York", "Argentina / Buenos Aires"


@dataclass(frozen=True)
class ZoneGroup:
    label: str  # "Common", "America", ...
    options: list[ZoneOption]


@dataclass(frozen=True)
class TimeZoneView:
    """The account's time zone as its owner sees it."""
    name: str  # IANA name; "" = not set (quiet hours in UTC)
    local_time: str  # the clock there now, "14:05"
    quiet_hours: str  # "21:00–08:00": when texts that can wait are held, on that clock


class TimeZoneError(ValueError):
    """Not a time zone we know; str(exc) says so, in words for the user."""


@cache
def known_zones() -> frozenset[str]:
    """Every IANA name this system's tz database has (empty when it has none: then only "" is accepted)."""
    return frozenset(zoneinfo.available_timezones())


def parse_time_zone(raw: str | None) -> str | None:
    """The IANA name to store, or None for "" (unknown: quiet hours in UTC); TimeZoneError for anything else."""
    name = (raw or "").strip()
    if not name:
        return None
    if len(name) > MAX_NAME or name not in known_zones():
        raise TimeZoneError("Choose a time zone from the list.")
    return name


def zone_label(name: str) -> str:
    """"America/Argentina/Buenos_Aires" -> "Argentina / Buenos Aires" (the area is the group's label)."""
    area, _, place = name.partition("/")
    return (place if area in AREAS and place else name).replace("_", " ").replace("/", " / ")


def zone_groups() -> list[ZoneGroup]:
    """What the account page offers: the common zones first, then every zone of each area, sorted by name."""
    known = known_zones()
    groups = [ZoneGroup("Common", [ZoneOption(z, z.replace("_", " ")) for z in COMMON_ZONES if z in known])]
    for area in AREAS:
        names = sorted(z for z in known if z.startswith(area + "/"))
        if names:
            groups.append(ZoneGroup(area, [ZoneOption(z, zone_label(z)) for z in names]))
    return [g for g in groups if g.options]


def local_time(name: str | None, now: datetime) -> str:
    """`now` on that zone's clock ("14:05"), in UTC when it is unknown."""
    zone = zoneinfo.ZoneInfo(name) if name and name in known_zones() else UTC
    return now.astimezone(zone).strftime("%H:%M")


def guess_time_zone(e164: str) -> str | None:
    """The one time zone a phone number lies in ("+1 212..." -> "America/New_York"), or None when its area spans
    several (most mobile ranges outside North America) or the number says nothing."""
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return None
    zones = phone_zones.time_zones_for_number(number)
    if len(zones) != 1:
        return None
    (zone,) = zones
    return zone if zone in known_zones() else None  # "Etc/Unknown" is what it says when it does not know
