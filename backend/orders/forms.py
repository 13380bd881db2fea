"""Input shapes for the marketplace: validated at the service boundary, with plain messages."""

from __future__ import annotations

from datetime import date, timedelta

from pydantic import BaseModel, field_validator, model_validator

from backend.validation import clean_text

MAX_PRICE_MAJOR = 1_000_000
MAX_PHOTOS = 6


def _today() -> date:
    return date.today()


def whole_number(value, low: int, high: int, *, not_a_number: str, out_of_range: str) -> int:
    """Form fields arrive as text: parse a whole number in [low, high] with the field's own wording."""
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValueError(not_a_number) from None
    if not low <= number <= high:
        raise ValueError(out_of_range)
    return number


class RequestCreate(BaseModel):
    category_id: int
    title: str
    description: str
    city: str
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

    @field_validator("description")
    @classmethod
    def _description(cls, v: str) -> str:
        v = (v or "").strip()
        if len(v) < 20:
            raise ValueError("Describe the job in at least 20 characters")
        if len(v) > 4000:
            raise ValueError("Description must be at most 4000 characters")
        return v

    @field_validator("city")
    @classmethod
    def _city(cls, v: str) -> str:
        return clean_text(v, field="city", max_len=80, required=True)

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
    message: str
    duration_hours: int
    valid_until: date

    @field_validator("message")
    @classmethod
    def _message(cls, v: str) -> str:
        v = (v or "").strip()
        if len(v) < 10:
            raise ValueError("Write a short message (at least 10 characters)")
        if len(v) > 2000:
            raise ValueError("Message must be at most 2000 characters")
        return v

    @field_validator("duration_hours", mode="before")
    @classmethod
    def _duration(cls, v):
        return whole_number(v, 1, 2000, not_a_number="Enter the estimated hours as a whole number",
                            out_of_range="Estimated duration must be between 1 and 2000 hours")

    @field_validator("valid_until", mode="before")
    @classmethod
    def _valid_until(cls, v):
        if not v:
            raise ValueError("Choose how long the quote is valid")
        return v

    @field_validator("valid_until")
    @classmethod
    def _valid_range(cls, v: date) -> date:
        if v < _today():
            raise ValueError("The quote must be valid until today or later")
        if v > _today() + timedelta(days=90):
            raise ValueError("A quote can be valid for at most 90 days")
        return v


class BookingCreate(BaseModel):
    hours: int
    day: date
    note: str = ""

    @field_validator("hours", mode="before")
    @classmethod
    def _hours(cls, v):
        return whole_number(v, 1, 40, not_a_number="Enter the number of hours",
                            out_of_range="Book between 1 and 40 hours")

    @field_validator("day", mode="before")
    @classmethod
    def _day_required(cls, v):
        if not v:
            raise ValueError("Choose a day")
        return v

    @field_validator("day")
    @classmethod
    def _day(cls, v: date) -> date:
        if v < _today():
            raise ValueError("That day is in the past")
        if v > _today() + timedelta(days=366):
            raise ValueError("Pick a day within a year")
        return v

    @field_validator("note")
    @classmethod
    def _note(cls, v: str) -> str:
        v = (v or "").strip()
        if len(v) > 1000:
            raise ValueError("Note must be at most 1000 characters")
        return v
