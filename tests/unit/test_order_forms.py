"""The quote form's rules live in the backend: the default the page suggests is one the form accepts."""

from __future__ import annotations

from datetime import date

from backend.orders.forms import QUOTE_VALID_FOR, QuoteCreate, suggested_valid_until


def test_the_suggested_quote_validity_is_one_the_form_accepts():
    suggested = suggested_valid_until()
    assert suggested == date.today() + QUOTE_VALID_FOR
    form = QuoteCreate(price="100", message="I can do this next week.", duration_hours=2, valid_until=suggested)
    assert form.valid_until == suggested
