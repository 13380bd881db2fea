"""Phone numbers: parsing to E.164 with `phonenumbers`, masking for display, and the one-time SMS codes.

Pure functions (no database): AccountService uses them to start and finish a phone verification.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from backend.crypto import derive_key

CODE_DIGITS = 6
CODE_TTL = timedelta(minutes=10)
MAX_TRIES = 5  # wrong codes; the fifth kills the code
SENDS_PER_WINDOW = 3  # codes per user, and per number, within SEND_WINDOW
SEND_WINDOW = timedelta(minutes=15)
MAX_INPUT = 40  # characters of a typed number we are willing to parse

# Numbers a text message reaches: mobiles, and the ranges (US, Canada, ...) where the number does not say.
TEXTABLE = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
_KIND_WORDS = {
    PhoneNumberType.FIXED_LINE: "a landline",
    PhoneNumberType.TOLL_FREE: "a toll-free number",
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.SHARED_COST: "a shared-cost number",
    PhoneNumberType.VOIP: "an internet (VoIP) number",
    PhoneNumberType.PERSONAL_NUMBER: "a personal forwarding number",
    PhoneNumberType.PAGER: "a pager number",
    PhoneNumberType.UAN: "a company number",
    PhoneNumberType.VOICEMAIL: "a voicemail number",
}


class PhoneError(ValueError):
    """The typed number cannot be used; str(exc) says why, in words for the user."""


def parse_phone(raw: str, region: str = "US") -> str:
    """The number as E.164 ("+14155550123"), or PhoneError. `region` (ISO 3166 code) reads numbers typed
    without a country code; one typed with "+" keeps its own country."""
    text = (raw or "").strip()
    if not text:
        raise PhoneError("Enter your mobile number.")
    if len(text) > MAX_INPUT:
        raise PhoneError("That is too long for a phone number.")
    region = (region or "US").strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise PhoneError(f"Unknown country code {region!r} for reading the number.")
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        raise PhoneError("Enter a phone number, e.g. +1 415 555 0123.") from None
    if number.extension:
        raise PhoneError("A mobile number has no extension: remove it.")
    if not phonenumbers.is_valid_number(number):
        raise PhoneError("This is not a valid phone number. Check the digits and the country code.")
    kind = phonenumbers.number_type(number)
    if kind not in TEXTABLE:
        what = _KIND_WORDS.get(kind, "not a mobile number")
        raise PhoneError(f"This looks like {what}: text messages need a mobile number.")
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def mask_phone(e164: str) -> str:
    """The number with all but its country code and last four digits hidden: "+1 ••• ••• 0123"
    (groups as the country writes them), for showing which phone a code went to."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return "••• " + e164[-4:]
    national = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    national = national.removeprefix(f"+{number.country_code}")
    groups = [g for g in re.split(r"\D+", national) if g]
    shown = 4  # the last four digits stay visible, wherever the groups split them
    masked: list[str] = []
    for group in reversed(groups):
        keep = min(shown, len(group))
        masked.append("•" * (len(group) - keep) + (group[len(group) - keep:] if keep else ""))
        shown -= keep
    return f"+{number.country_code} " + " ".join(reversed(masked))


def new_code() -> str:
    """Six random digits (from `secrets`), leading zeros kept."""
    return f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"


def normalize_code(raw: str) -> str | None:
    """The six digits the user typed (spaces and dashes ignored), or None when it is not six digits."""
    digits = re.sub(r"[\s-]", "", raw or "")
    return digits if len(digits) == CODE_DIGITS and digits.isascii() and digits.isdigit() else None


class CodeHasher:
    """HMAC-SHA256 of a code with a key derived from SECRET_KEY. The message names the tenant, user and number,
    so a stored hash says nothing about a code sent to anyone else; a leaked table without SECRET_KEY does not
    give the codes away (a plain hash of six digits would, in a million guesses)."""

    def __init__(self, secret_key: str):
        self._key = derive_key(secret_key, "phone-verification-code")

    def hash(self, tenant_id: int, user_id: int, e164: str, code: str) -> str:
        message = f"{tenant_id}:{user_id}:{e164}:{code}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def matches(self, stored: str, tenant_id: int, user_id: int, e164: str, code: str) -> bool:
        return hmac.compare_digest(stored, self.hash(tenant_id, user_id, e164, code))


def number_bucket(secret_key: str, e164: str) -> str:
    """The per-number throttling key kept in the (platform-wide) attempts table: a keyed hash, so that table
    never holds phone numbers in clear."""
    digest = hmac.new(derive_key(secret_key, "phone-throttle"), e164.encode(), hashlib.sha256).hexdigest()
    return f"tel:{digest[:40]}"


@dataclass(frozen=True)
class PhoneView:
    """The account's phone as its owner sees it (never the full number: a shared screen shows only the end)."""
    masked: str  # "+1 ••• ••• 0123"; "" = no number
    verified: bool
    code_pending: bool  # a code was texted to it and can still be entered
    texts_paused: bool = False  # the number replied STOP to our texts: none go to it until it is verified again
