"""The dashboard computed straight from the raw rows, without rollups: the reference the tests compare the rollups
against, and the benchmark's baseline (what every dashboard would cost without them).

Each number is the definition in the glossary written as one query over the period's raw rows (ledger, orders and
their events, requests, quotes, accounts); the views are assembled by the same code as the real dashboard
(`metrics.build_dashboard`), so the two can only differ in their numbers.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from backend.analytics import sources as S
from backend.analytics.metrics import Cohorts, Funnel, Totals, active_pros, active_users, build_dashboard, dialect_of
from backend.analytics.rollups import midnight
from backend.analytics.views import Dashboard, Period
from backend.db import Database

t, e, a = S.ledger_transaction, S.ledger_entry, S.ledger_account
o, r, ev, q, u = S.service_order, S.service_request, S.order_event, S.quote, S.user_account


def _within(column: sa.ColumnElement, start: date, end: date) -> sa.ColumnElement:
    return sa.and_(column >= midnight(start), column < midnight(end + timedelta(days=1)))


def _order_category(category_id: int | None) -> list[sa.ColumnElement]:
    return [] if category_id is None else [sa.func.coalesce(r.c.category_id, 0) == category_id]


class RawFacts:
    def totals(self, session: Session, tenant_id: int, periods: Sequence[Period],
               category_id: int | None) -> list[Totals]:
        return [self._totals(session, tenant_id, period, category_id) for period in periods]

    def _totals(self, session: Session, tenant_id: int, period: Period, category_id: int | None) -> Totals:
        totals = Totals()
        in_period = lambda column: _within(column, period.start, period.end)  # noqa: E731
        orders = lambda table: table.outerjoin(o, o.c.id == table.c.order_id).outerjoin(  # noqa: E731
            r, r.c.id == o.c.request_id)
        escrow = a.c.kind == S.ESCROW
        for currency, gmv, fees, refunds, paid in session.execute(
                sa.select(e.c.currency,
                          sa.func.sum(sa.case((sa.and_(t.c.kind == S.RELEASE, escrow), -e.c.amount_minor), else_=0)),
                          sa.func.sum(sa.case((a.c.kind == S.PLATFORM_FEES, e.c.amount_minor), else_=0)),
                          sa.func.sum(sa.case((sa.and_(a.c.kind == S.REFUNDS, e.c.amount_minor > 0),
                                               e.c.amount_minor), else_=0)),
                          sa.func.sum(sa.case((sa.and_(t.c.kind == S.HOLD, escrow, e.c.amount_minor > 0),
                                               e.c.amount_minor), else_=0)))
                .select_from(orders(t).join(e, e.c.transaction_id == t.c.id).join(a, a.c.id == e.c.account_id))
                .where(t.c.tenant_id == tenant_id, in_period(t.c.created_at), *_order_category(category_id))
                .group_by(e.c.currency)):
            for metric, value in (("gmv", gmv), ("fees", fees), ("refunds", refunds), ("paid", paid)):
                totals.add(metric, currency, value)
        for state, count in session.execute(
                sa.select(ev.c.to_state, sa.func.count()).select_from(orders(ev))
                .where(ev.c.tenant_id == tenant_id, ev.c.from_state != ev.c.to_state, in_period(ev.c.at),
                       *_order_category(category_id))
                .group_by(ev.c.to_state)):
            totals.add(f"to_{state}", "", count)
        totals.add("disputes_opened", "", totals.count(f"to_{S.DISPUTED}"))
        order_rows = o.outerjoin(r, r.c.id == o.c.request_id)
        count = lambda query: session.execute(query).scalar_one()  # noqa: E731
        totals.add("orders_created", "", count(
            sa.select(sa.func.count()).select_from(order_rows)
            .where(o.c.tenant_id == tenant_id, in_period(o.c.created_at), *_order_category(category_id))))
        totals.add("quotes_accepted", "", count(
            sa.select(sa.func.count()).select_from(order_rows.join(q, q.c.id == o.c.quote_id))
            .where(o.c.tenant_id == tenant_id, q.c.status == S.QUOTE_ACCEPTED, in_period(o.c.created_at),
                   *_order_category(category_id))))
        of_category = [] if category_id is None else [r.c.category_id == category_id]
        totals.add("requests_posted", "", count(
            sa.select(sa.func.count()).where(r.c.tenant_id == tenant_id, in_period(r.c.created_at), *of_category)))
        totals.add("quotes_sent", "", count(
            sa.select(sa.func.count()).select_from(q.join(r, r.c.id == q.c.request_id))
            .where(q.c.tenant_id == tenant_id, in_period(q.c.created_at), *of_category)))
        for role, n in session.execute(
                sa.select(u.c.role, sa.func.count())
                .where(u.c.tenant_id == tenant_id, u.c.role.in_([S.CLIENT, S.PROFESSIONAL]),
                       in_period(u.c.created_at)).group_by(u.c.role)):
            totals.add(f"signups_{role}", "", n)
        return totals

    def daily(self, session: Session, tenant_id: int, period: Period, category_id: int | None,
              currency: str) -> dict[date, dict[str, int]]:
        dialect = dialect_of(session)
        days: dict[date, dict[str, int]] = {}

        def put(rows, metric: str | None = None) -> None:
            for row in rows:
                day, name, value = (row[0], metric, row[1]) if metric else row
                days.setdefault(day, {})[name] = days.get(day, {}).get(name, 0) + int(value or 0)

        day = S.day_of(dialect, t.c.created_at)
        for metric, condition in (("gmv", sa.and_(t.c.kind == S.RELEASE, a.c.kind == S.ESCROW)),
                                  ("fees", a.c.kind == S.PLATFORM_FEES)):
            amount = -e.c.amount_minor if metric == "gmv" else e.c.amount_minor
            put(session.execute(
                sa.select(day, sa.func.sum(amount))
                .select_from(t.join(e, e.c.transaction_id == t.c.id).join(a, a.c.id == e.c.account_id)
                             .outerjoin(o, o.c.id == t.c.order_id).outerjoin(r, r.c.id == o.c.request_id))
                .where(t.c.tenant_id == tenant_id, e.c.currency == currency, condition,
                       _within(t.c.created_at, period.start, period.end), *_order_category(category_id))
                .group_by(day)), metric)
        day = S.day_of(dialect, o.c.created_at)
        put(session.execute(
            sa.select(day, sa.func.count()).select_from(o.outerjoin(r, r.c.id == o.c.request_id))
            .where(o.c.tenant_id == tenant_id, _within(o.c.created_at, period.start, period.end),
                   *_order_category(category_id)).group_by(day)), "orders_created")
        day = S.day_of(dialect, u.c.created_at)
        put(session.execute(
            sa.select(day, sa.literal_column("'signups_'", sa.String) + u.c.role, sa.func.count())
            .where(u.c.tenant_id == tenant_id, u.c.role.in_([S.CLIENT, S.PROFESSIONAL]),
                   _within(u.c.created_at, period.start, period.end)).group_by(day, u.c.role)))
        return days

    def escrow_held(self, session: Session, tenant_id: int, category_id: int | None) -> dict[str, int]:
        rows = session.execute(
            sa.select(e.c.currency, sa.func.sum(e.c.amount_minor))
            .select_from(e.join(a, a.c.id == e.c.account_id).join(t, t.c.id == e.c.transaction_id)
                         .outerjoin(o, o.c.id == t.c.order_id).outerjoin(r, r.c.id == o.c.request_id))
            .where(e.c.tenant_id == tenant_id, a.c.kind == S.ESCROW, *_order_category(category_id))
            .group_by(e.c.currency))
        return {currency: int(value) for currency, value in rows}

    def funnel(self, session: Session, tenant_id: int, period: Period, category_id: int | None) -> Funnel:
        quoted = sa.exists().where(q.c.request_id == r.c.id)
        hired = sa.exists().where(o.c.request_id == r.c.id)

        def reached(state: str) -> sa.Exists:
            return sa.exists().where(o.c.request_id == r.c.id, ev.c.order_id == o.c.id, ev.c.to_state == state,
                                     ev.c.from_state != ev.c.to_state)

        flag = lambda condition: sa.func.sum(sa.case((condition, 1), else_=0))  # noqa: E731
        where = [r.c.tenant_id == tenant_id, _within(r.c.created_at, period.start, period.end)]
        if category_id is not None:
            where.append(r.c.category_id == category_id)
        rows = session.execute(
            sa.select(r.c.category_id, sa.func.count(), flag(quoted), flag(hired), flag(reached(S.PAID)),
                      flag(reached(S.COMPLETED)))
            .where(*where).group_by(r.c.category_id))
        return {row[0]: tuple(int(v or 0) for v in row[1:]) for row in rows}

    def median_first_quote_seconds(self, session: Session, tenant_id: int, periods: Sequence[Period],
                                   category_id: int | None) -> list[float | None]:
        return [self._median_first_quote(session, tenant_id, period, category_id) for period in periods]

    def _median_first_quote(self, session: Session, tenant_id: int, period: Period,
                            category_id: int | None) -> float | None:
        first = (sa.select(q.c.request_id, sa.func.min(q.c.created_at).label("at"))
                 .where(q.c.tenant_id == tenant_id).group_by(q.c.request_id).subquery())
        where = [r.c.tenant_id == tenant_id, _within(r.c.created_at, period.start, period.end)]
        if category_id is not None:
            where.append(r.c.category_id == category_id)
        rows = session.execute(sa.select(first.c.at, r.c.created_at)
                               .select_from(r.join(first, first.c.request_id == r.c.id)).where(*where)).all()
        if not rows:
            return None
        return float(statistics.median(round((quoted - posted).total_seconds()) for quoted, posted in rows))

    def _paid(self, tenant_id: int, end: date) -> sa.Select:
        """(client, order, day it was paid) up to `end`."""
        return (sa.select(o.c.client_id, ev.c.order_id, ev.c.at).select_from(ev.join(o, o.c.id == ev.c.order_id))
                .where(ev.c.tenant_id == tenant_id, ev.c.to_state == S.PAID, ev.c.from_state != ev.c.to_state,
                       ev.c.at < midnight(end + timedelta(days=1))))

    def repeat_clients(self, session: Session, tenant_id: int, periods: Sequence[Period]) -> list[tuple[int, int]]:
        return [self._repeat_clients(session, tenant_id, period) for period in periods]

    def _repeat_clients(self, session: Session, tenant_id: int, period: Period) -> tuple[int, int]:
        paid = self._paid(tenant_id, period.end).subquery()
        payers = set(session.execute(sa.select(paid.c.client_id).where(paid.c.at >= midnight(period.start)))
                     .scalars())
        orders = dict(session.execute(sa.select(paid.c.client_id, sa.func.count(sa.distinct(paid.c.order_id)))
                                      .group_by(paid.c.client_id)).all())
        return len(payers), sum(1 for client in payers if orders.get(client, 0) >= 2)

    def cohorts(self, session: Session, tenant_id: int, first: date, end: date) -> Cohorts:
        joined = [u.c.tenant_id == tenant_id, u.c.role == S.CLIENT, _within(u.c.created_at, first, end)]
        sizes: dict[int, int] = {}
        signups = {}
        for client_id, created_at in session.execute(sa.select(u.c.id, u.c.created_at).where(*joined)):
            key = created_at.year * 12 + created_at.month - 1
            sizes[key] = sizes.get(key, 0) + 1
            signups[client_id] = key
        paid = self._paid(tenant_id, end).where(ev.c.at >= midnight(first))
        months = {(client, at.year * 12 + at.month - 1) for client, _, at in session.execute(paid)
                  if client in signups}
        active: dict[tuple[int, int], int] = {}
        for client, month in months:
            active[(signups[client], month)] = active.get((signups[client], month), 0) + 1
        return sizes, active

    def active_users(self, session: Session, tenant_id: int, ends: Sequence[date]) -> list[dict[str, int]]:
        return [active_users(session, tenant_id, end) for end in ends]

    def active_pros(self, tenant_id: int, end: date) -> sa.Select:
        return active_pros(tenant_id, end)


def naive_dashboard(db: Database, tenant_id: int, currency: str, period: Period, category_id: int | None,
                    now: datetime) -> Dashboard:
    """The dashboard as `AnalyticsService.dashboard` shows it, computed from the raw rows (no rollups, no cache,
    no checks: tests and the benchmark only)."""
    with db.tenant_session(tenant_id) as session:
        return build_dashboard(RawFacts(), session, tenant_id, currency, period, category_id, now)


__all__ = ["RawFacts", "naive_dashboard"]
