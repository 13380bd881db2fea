"""Phone numbers: parsing to E.164 (and refusing what a text message cannot reach), masking, the SMS codes."""

from __future__ import annotations

import pytest

from backend.accounts.phones import (
    CodeHasher, PhoneError, mask_phone, new_code, normalize_code, number_bucket, parse_phone,
)


@pytest.mark.parametrize("raw, region, e164", [
    ("(415) 555-0123", "US", "+14155550123"),  # US numbers do not say mobile or landline: accepted
    ("415.555.0123", "us", "+14155550123"),
    ("+1 415 555 0123", "GB", "+14155550123"),  # a "+" number keeps its own country whatever the hint
    ("+44 7400 123456", "US", "+447400123456"),  # a UK mobile
    ("07400 123456", "GB", "+447400123456"),  # the same, typed the national way
    ("+33 6 12 34 56 78", "US", "+33612345678"),
    ("  +49 1512 3456789 ", "US", "+4915123456789"),
])
def test_valid_mobile_numbers_are_stored_as_e164(raw, region, e164):
    assert parse_phone(raw, region) == e164


@pytest.mark.parametrize("raw, region, message", [
    ("", "US", "Enter your mobile number"),
    ("call me maybe", "US", "Enter a phone number"),
    ("12", "US", "not a valid phone number"),
    ("+1 415 555 01234", "US", "not a valid phone number"),  # one digit too many
    ("+44 7700 900123", "US", "not a valid phone number"),  # Ofcom's range for drama: no phone has it
    ("+44 20 7946 0958", "US", "a landline"),
    ("020 7946 0018", "GB", "a landline"),
    ("+1 900 555 0123", "US", "a premium-rate number"),
    ("+1 800 555 0199", "US", "a toll-free number"),
    ("415 555 0123 ext 5", "US", "no extension"),
    ("4" * 41, "US", "too long"),
    ("4155550123", "XX", "Unknown country code"),
])
def test_numbers_a_text_cannot_reach_are_refused_with_the_reason(raw, region, message):
    with pytest.raises(PhoneError, match=message):
        parse_phone(raw, region)


@pytest.mark.parametrize("e164, masked", [
    ("+14155550123", "+1 ••• ••• 0123"),
    ("+447400123456", "+44 •••• ••3456"),
    ("+33612345678", "+33 • •• •• 56 78"),
    ("", ""),
])
def test_masking_keeps_the_country_code_and_the_last_four_digits(e164, masked):
    assert mask_phone(e164) == masked


def test_codes_are_six_digits_and_vary():
    codes = {new_code() for _ in range(200)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 190  # a million possibilities: 200 draws almost never repeat


@pytest.mark.parametrize("typed, code", [
    ("123456", "123456"), (" 123 456 ", "123456"), ("123-456", "123456"), ("012345", "012345"),
    ("12345", None), ("1234567", None), ("12a456", None), ("١٢٣٤٥٦", None), ("", None),
])
def test_typed_codes_are_normalised(typed, code):
    assert normalize_code(typed) == code


def test_code_hashes_are_keyed_and_bound_to_tenant_user_and_number():
    hasher = CodeHasher("secret-one")
    stored = hasher.hash(1, 7, "+14155550123", "123456")
    assert len(stored) == 64 and "123456" not in stored
    assert hasher.matches(stored, 1, 7, "+14155550123", "123456")
    assert not hasher.matches(stored, 1, 7, "+14155550123", "123457")
    assert not hasher.matches(stored, 2, 7, "+14155550123", "123456")  # another tenant
    assert not hasher.matches(stored, 1, 8, "+14155550123", "123456")  # another user
    assert not hasher.matches(stored, 1, 7, "+14155550124", "123456")  # another number
    assert not CodeHasher("secret-two").matches(stored, 1, 7, "+14155550123", "123456")  # another SECRET_KEY


def test_the_throttling_key_never_shows_the_number():
    bucket = number_bucket("secret", "+14155550123")
    assert bucket.startswith("tel:") and "4155550123" not in bucket and len(bucket) <= 64
    assert bucket == number_bucket("secret", "+14155550123") != number_bucket("secret", "+14155550124")
