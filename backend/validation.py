"""Shared field validators for the service boundary."""

from __future__ import annotations

from functools import partial
from typing import Annotated, TypeVar

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, BeforeValidator, ValidationError

from backend.errors import ValidationFailed, field_errors_from_pydantic

M = TypeVar("M", bound=BaseModel)
MIN_PASSWORD = 10
MAX_PASSWORD = 200


def normalize_email(value: str) -> str:
    value = (value or "").strip()
    if not value:
        raise ValueError("Enter your email address")
    if len(value) > 254:
        raise ValueError("Email must be at most 254 characters")
    try:
        # Deliverability (DNS) checks are off: they need the network and slow sign-up.
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"Enter a valid email address ({exc})") from None
    return result.normalized.lower()


def check_password(value: str) -> str:
    if len(value or "") < MIN_PASSWORD:
        raise ValueError(f"Password must be at least {MIN_PASSWORD} characters")
    if len(value) > MAX_PASSWORD:
        raise ValueError(f"Password must be at most {MAX_PASSWORD} characters")
    return value


def clean_text(value: str, *, field: str, max_len: int, required: bool = False) -> str:
    value = " ".join((value or "").split())
    if required and not value:
        raise ValueError(f"Enter your {field}")
    if len(value) > max_len:
        raise ValueError(f"{field.capitalize()} must be at most {max_len} characters")
    return value


def text(field: str, max_len: int, *, required: bool = False) -> AfterValidator:
    """Free text in an input shape, e.g. `city: Annotated[str, text("city", 80)]`: see clean_text."""
    return AfterValidator(partial(clean_text, field=field, max_len=max_len, required=required))


def clean_paragraphs(value: str, *, field: str, max_len: int, min_len: int = 0, too_short: str = "") -> str:
    """Longer text that keeps its line breaks (a description, a message, a bio): trimmed, at most max_len
    characters, and at least min_len, else `too_short`."""
    value = (value or "").strip()
    if len(value) < min_len:
        raise ValueError(too_short)
    if len(value) > max_len:
        raise ValueError(f"{field.capitalize()} must be at most {max_len} characters")
    return value


def paragraphs(field: str, max_len: int, *, min_len: int = 0, too_short: str = "") -> AfterValidator:
    """Longer text in an input shape, e.g. `bio: Annotated[str, paragraphs("bio", 4000)]`: see clean_paragraphs."""
    return AfterValidator(partial(clean_paragraphs, field=field, max_len=max_len, min_len=min_len,
                                  too_short=too_short))


def whole_number(value, low: int, high: int, *, not_a_number: str, out_of_range: str) -> int:
    """Form fields arrive as text: parse a whole number in [low, high] with the field's own wording."""
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValueError(not_a_number) from None
    if not low <= number <= high:
        raise ValueError(out_of_range)
    return number


def whole(low: int, high: int, *, not_a_number: str, out_of_range: str) -> BeforeValidator:
    """A whole number typed into a form, e.g. `hours: Annotated[int, whole(1, 40, ...)]`: see whole_number."""
    return BeforeValidator(partial(whole_number, low=low, high=high, not_a_number=not_a_number,
                                   out_of_range=out_of_range))


def parse_input(model: type[M], data: dict) -> M:
    """Validate a form at the service boundary; errors become per-field messages."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(field_errors_from_pydantic(exc)) from None


# Field types for input shapes: `email: Email` normalises and checks, with plain messages.
Email = Annotated[str, AfterValidator(normalize_email)]
Password = Annotated[str, AfterValidator(check_password)]
FullName = Annotated[str, text("name", 80, required=True)]
