"""Input shapes for the marketplace: validated at the service boundary, with plain messages."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, field_validator, model_validator

from backend.validation import clean_text, paragraphs, text, whole

MAX_PRICE_MAJOR = 1_000_000
MAX_PHOTOS = 6


def _today() -> date:
    return date.today()


def _required(message: str) -> BeforeValidator:
    """A date the form must have: an empty field is refused with the field's own wording."""

    def check(value):
        if not value:
            raise ValueError(message)
        return value

    return BeforeValidator(check)


def _from_today(days: int, *, past: str, too_far: str) -> AfterValidator:
    """A date from today up to `days` ahead, with the field's own wording for either side."""

    def check(value: date) -> date:
        if value < _today():
            raise ValueError(past)
        if value > _today() + timedelta(days=days):
            raise ValueError(too_far)
        return value

    return AfterValidator(check)


class RequestCreate(BaseModel):
    category_id: int
    title: str
    description: Annotated[str, paragraphs("description", 4000, min_len=20,
                                           too_short="Describe the job in at least 20 characters")]
    city: Annotated[str, text("city", 80, required=True)]
    budget_min: str = ""
    budget_max: str = ""
    preferred_start: date | None = None
    preferred_end: date | None = None

    @field_validator("category_id", mode="before")
    @classmethod
    def _category(cls, v):
        if v in (None, "", 0, "0"):
            raise ValueError("Choose a category")
        return v

    @field_validator("title")
    @classmethod
    def _title(cls, v: str) -> str:
        v = clean_text(v, field="title", max_len=120, required=True)
        if len(v) < 5:
            raise ValueError("Title must be at least 5 characters")
        return v

    @field_validator("preferred_start", "preferred_end", mode="before")
    @classmethod
    def _empty_date(cls, v):
        return v or None

    @model_validator(mode="after")
    def _dates(self):
        if self.preferred_start and self.preferred_start < _today():
            raise ValueError("preferred_start: The start date is in the past")
        if self.preferred_start and self.preferred_end and self.preferred_end < self.preferred_start:
            raise ValueError("preferred_end: The end date is before the start date")
        if self.preferred_end and self.preferred_end > _today() + timedelta(days=366):
            raise ValueError("preferred_end: Pick a date within a year")
        return self


QUOTE_VALID_FOR = timedelta(days=7)  # what the quote form suggests; the professional may pick up to 90 days


def suggested_valid_until() -> date:
    """The quote form's default "valid until" date."""
    return _today() + QUOTE_VALID_FOR


class QuoteCreate(BaseModel):
    price: str
    message: Annotated[str, paragraphs("message", 2000, min_len=10,
                                       too_short="Write a short message (at least 10 characters)")]
    duration_hours: Annotated[int, whole(1, 2000, not_a_number="Enter the estimated hours as a whole number",
                                         out_of_range="Estimated duration must be between 1 and 2000 hours")]
    valid_until: Annotated[date, _required("Choose how long the quote is valid"),
                           _from_today(90, past="The quote must be valid until today or later",
                                       too_far="A quote can be valid for at most 90 days")]


class BookingCreate(BaseModel):
    hours: Annotated[int, whole(1, 40, not_a_number="Enter the number of hours",
                                out_of_range="Book between 1 and 40 hours")]
    day: Annotated[date, _required("Choose a day"),
                   _from_today(366, past="That day is in the past", too_far="Pick a day within a year")]
    note: Annotated[str, paragraphs("note", 1000)] = ""
