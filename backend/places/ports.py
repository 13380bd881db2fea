"""The gazetteer port: what the services need to know about places."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Place:
    id: int  # the gazetteer's id (a GeoNames id for the embedded adapter)
    name: str  # "Austin"
    label: str  # "Austin, TX, United States": what is stored on a profile or request and shown
    latitude: float
    longitude: float
    country_code: str  # ISO 3166-1 alpha-2
    population: int


class Gazetteer(Protocol):
    def resolve(self, text: str) -> Place | None:
        """The place a user meant: an exact label ("Austin, TX, United States"), a name with a region or country
        ("Austin, TX", "Paris, France"), or a bare name ("austin": the most populous city of that name). Case,
        accents and extra spaces are ignored. None when nothing matches."""

    def suggest(self, prefix: str, limit: int = 8) -> list[Place]:
        """Places whose name (or label) starts with what was typed, most populous first; [] for under 2 letters."""

    def by_id(self, place_id: int) -> Place | None: ...


# What a service answers when a typed place is not in the gazetteer (profiles, requests, search).
UNKNOWN_PLACE = "We don't know this place. Choose a city from the list."
