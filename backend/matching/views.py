"""What the search page shows: result cards, facets, the page of results."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProCard:
    pro_id: int
    name: str
    avatar_url: str
    headline: str
    city: str
    categories: list[str]
    rate: str  # "$65.00/h"; "" when the pro set no rate
    rating_text: str  # "4.8"; "" without reviews
    rating_count: int
    verified: bool
    distance_text: str  # "3 km away"; "" without a place
    why: str  # ranking.why


@dataclass(frozen=True)
class CategoryFacet:
    id: int
    name: str
    count: int  # pros matching every other filter
    selected: bool


@dataclass(frozen=True)
class SearchPage:
    cards: list[ProCard]
    total: int
    page: int  # 1-based
    pages: int
    facets: list[CategoryFacet] = field(default_factory=list)
    place: str = ""  # the resolved place's label ("" without one)
    summary: str = ""  # "12 professionals within 25 km of Austin, TX, United States"


@dataclass(frozen=True)
class Consistency:
    """The index against the database for one tenant (`MatchingService.check`)."""

    tenant_id: int
    missing: dict[str, list[int]]  # kind -> ids in the database, not in the index
    stale: dict[str, list[int]]  # kind -> ids whose indexed fingerprint differs
    extra: dict[str, list[int]]  # kind -> ids in the index that should not be

    @property
    def ok(self) -> bool:
        return not any((*self.missing.values(), *self.stale.values(), *self.extra.values()))
