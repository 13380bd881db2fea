"""Domain errors raised by services; the web layer turns them into messages, never stack traces."""

from __future__ import annotations


class DomainError(Exception):
    """A use case refused the request. `message` is safe to show to the user."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class ValidationFailed(DomainError):
    """Input did not pass validation; `errors` maps form field -> message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("Please correct the highlighted fields.")
        self.errors = errors


class AuthenticationFailed(DomainError):
    pass


class Throttled(DomainError):
    pass


class PermissionDenied(DomainError):
    def __init__(self, message: str = "You are not allowed to do that."):
        super().__init__(message)


class NotFound(DomainError):
    def __init__(self, message: str = "Not found."):
        super().__init__(message)


class Conflict(DomainError):
    pass


class TokenInvalid(DomainError):
    pass


def field_errors_from_pydantic(exc) -> dict[str, str]:
    """Flatten a pydantic ValidationError into {field: first message}, with plain wording."""
    errors: dict[str, str] = {}
    for err in exc.errors():
        field = str(err["loc"][0]) if err.get("loc") else "form"
        msg = err.get("msg", "Invalid value")
        # pydantic prefixes custom messages with "Value error, "; users don't need that.
        msg = msg.removeprefix("Value error, ")
        # cross-field checks name their field: "preferred_end: The end date is before ..."
        head, sep, rest = msg.partition(": ")
        if field == "form" and sep and head.isidentifier():
            field, msg = head, rest
        if err.get("type") in ("int_parsing", "date_from_datetime_parsing", "date_parsing", "missing"):
            msg = {"int_parsing": "Enter a whole number", "missing": "Required"}.get(err["type"], "Enter a valid date")
        errors.setdefault(field, msg[0].upper() + msg[1:] if msg else "Invalid value")
    return errors
