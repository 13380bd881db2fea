"""The search form: what `/pros?...` carries, checked at the service boundary with a message per field.

Every value arrives as text from the URL (a shared link, back/forward), so an empty value means "not set" and
everything else is parsed here. Prices stay text: they are read in the marketplace's currency by the service
(money.parse_amount), which knows it.
"""

from __future__ import annotations

from datetime import date as Date
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, field_validator, model_validator

from backend.matching.ports import Sort
from backend.validation import text, whole

MAX_PAGE = 100
PAGE_SIZE = 12
DEFAULT_RADIUS_KM = 25


def _blank_to_none(value):
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return value.strip() if isinstance(value, str) else value


Blankable = BeforeValidator(_blank_to_none)


class SearchForm(BaseModel):
    model_config = ConfigDict(extra="ignore")

    q: Annotated[str, text("search", 100)] = ""
    category: Annotated[int | None, Blankable,
                        whole(1, 2**31 - 1, not_a_number="Choose a category from the list",
                              out_of_range="Choose a category from the list")] = None
    place: Annotated[str, text("place", 120)] = ""
    radius: Annotated[int, whole(1, 500, not_a_number="Enter the distance in whole kilometres",
                                 out_of_range="The distance must be between 1 and 500 km")] = DEFAULT_RADIUS_KM
    price_min: str = ""
    price_max: str = ""
    min_rating: Annotated[float | None, Blankable] = None
    verified: bool = False
    date: Annotated[Date | None, Blankable] = None
    sort: Annotated[Sort, Blankable] = Sort.BEST
    page: Annotated[int, whole(1, MAX_PAGE, not_a_number="Enter a page number",
                               out_of_range=f"Pages go from 1 to {MAX_PAGE}")] = 1

    @model_validator(mode="before")
    @classmethod
    def _defaults_for_blanks(cls, data):
        """A blank radius, sort or page (a form submitted with the field empty) is its default."""
        if isinstance(data, dict):
            data = {k: v for k, v in data.items()
                    if not (k in ("radius", "sort", "page", "verified") and _blank_to_none(v) is None)}
        return data

    @field_validator("min_rating", mode="before")
    @classmethod
    def _rating(cls, value):
        if value is None:
            return None
        try:
            rating = float(str(value).strip())
        except ValueError:
            raise ValueError("Choose a rating from 1 to 5") from None
        if not 1 <= rating <= 5:
            raise ValueError("Choose a rating from 1 to 5")
        return rating

    @field_validator("verified", mode="before")
    @classmethod
    def _verified(cls, value):
        if isinstance(value, bool):
            return value
        if str(value).strip().lower() in ("1", "true", "on", "yes"):
            return True
        if str(value).strip().lower() in ("0", "false", "off", "no"):
            return False
        raise ValueError("Verified only is on (1) or off (0)")

    @field_validator("sort", mode="before")
    @classmethod
    def _sort(cls, value):
        try:
            return Sort(str(value).strip().lower())
        except ValueError:
            raise ValueError("Sort by best match, distance, rating or price") from None

    @field_validator("date", mode="before")
    @classmethod
    def _date(cls, value):
        if value is None or isinstance(value, Date):
            return value
        try:
            return Date.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError("Enter the date as YYYY-MM-DD") from None

    @field_validator("price_min", "price_max", mode="before")
    @classmethod
    def _price_text(cls, value):
        return "" if value is None else str(value).strip()
