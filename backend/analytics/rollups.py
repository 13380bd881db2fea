"""Keeping the rollup tables in step with the raw rows, incrementally.

A watermark per (tenant, source table) holds the last source row id folded in. `refresh` reads the rows after it,
collects the UTC days (and service requests) they touch, and recomputes exactly those from the raw rows, set-based
(DELETE, then INSERT ... SELECT ... GROUP BY over those days; then the running paid-order totals of the clients whose
paying days changed), then moves the watermarks to the source's max ids:
all in one transaction that first takes the tenant's watermark rows (insert-if-absent, then FOR UPDATE on
PostgreSQL; SQLite's single writer lock does the same), so two refreshes never interleave. Recomputing a day is
idempotent: running a refresh twice, or over days that did not change, gives the same rows.

Ids are handed out before commit, so a slow transaction can commit a row whose id is below a watermark another
refresh already set. Each refresh therefore also re-reads the rows whose own time is within LATE_COMMIT_WINDOW of
now (the timers refresh every 5 minutes, well inside it), and moves the tenant's `generation` on whenever it
recomputed anything: the data version the dashboard's cache keys on is (source max ids, generation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from backend.analytics import sources as S
from backend.analytics.models import (AnalyticsActorDay, AnalyticsClientDay, AnalyticsDaily, AnalyticsFunnelDay,
                                      AnalyticsRequest, AnalyticsWatermark)
from backend.db import Database, utcnow

daily = AnalyticsDaily.__table__
requests = AnalyticsRequest.__table__
funnel_days = AnalyticsFunnelDay.__table__
client_days = AnalyticsClientDay.__table__
actor_days = AnalyticsActorDay.__table__
watermarks = AnalyticsWatermark.__table__

GENERATION = "generation"  # the watermark row whose last_id counts the refreshes that changed something
LATE_COMMIT_WINDOW = timedelta(minutes=15)
MERGE_GAP_DAYS = 7  # days this close are recomputed as one range (with the days between)
MAX_RANGES = 16  # more scattered than that: one range from the first to the last
MAX_LISTED_CLIENTS = 1000  # more clients whose paying days changed: recompute every client's running totals

DayRange = tuple[date, date]  # inclusive
TimeFilter = Callable[[sa.ColumnElement], sa.ColumnElement]

ZERO = sa.literal_column("0", sa.Integer)
NO_CURRENCY = sa.literal_column("''", sa.String)


def _text(value: str) -> sa.ColumnElement:
    """An SQL string constant inlined (never user text): constants in GROUP BY expressions must be the same SQL in
    the select list, which two bound parameters are not on PostgreSQL."""
    assert value.replace("_", "").isalnum()
    return sa.literal_column(f"'{value}'", sa.String)


def _int(value: int) -> sa.ColumnElement:
    return sa.literal_column(str(int(value)), sa.Integer)


def midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def day_ranges(days: set[date]) -> list[DayRange]:
    """Days as few inclusive ranges: neighbours within MERGE_GAP_DAYS merge (recomputing a day is idempotent, so
    the days between cost only time), and a very scattered set becomes one range."""
    if not days:
        return []
    ordered = sorted(days)
    ranges = [[ordered[0], ordered[0]]]
    for day in ordered[1:]:
        if (day - ranges[-1][1]).days <= MERGE_GAP_DAYS:
            ranges[-1][1] = day
        else:
            ranges.append([day, day])
    if len(ranges) > MAX_RANGES:
        return [(ordered[0], ordered[-1])]
    return [(a, b) for a, b in ranges]


def in_ranges(column: sa.ColumnElement, ranges: list[DayRange]) -> sa.ColumnElement:
    """A DATE column within the ranges."""
    return sa.or_(*(column.between(a, b) for a, b in ranges))


def during(ranges: list[DayRange]) -> TimeFilter:
    """A timestamp column within the ranges' UTC days (a range condition each, so the time indexes serve)."""
    return lambda column: sa.or_(*(sa.and_(column >= midnight(a), column < midnight(b + timedelta(days=1)))
                                   for a, b in ranges))


def always(column: sa.ColumnElement) -> sa.ColumnElement:
    return sa.true()


@dataclass(frozen=True)
class Version:
    """What the rollups of a tenant reflect: the source max ids folded in and the refresh generation."""

    marks: tuple[int, ...]
    generation: int

    def key(self) -> str:
        return "-".join(map(str, self.marks)) + f"g{self.generation}"


class Rollups:
    def __init__(self, db: Database, clock: Callable[[], datetime] = utcnow):
        self.db = db
        self.clock = clock

    # ------------------------------------------------------------------ versions

    @staticmethod
    def source_tops(session: Session, tenant_id: int) -> dict[str, int]:
        """The max id of each watched source for the tenant, in one round trip ((tenant_id, id) indexes)."""
        tops = [sa.select(sa.func.coalesce(sa.func.max(table.c.id), 0)).where(table.c.tenant_id == tenant_id)
                .scalar_subquery().label(name) for name, (table, _) in S.WATCHED.items()]
        row = session.execute(sa.select(*tops)).one()
        return {name: int(row._mapping[name]) for name in S.WATCHED}

    @staticmethod
    def marks(session: Session, tenant_id: int, *, lock: bool = False) -> dict[str, int]:
        query = sa.select(watermarks.c.source, watermarks.c.last_id).where(watermarks.c.tenant_id == tenant_id)
        if lock:
            query = query.with_for_update()
        return {source: int(last_id) for source, last_id in session.execute(query)}

    @staticmethod
    def _version(marks: dict[str, int]) -> Version:
        return Version(tuple(marks.get(name, 0) for name in S.WATCHED), marks.get(GENERATION, 0))

    def fresh_version(self, tenant_id: int) -> Version:
        """The tenant's data version, refreshing first when a source has rows after its watermark (so a new
        ledger posting or order event shows at once)."""
        with self.db.tenant_session(tenant_id) as session:
            tops, marks = self.source_tops(session, tenant_id), self.marks(session, tenant_id)
        if any(top > marks.get(name, 0) for name, top in tops.items()):
            _, marks = self._refresh(tenant_id, rebuild=False)
        return self._version(marks)

    # ------------------------------------------------------------------ refresh / rebuild

    def refresh(self, tenant_id: int) -> int:
        """Fold in what happened since the last refresh; returns how many days were recomputed."""
        return self._refresh(tenant_id, rebuild=False)[0]

    def rebuild(self, tenant_id: int) -> int:
        """Drop the tenant's rollups and recompute everything; returns how many days hold numbers."""
        return self._refresh(tenant_id, rebuild=True)[0]

    def _refresh(self, tenant_id: int, *, rebuild: bool) -> tuple[int, dict[str, int]]:
        now = self.clock()
        with self.db.tenant_session(tenant_id) as session:
            dialect = session.get_bind().dialect.name
            self._take(session, dialect, tenant_id, now)
            marks = self.marks(session, tenant_id, lock=True)
            tops = self.source_tops(session, tenant_id)
            if rebuild or not any(marks[name] for name in S.WATCHED):
                # everything (a rebuild, or the first refresh of a tenant: all its rows are new)
                for table in (daily, client_days, actor_days, requests, funnel_days):
                    session.execute(sa.delete(table).where(table.c.tenant_id == tenant_id))
                touched = any(tops.values())
                if touched:
                    self._insert_days(session, dialect, tenant_id, always)
                    self._paid_to_date(session, tenant_id, None)
                    self._insert_requests(session, dialect, tenant_id, None)
                days = session.execute(sa.select(sa.func.count(sa.distinct(daily.c.day)))
                                       .where(daily.c.tenant_id == tenant_id)).scalar_one()
            else:
                cutoff = now - LATE_COMMIT_WINDOW
                ranges = day_ranges(self._moved_days(session, dialect, tenant_id, marks, cutoff))
                touched = bool(ranges)
                if touched:
                    payers = self._payers(session, tenant_id, ranges)  # before and after: a day may lose a payer
                    for table in (daily, client_days, actor_days):
                        session.execute(sa.delete(table).where(table.c.tenant_id == tenant_id,
                                                               in_ranges(table.c.day, ranges)))
                    self._insert_days(session, dialect, tenant_id, during(ranges))
                    payers |= self._payers(session, tenant_id, ranges)
                    self._paid_to_date(session, tenant_id, None if len(payers) > MAX_LISTED_CLIENTS else payers)
                    self._insert_requests(session, dialect, tenant_id,
                                          self._moved_requests(tenant_id, marks, cutoff))
                days = sum((b - a).days + 1 for a, b in ranges)
            for name, top in tops.items():
                marks[name] = max(top, marks[name])
                session.execute(sa.update(watermarks)
                                .where(watermarks.c.tenant_id == tenant_id, watermarks.c.source == name)
                                .values(last_id=marks[name], refreshed_at=now))
            if touched:
                marks[GENERATION] += 1
                session.execute(sa.update(watermarks)
                                .where(watermarks.c.tenant_id == tenant_id, watermarks.c.source == GENERATION)
                                .values(last_id=marks[GENERATION], refreshed_at=now))
            return int(days), marks

    @staticmethod
    def _take(session: Session, dialect: str, tenant_id: int, now: datetime) -> None:
        """Make sure the tenant's watermark rows exist (a write: on SQLite it takes the database's writer lock
        before anything is read); the caller then locks them FOR UPDATE."""
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        rows = [{"tenant_id": tenant_id, "source": name, "last_id": 0, "refreshed_at": now}
                for name in (*S.WATCHED, GENERATION)]
        session.execute(insert(watermarks).values(rows)
                        .on_conflict_do_nothing(index_elements=["tenant_id", "source"]))

    @staticmethod
    def _moved(name: str, marks: dict[str, int], cutoff: datetime) -> sa.ColumnElement:
        table, at = S.WATCHED[name]
        return sa.or_(table.c.id > marks[name], at >= cutoff)

    def _moved_days(self, session: Session, dialect: str, tenant_id: int, marks: dict[str, int],
                    cutoff: datetime) -> set[date]:
        days: set[date] = set()
        for name, (table, at) in S.WATCHED.items():
            query = (sa.select(S.day_of(dialect, at)).distinct()
                     .where(table.c.tenant_id == tenant_id, self._moved(name, marks, cutoff)))
            days.update(session.execute(query).scalars())
        return days

    def _moved_requests(self, tenant_id: int, marks: dict[str, int], cutoff: datetime) -> sa.CompoundSelect:
        """The requests whose funnel row may have changed: new requests, new quotes, new orders, and orders
        reaching paid or completed."""
        r, q, o, e = S.service_request, S.quote, S.service_order, S.order_event
        return sa.union(
            sa.select(r.c.id).where(r.c.tenant_id == tenant_id, self._moved("service_request", marks, cutoff)),
            sa.select(q.c.request_id).where(q.c.tenant_id == tenant_id, self._moved("quote", marks, cutoff)),
            sa.select(o.c.request_id).where(o.c.tenant_id == tenant_id, o.c.request_id.isnot(None),
                                            self._moved("service_order", marks, cutoff)),
            sa.select(o.c.request_id).select_from(e.join(o, o.c.id == e.c.order_id))
            .where(e.c.tenant_id == tenant_id, o.c.request_id.isnot(None), e.c.to_state.in_([S.PAID, S.COMPLETED]),
                   self._moved("order_event", marks, cutoff)))

    # ------------------------------------------------------------------ the recomputations

    def _insert_days(self, session: Session, dialect: str, tenant_id: int, at: TimeFilter) -> None:
        """analytics_daily, analytics_client_day (running totals still to do) and analytics_actor_day for the days
        `at` selects (already deleted)."""
        columns = ["tenant_id", "day", "metric", "category_id", "currency", "value"]
        for select in daily_selects(dialect, tenant_id, at):
            session.execute(sa.insert(daily).from_select(columns, select))
        session.execute(sa.insert(client_days).from_select(
            ["tenant_id", "client_id", "day", "paid_orders", "signup_day", "paid_to_date", "month", "signup_month",
             "first_in_month"],
            client_day_select(dialect, tenant_id, at)))
        session.execute(sa.insert(actor_days).from_select(["tenant_id", "day", "role", "user_id"],
                                                          actor_day_select(dialect, tenant_id, at)))

    @staticmethod
    def _payers(session: Session, tenant_id: int, ranges: list[DayRange]) -> set[int]:
        c = client_days.c
        return set(session.execute(sa.select(c.client_id).distinct()
                                   .where(c.tenant_id == tenant_id, in_ranges(c.day, ranges))).scalars())

    @staticmethod
    def _paid_to_date(session: Session, tenant_id: int, clients: set[int] | None) -> None:
        """Each row's paid orders on its day and every day before, and whether it is the client's first paying day
        of its month, for these clients (None: all of them)."""
        c = client_days.c
        where = [c.tenant_id == tenant_id]
        if clients is not None:
            if not clients:
                return
            where.append(c.client_id.in_(sorted(clients)))
        running = (sa.select(c.id, sa.func.sum(c.paid_orders).over(partition_by=c.client_id, order_by=c.day)
                             .label("total"),
                             (sa.func.row_number().over(partition_by=(c.client_id, c.month), order_by=c.day) == 1)
                             .label("first"))
                   .where(*where).subquery("running"))
        session.execute(sa.update(client_days)
                        .where(c.id == running.c.id, sa.or_(c.paid_to_date != running.c.total,
                                                            c.first_in_month != running.c.first))
                        .values(paid_to_date=running.c.total, first_in_month=running.c.first))

    @staticmethod
    def _insert_requests(session: Session, dialect: str, tenant_id: int, which: sa.CompoundSelect | None) -> None:
        """analytics_request rows of the requests `which` names (all when None), then the funnel days they fall on
        (a request's creation day never changes, so those are the only funnel days that can have moved)."""
        r = requests.c
        if which is not None:
            session.execute(sa.delete(requests).where(r.tenant_id == tenant_id, r.request_id.in_(which)))
        session.execute(sa.insert(requests).from_select(
            ["tenant_id", "request_id", "created_day", "category_id", "first_quote_seconds", "quoted", "hired",
             "paid", "completed"], request_select(dialect, tenant_id, which)))
        where = [r.tenant_id == tenant_id]
        if which is not None:
            days = session.execute(sa.select(r.created_day).distinct()
                                   .where(r.tenant_id == tenant_id, r.request_id.in_(which))).scalars().all()
            if not days:
                return
            session.execute(sa.delete(funnel_days).where(funnel_days.c.tenant_id == tenant_id,
                                                         funnel_days.c.day.in_(days)))
            where.append(r.created_day.in_(days))
        flag = lambda column: sa.func.sum(sa.case((column, 1), else_=0))  # noqa: E731
        session.execute(sa.insert(funnel_days).from_select(
            ["tenant_id", "day", "category_id", "requests", "quoted", "hired", "paid", "completed"],
            sa.select(_int(tenant_id), r.created_day, r.category_id, sa.func.count(), flag(r.quoted), flag(r.hired),
                      flag(r.paid), flag(r.completed))
            .where(*where).group_by(r.created_day, r.category_id)))


# ---------------------------------------------------------------------------------------------------- the SQL

def _order_category(r: sa.TableClause) -> sa.ColumnElement:
    """The category of an order: its request's; 0 for a direct booking (no request)."""
    return sa.func.coalesce(r.c.category_id, ZERO)


def daily_selects(dialect: str, tenant_id: int, at: TimeFilter) -> list[sa.Select | sa.CompoundSelect]:
    """Each select yields analytics_daily rows (tenant_id, day, metric, category_id, currency, value) for the
    facts whose time `at` accepts, one GROUP BY per source."""
    t, e, a = S.ledger_transaction, S.ledger_entry, S.ledger_account
    o, r, ev, q, u = S.service_order, S.service_request, S.order_event, S.quote, S.user_account
    tenant = _int(tenant_id)
    day = lambda column: S.day_of(dialect, column)  # noqa: E731
    category = _order_category(r)

    # money, per currency, from the ledger: one pass, unpivoted
    escrow = a.c.kind == S.ESCROW
    money = (sa.select(
        day(t.c.created_at).label("day"), category.label("category_id"), e.c.currency.label("currency"),
        sa.func.sum(sa.case((sa.and_(t.c.kind == S.RELEASE, escrow), -e.c.amount_minor), else_=ZERO)).label("gmv"),
        sa.func.sum(sa.case((a.c.kind == S.PLATFORM_FEES, e.c.amount_minor), else_=ZERO)).label("fees"),
        sa.func.sum(sa.case((sa.and_(a.c.kind == S.REFUNDS, e.c.amount_minor > 0), e.c.amount_minor),
                            else_=ZERO)).label("refunds"),
        sa.func.sum(sa.case((sa.and_(t.c.kind == S.HOLD, escrow, e.c.amount_minor > 0), e.c.amount_minor),
                            else_=ZERO)).label("paid"))
        .select_from(t.join(e, e.c.transaction_id == t.c.id).join(a, a.c.id == e.c.account_id)
                     .outerjoin(o, o.c.id == t.c.order_id).outerjoin(r, r.c.id == o.c.request_id))
        .where(t.c.tenant_id == tenant_id, e.c.tenant_id == tenant_id, at(t.c.created_at))
        .group_by(day(t.c.created_at), category, e.c.currency)).cte("money")
    money_rows = sa.union_all(*(
        sa.select(tenant, money.c.day, _text(metric), money.c.category_id, money.c.currency, money.c[metric])
        .where(money.c[metric] != 0) for metric in ("gmv", "fees", "refunds", "paid")))

    refunded = (sa.select(tenant, day(t.c.created_at), _text("refunded_orders"), category, NO_CURRENCY,
                          sa.func.count(sa.distinct(t.c.order_id)))
                .select_from(t.outerjoin(o, o.c.id == t.c.order_id).outerjoin(r, r.c.id == o.c.request_id))
                .where(t.c.tenant_id == tenant_id, t.c.kind == S.REFUND, t.c.order_id.isnot(None),
                       at(t.c.created_at))
                .group_by(day(t.c.created_at), category))

    # order events: transitions only (audit rows such as a reminder or a partial refund keep the state)
    transitions = (ev.join(o, o.c.id == ev.c.order_id).outerjoin(r, r.c.id == o.c.request_id))
    moved = sa.and_(ev.c.tenant_id == tenant_id, ev.c.from_state != ev.c.to_state, at(ev.c.at))
    to_state = (sa.select(tenant, day(ev.c.at), _text("to_") + ev.c.to_state, category, NO_CURRENCY,
                          sa.func.count())
                .select_from(transitions).where(moved).group_by(day(ev.c.at), ev.c.to_state, category))
    disputes = (sa.select(tenant, day(ev.c.at), _text("disputes_opened"), category, NO_CURRENCY, sa.func.count())
                .select_from(transitions).where(moved, ev.c.to_state == S.DISPUTED)
                .group_by(day(ev.c.at), category))

    orders = o.outerjoin(r, r.c.id == o.c.request_id)
    created = (sa.select(tenant, day(o.c.created_at), _text("orders_created"), category, NO_CURRENCY,
                         sa.func.count())
               .select_from(orders).where(o.c.tenant_id == tenant_id, at(o.c.created_at))
               .group_by(day(o.c.created_at), category))
    accepted = (sa.select(tenant, day(o.c.created_at), _text("quotes_accepted"), category, NO_CURRENCY,
                          sa.func.count())
                .select_from(orders.join(q, q.c.id == o.c.quote_id))
                .where(o.c.tenant_id == tenant_id, q.c.status == S.QUOTE_ACCEPTED, at(o.c.created_at))
                .group_by(day(o.c.created_at), category))
    posted = (sa.select(tenant, day(r.c.created_at), _text("requests_posted"), r.c.category_id, NO_CURRENCY,
                        sa.func.count())
              .where(r.c.tenant_id == tenant_id, at(r.c.created_at))
              .group_by(day(r.c.created_at), r.c.category_id))
    sent = (sa.select(tenant, day(q.c.created_at), _text("quotes_sent"), r.c.category_id, NO_CURRENCY,
                      sa.func.count())
            .select_from(q.join(r, r.c.id == q.c.request_id))
            .where(q.c.tenant_id == tenant_id, at(q.c.created_at))
            .group_by(day(q.c.created_at), r.c.category_id))
    signups = (sa.select(tenant, day(u.c.created_at), _text("signups_") + u.c.role, ZERO, NO_CURRENCY,
                         sa.func.count())
               .where(u.c.tenant_id == tenant_id, u.c.role.in_([S.CLIENT, S.PROFESSIONAL]), at(u.c.created_at))
               .group_by(day(u.c.created_at), u.c.role))
    return [money_rows, refunded, to_state, disputes, created, accepted, posted, sent, signups]


def client_day_select(dialect: str, tenant_id: int, at: TimeFilter) -> sa.Select:
    """(tenant_id, client_id, day, paid_orders, signup_day, paid_to_date = 0, month, signup_month,
    first_in_month = false): the orders each client's payments took to `paid` that day, and the UTC day the client
    signed up (None if the payer is not a client account), with their month keys (`Rollups._paid_to_date` then sets
    the running totals and first days)."""
    ev, o, u = S.order_event, S.service_order, S.user_account
    day = S.day_of(dialect, ev.c.at)
    signup = S.day_of(dialect, u.c.created_at)
    month, signup_month = (S.month_key(dialect, ts, timestamp=True) for ts in (ev.c.at, u.c.created_at))
    return (sa.select(_int(tenant_id), o.c.client_id, day, sa.func.count(sa.distinct(ev.c.order_id)), signup, ZERO,
                      month, signup_month, sa.false())
            .select_from(ev.join(o, o.c.id == ev.c.order_id)
                         .outerjoin(u, sa.and_(u.c.id == o.c.client_id, u.c.tenant_id == tenant_id,
                                               u.c.role == S.CLIENT)))
            .where(ev.c.tenant_id == tenant_id, ev.c.to_state == S.PAID, ev.c.from_state != ev.c.to_state,
                   at(ev.c.at))
            .group_by(o.c.client_id, day, signup, month, signup_month))


def actor_day_select(dialect: str, tenant_id: int, at: TimeFilter) -> sa.Select:
    """(tenant_id, day, role, user_id): who acted on each day, as a client (posted a request, acted on an order)
    or a professional (sent a quote, acted on an order)."""
    r, q, ev = S.service_request, S.quote, S.order_event
    day = lambda column: S.day_of(dialect, column).label("day")  # noqa: E731
    acts = sa.union(
        sa.select(day(r.c.created_at), _text(S.CLIENT).label("role"), r.c.client_id.label("user_id"))
        .where(r.c.tenant_id == tenant_id, r.c.client_id.isnot(None), at(r.c.created_at)),
        sa.select(day(q.c.created_at), _text(S.PROFESSIONAL), q.c.pro_id)
        .where(q.c.tenant_id == tenant_id, q.c.pro_id.isnot(None), at(q.c.created_at)),
        sa.select(day(ev.c.at), ev.c.actor_role, ev.c.actor_id)
        .where(ev.c.tenant_id == tenant_id, ev.c.actor_role.in_([S.CLIENT, S.PROFESSIONAL]),
               ev.c.actor_id.isnot(None), at(ev.c.at))).subquery("acts")
    return sa.select(_int(tenant_id), acts.c.day, acts.c.role, acts.c.user_id)


def request_select(dialect: str, tenant_id: int, which: sa.CompoundSelect | None) -> sa.Select:
    """One analytics_request row per service request (all of the tenant's, or those `which` names)."""
    r, q, o, ev = S.service_request, S.quote, S.service_order, S.order_event
    first = (sa.select(q.c.request_id, sa.func.min(q.c.created_at).label("first_at"))
             .where(q.c.tenant_id == tenant_id).group_by(q.c.request_id))
    reached = (sa.select(ev.c.order_id,
                         sa.func.max(sa.case((ev.c.to_state == S.PAID, 1), else_=0)).label("paid"),
                         sa.func.max(sa.case((ev.c.to_state == S.COMPLETED, 1), else_=0)).label("completed"))
               .where(ev.c.tenant_id == tenant_id, ev.c.to_state.in_([S.PAID, S.COMPLETED]),
                      ev.c.from_state != ev.c.to_state)
               .group_by(ev.c.order_id))
    mine = [r.c.tenant_id == tenant_id]
    if which is not None:
        first = first.where(q.c.request_id.in_(which))
        reached = reached.where(ev.c.order_id.in_(
            sa.select(o.c.id).where(o.c.tenant_id == tenant_id, o.c.request_id.in_(which))))
        mine.append(r.c.id.in_(which))
    first, reached = first.subquery("first_quote"), reached.subquery("reached")
    return (sa.select(_int(tenant_id), r.c.id, S.day_of(dialect, r.c.created_at), r.c.category_id,
                      S.seconds_between(dialect, first.c.first_at, r.c.created_at),
                      first.c.first_at.isnot(None), o.c.id.isnot(None),
                      sa.func.coalesce(reached.c.paid, 0) == 1, sa.func.coalesce(reached.c.completed, 0) == 1)
            .select_from(r.outerjoin(first, first.c.request_id == r.c.id)
                         .outerjoin(o, sa.and_(o.c.request_id == r.c.id, o.c.tenant_id == tenant_id))
                         .outerjoin(reached, reached.c.order_id == o.c.id))
            .where(*mine))
