"""Analytics reads other services' tables through Core mirrors (backend/analytics/sources.py): every mirrored column
must exist in the models' metadata with a compatible type, so a renamed or retyped column fails here and not on a
dashboard. Plus the small pure parts: day ranges, periods, the in-process cache."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import SQLModel

import backend.tables  # noqa: F401  (every table in SQLModel.metadata)
from backend.analytics import LocalCache, Period, ValidationFailed
from backend.analytics import sources as S
from backend.analytics.rollups import MAX_RANGES, day_ranges


@pytest.mark.parametrize("mirror", S.MIRRORS, ids=lambda t: t.name)
def test_every_mirrored_column_exists_with_a_compatible_type(mirror):
    table = SQLModel.metadata.tables.get(mirror.name)
    assert table is not None, f"no table {mirror.name!r} in the metadata"
    for column in mirror.c:
        real = table.c.get(column.name)
        assert real is not None, f"{mirror.name}.{column.name} does not exist"
        assert real.type._type_affinity is column.type._type_affinity or (
            isinstance(real.type, sa.Integer) and isinstance(column.type, sa.Integer)), (
            f"{mirror.name}.{column.name}: mirrored as {column.type!r}, is {real.type!r}")


def test_the_watched_sources_are_mirrors_with_their_time_column():
    for name, (table, at) in S.WATCHED.items():
        assert table.name == name and at.table is table and table in S.MIRRORS


def test_the_ledger_and_order_vocabulary_analytics_reads_is_the_one_they_write():
    from backend.orders.models import OrderState, QuoteStatus, RequestStatus
    from backend.payments import ledger as L

    assert S.ORDER_STATES == tuple(OrderState)
    assert (S.REQUEST_OPEN, S.QUOTE_ACCEPTED) == (RequestStatus.OPEN, QuoteStatus.ACCEPTED)
    assert {L.escrow(1)[1], L.platform_fees()[1], L.refunds(1)[1]} == {S.ESCROW, S.PLATFORM_FEES, S.REFUNDS}


def test_day_ranges_merge_near_days_and_collapse_scattered_ones():
    d = date(2026, 6, 1)
    assert day_ranges(set()) == []
    assert day_ranges({d}) == [(d, d)]
    assert day_ranges({d, d + timedelta(days=7), d + timedelta(days=20)}) == [
        (d, d + timedelta(days=7)), (d + timedelta(days=20), d + timedelta(days=20))]
    scattered = {d + timedelta(days=10 * k) for k in range(MAX_RANGES + 1)}
    assert day_ranges(scattered) == [(min(scattered), max(scattered))]


def test_periods():
    today = date(2026, 6, 20)
    period = Period(date(2026, 6, 11), today)
    assert (period.days, period.previous(), period.label) == (10, Period(date(2026, 6, 1), date(2026, 6, 10)),
                                                              "Jun 11 – Jun 20, 2026")
    assert Period(date(2025, 12, 30), date(2026, 1, 2)).label == "Dec 30, 2025 – Jan 2, 2026"
    assert period.check(today) is period
    for bad, field in ((Period(today, today - timedelta(days=1)), "end"),
                       (Period(today, today + timedelta(days=2)), "end"),
                       (Period(today - timedelta(days=731), today), "start")):
        with pytest.raises(ValidationFailed) as exc:
            bad.check(today)
        assert list(exc.value.errors) == [field]
    with pytest.raises(ValidationFailed) as exc:
        Period.parse("yesterday", "")
    assert set(exc.value.errors) == {"start", "end"}


def test_local_cache_is_an_lru_with_expiry():
    now = [0.0]
    cache = LocalCache(max_entries=2, clock=lambda: now[0])
    cache.set("a", b"1", 10)
    cache.set("b", b"2", 10)
    assert cache.get("a") == b"1"  # a is now the most recent
    cache.set("c", b"3", 10)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (b"1", None, b"3")
    now[0] = 10.0
    assert cache.get("a") is None and len(cache) == 1
