"""The dashboard's numbers: KPIs, orders by state, the daily series, the funnel, cohorts, supply and demand.

Where the numbers come from is a `Facts`: `RollupFacts` (here) reads the rollup tables, `naive.RawFacts` computes the
same numbers straight from the raw rows (the reference the tests and the benchmark compare against). What no rollup
holds is read live, over a bounded window: open requests and the professionals active in the last 30 days (supply and
demand), the categories. `build_dashboard` and `build_kpis`
assemble the views from either source, so the two can only differ in their numbers.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlmodel import Session

from backend.analytics import sources as S
from backend.analytics.rollups import actor_days, client_days, daily, funnel_days, midnight, requests
from backend.analytics.views import COHORT_MONTHS, STEPS, Dashboard, KpiValue, Period
from backend.money import format_money, minor_unit_exponent

SIGNUPS = ("signups_client", "signups_professional")
UNCATEGORISED = "Uncategorised (direct bookings)"
SUPPLY_DEMAND_ROWS = 50
ACTIVE_DAYS = (7, 30)


def dialect_of(session: Session) -> str:
    return session.get_bind().dialect.name


@dataclass
class Totals:
    """A period's sums: money per currency and metric (minor units), counts per metric."""

    money: dict[str, dict[str, int]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def amount(self, currency: str, metric: str) -> int:
        return self.money.get(currency, {}).get(metric, 0)

    def count(self, metric: str) -> int:
        return self.counts.get(metric, 0)

    def add(self, metric: str, currency: str, value) -> None:
        if currency:
            bucket = self.money.setdefault(currency, {})
            bucket[metric] = bucket.get(metric, 0) + int(value or 0)
        else:
            self.counts[metric] = self.counts.get(metric, 0) + int(value or 0)


Funnel = dict[int, tuple[int, int, int, int, int]]  # category id -> requests, quoted, hired, paid, completed
Cohorts = tuple[dict[int, int], dict[tuple[int, int], int]]  # month key -> clients; (signup, paid month) -> clients
Kpis = tuple[list[KpiValue], list[str], Totals]  # the KPIs, the currencies seen (main first), the period's totals


class Facts(Protocol):
    """Where the dashboard's numbers come from. `category_id` None = all; it filters order and request metrics only
    (signups, repeat clients and cohorts are marketplace-wide)."""

    def totals(self, session: Session, tenant_id: int, periods: Sequence[Period],
               category_id: int | None) -> list[Totals]:
        """Each period's sums (the dashboard asks for the period and the one before together)."""

    def daily(self, session: Session, tenant_id: int, period: Period, category_id: int | None,
              currency: str) -> dict[date, dict[str, int]]:
        """Per day: gmv and fees (in `currency`), orders_created, signups_client, signups_professional."""

    def escrow_held(self, session: Session, tenant_id: int, category_id: int | None) -> dict[str, int]: ...

    def funnel(self, session: Session, tenant_id: int, period: Period, category_id: int | None) -> Funnel: ...

    def median_first_quote_seconds(self, session: Session, tenant_id: int, periods: Sequence[Period],
                                   category_id: int | None) -> list[float | None]:
        """Each period's median (None: no request of the period got a quote)."""

    def repeat_clients(self, session: Session, tenant_id: int, periods: Sequence[Period]) -> list[tuple[int, int]]:
        """Each period's (clients who paid in the period, those of them with >= 2 paid orders up to its end)."""

    def cohorts(self, session: Session, tenant_id: int, first: date, end: date) -> Cohorts: ...

    def active_users(self, session: Session, tenant_id: int, ends: Sequence[date]) -> list[dict[str, int]]:
        """For each end: active_clients_7/30 and active_pros_7/30, distinct users who acted in the N days ending
        at it."""

    def active_pros(self, tenant_id: int, end: date) -> sa.Select:
        """The ids of the professionals who acted in the 30 days ending at `end` (a subquery for supply and
        demand)."""


# ---------------------------------------------------------------------------------------------------- rollups

class RollupFacts:
    """The numbers from the rollup tables (analytics_daily, analytics_funnel_day, analytics_request,
    analytics_client_day, analytics_actor_day)."""

    def totals(self, session: Session, tenant_id: int, periods: Sequence[Period],
               category_id: int | None) -> list[Totals]:
        """Every period's sums in one pass over the days they span (a column per period)."""
        d = daily.c
        where = [d.tenant_id == tenant_id, d.day.between(min(p.start for p in periods), max(p.end for p in periods))]
        if category_id is not None:
            where.append(sa.or_(d.category_id == category_id, d.metric.in_(SIGNUPS)))
        sums = [sa.func.sum(sa.case((d.day.between(p.start, p.end), d.value))) for p in periods]
        totals = [Totals() for _ in periods]
        for metric, currency, *values in session.execute(
                sa.select(d.metric, d.currency, *sums).where(*where).group_by(d.metric, d.currency)):
            for side, value in zip(totals, values):
                if value is not None:  # no row of that metric in that period
                    side.add(metric, currency, value)
        return totals

    def daily(self, session: Session, tenant_id: int, period: Period, category_id: int | None,
              currency: str) -> dict[date, dict[str, int]]:
        where = [daily.c.tenant_id == tenant_id, daily.c.day.between(period.start, period.end),
                 sa.or_(sa.and_(daily.c.metric.in_(["gmv", "fees"]), daily.c.currency == currency),
                        daily.c.metric.in_(["orders_created", *SIGNUPS]))]
        if category_id is not None:
            where.append(sa.or_(daily.c.category_id == category_id, daily.c.metric.in_(SIGNUPS)))
        days: dict[date, dict[str, int]] = {}
        for day, metric, value in session.execute(
                sa.select(daily.c.day, daily.c.metric, sa.func.sum(daily.c.value))
                .where(*where).group_by(daily.c.day, daily.c.metric)):
            days.setdefault(day, {})[metric] = int(value)
        return days

    def escrow_held(self, session: Session, tenant_id: int, category_id: int | None) -> dict[str, int]:
        """Escrow's balance per currency: everything held (paid) less what was released (gmv) or refunded, which are
        the only postings that touch escrow accounts (backend/payments/escrow.py)."""
        sign = sa.case((daily.c.metric == "paid", daily.c.value), else_=-daily.c.value)
        where = [daily.c.tenant_id == tenant_id, daily.c.metric.in_(["paid", "gmv", "refunds"])]
        if category_id is not None:
            where.append(daily.c.category_id == category_id)
        rows = session.execute(sa.select(daily.c.currency, sa.func.sum(sign)).where(*where).group_by(daily.c.currency))
        return {currency: int(value) for currency, value in rows}

    def funnel(self, session: Session, tenant_id: int, period: Period, category_id: int | None) -> Funnel:
        f = funnel_days.c
        where = [f.tenant_id == tenant_id, f.day.between(period.start, period.end)]
        if category_id is not None:
            where.append(f.category_id == category_id)
        rows = session.execute(
            sa.select(f.category_id, *(sa.func.sum(column) for column in (f.requests, f.quoted, f.hired, f.paid,
                                                                          f.completed)))
            .where(*where).group_by(f.category_id))
        return {row[0]: tuple(int(v or 0) for v in row[1:]) for row in rows}

    def median_first_quote_seconds(self, session: Session, tenant_id: int, periods: Sequence[Period],
                                   category_id: int | None) -> list[float | None]:
        r = requests.c
        where = [r.tenant_id == tenant_id, r.first_quote_seconds.isnot(None)]
        if category_id is not None:
            where.append(r.category_id == category_id)
        if dialect_of(session) == "postgresql":  # every period in one pass over the days they span
            medians = session.execute(sa.select(*(
                sa.func.percentile_cont(0.5).within_group(r.first_quote_seconds)
                .filter(r.created_day.between(p.start, p.end)) for p in periods))
                .where(*where, r.created_day.between(min(p.start for p in periods), max(p.end for p in periods)))
            ).one()
            return [None if value is None else float(value) for value in medians]
        return [self._median(session, [*where, r.created_day.between(p.start, p.end)]) for p in periods]

    @staticmethod
    def _median(session: Session, where: list[sa.ColumnElement]) -> float | None:
        r = requests.c
        count = session.execute(sa.select(sa.func.count()).where(*where)).scalar_one()
        if not count:
            return None
        middle = session.execute(sa.select(r.first_quote_seconds).where(*where).order_by(r.first_quote_seconds)
                                 .offset((count - 1) // 2).limit(2 - count % 2)).scalars().all()
        return float(statistics.fmean(middle))

    def repeat_clients(self, session: Session, tenant_id: int, periods: Sequence[Period]) -> list[tuple[int, int]]:
        """One pass over the periods' paying days: a client's running total on their last paying day of a period
        is their paid orders up to its end."""
        c = client_days.c
        payers = (sa.select(c.client_id, *(sa.func.max(sa.case((c.day.between(p.start, p.end), c.paid_to_date)))
                                           .label(f"orders{i}") for i, p in enumerate(periods)))
                  .where(c.tenant_id == tenant_id,
                         c.day.between(min(p.start for p in periods), max(p.end for p in periods)))
                  .group_by(c.client_id).subquery())  # a grouping, not count(DISTINCT): hashed, not sorted
        row = session.execute(sa.select(*(
            column for i in range(len(periods)) for column in (
                sa.func.count(payers.c[f"orders{i}"]),
                sa.func.sum(sa.case((payers.c[f"orders{i}"] >= 2, 1), else_=0)))))).one()
        return [(int(row[2 * i] or 0), int(row[2 * i + 1] or 0)) for i in range(len(periods))]

    def cohorts(self, session: Session, tenant_id: int, first: date, end: date) -> Cohorts:
        """Cohort sizes from the daily client signups; who paid in which month from the paying days, which carry
        the client's signup day, both month keys and whether the day is the client's first of its month (no join
        with the accounts, no date arithmetic per row, no DISTINCT)."""
        dialect, d, c = dialect_of(session), daily.c, client_days.c
        signup_month = S.month_key(dialect, d.day, timestamp=False)
        sizes = {int(month): int(n) for month, n in session.execute(
            sa.select(signup_month, sa.func.sum(d.value))
            .where(d.tenant_id == tenant_id, d.metric == "signups_client", d.day.between(first, end))
            .group_by(signup_month))}
        assert first.day == 1, "cohorts start on a month's first day"
        # each client's first paying day of a month stands for the month (`first` is a month's first day, so the
        # window holds whole months but the last, where a first paying day after `end` means none up to it)
        active = session.execute(
            sa.select(c.signup_month, c.month, sa.func.count())
            .where(c.tenant_id == tenant_id, c.first_in_month, c.day.between(first, end),
                   c.signup_day.between(first, end))
            .group_by(c.signup_month, c.month))
        return sizes, {(int(s), int(p)): int(n) for s, p, n in active}

    def active_users(self, session: Session, tenant_id: int, ends: Sequence[date]) -> list[dict[str, int]]:
        return [self._active_users(session, tenant_id, end) for end in ends]

    @staticmethod
    def _active_users(session: Session, tenant_id: int, end: date) -> dict[str, int]:
        """Each user's last acting day within the widest window (analytics_actor_day), then how many of those fall in
        each window. (One query per end: windows far apart are two index ranges, which one query would read as a
        scan of everything between, or an OR the planner does not split; measured slower either way.)"""
        a = actor_days.c
        since = {days: end - timedelta(days=days - 1) for days in ACTIVE_DAYS}
        counts = {f"active_{key}_{days}": 0 for key in ("clients", "pros") for days in ACTIVE_DAYS}
        last = (sa.select(a.role, a.user_id, sa.func.max(a.day).label("day"))
                .where(a.tenant_id == tenant_id, a.day.between(since[max(ACTIVE_DAYS)], end))
                .group_by(a.role, a.user_id).subquery())
        for role, *row in session.execute(
                sa.select(last.c.role, *(sa.func.sum(sa.case((last.c.day >= since[days], 1), else_=0))
                                         for days in ACTIVE_DAYS))
                .group_by(last.c.role)):
            key = "clients" if role == S.CLIENT else "pros"
            counts.update({f"active_{key}_{days}": int(n) for days, n in zip(ACTIVE_DAYS, row)})
        return counts

    def active_pros(self, tenant_id: int, end: date) -> sa.Select:
        a = actor_days.c
        return sa.select(a.user_id).where(a.tenant_id == tenant_id, a.role == S.PROFESSIONAL,
                                          a.day.between(end - timedelta(days=max(ACTIVE_DAYS) - 1), end))


# ---------------------------------------------------------------------------------------------------- live

def active_users(session: Session, tenant_id: int, end: date) -> dict[str, int]:
    """active_clients_7/30 and active_pros_7/30 from the raw rows of the window (the naive reference): distinct users
    who acted in the N days ending at `end` (clients: posted a request or acted on an order; professionals: sent a
    quote or acted on an order)."""
    r, q, e = S.service_request, S.quote, S.order_event
    stop = midnight(end + timedelta(days=1))
    since = {days: midnight(end - timedelta(days=days - 1)) for days in ACTIVE_DAYS}
    widest = since[max(ACTIVE_DAYS)]
    counts = {}
    for role, key, (table, who, at) in ((S.CLIENT, "clients", (r, r.c.client_id, r.c.created_at)),
                                        (S.PROFESSIONAL, "pros", (q, q.c.pro_id, q.c.created_at))):
        acts = sa.union_all(
            sa.select(who.label("uid"), at.label("at")).where(table.c.tenant_id == tenant_id, at >= widest, at < stop),
            sa.select(e.c.actor_id, e.c.at).where(e.c.tenant_id == tenant_id, e.c.actor_role == role,
                                                  e.c.actor_id.isnot(None), e.c.at >= widest, e.c.at < stop)
        ).subquery()
        row = session.execute(sa.select(*(
            sa.func.count(sa.distinct(sa.case((acts.c.at >= since[days], acts.c.uid)))) for days in ACTIVE_DAYS
        ))).one()
        counts.update({f"active_{key}_{days}": int(n) for days, n in zip(ACTIVE_DAYS, row)})
    return counts


def active_pros(tenant_id: int, end: date) -> sa.Select:
    """The professionals who sent a quote or acted on an order in the 30 days ending at `end`, from the raw rows
    (the naive reference)."""
    q, e = S.quote, S.order_event
    since, stop = midnight(end - timedelta(days=max(ACTIVE_DAYS) - 1)), midnight(end + timedelta(days=1))
    return sa.union(
        sa.select(q.c.pro_id).where(q.c.tenant_id == tenant_id, q.c.created_at >= since, q.c.created_at < stop),
        sa.select(e.c.actor_id).where(e.c.tenant_id == tenant_id, e.c.actor_role == S.PROFESSIONAL,
                                      e.c.actor_id.isnot(None), e.c.at >= since, e.c.at < stop))


def category_names(session: Session, tenant_id: int) -> dict[int, str]:
    c = S.category
    rows = session.execute(sa.select(c.c.id, c.c.name).where(c.c.tenant_id == tenant_id)
                           .order_by(c.c.sort, c.c.name, c.c.id))
    return {**{id_: name for id_, name in rows}, 0: UNCATEGORISED}


def supply_demand(session: Session, tenant_id: int, category_id: int | None, active: sa.Select,
                  names: dict[int, str]) -> list[dict]:
    """Open requests per category and place (the request's city), those without any quote, and the professionals
    listing that category, based in that city, among `active` (ids: who acted in the last 30 days). The
    SUPPLY_DEMAND_ROWS rows with the most unanswered requests."""
    r, q, c = S.service_request, S.quote, S.category
    pc, pp = S.pro_category, S.pro_profile
    unquoted = ~sa.exists().where(q.c.request_id == r.c.id, q.c.tenant_id == tenant_id)
    unanswered = sa.func.sum(sa.case((unquoted, 1), else_=0))
    where = [r.c.tenant_id == tenant_id, r.c.status == S.REQUEST_OPEN]
    if category_id is not None:
        where.append(r.c.category_id == category_id)
    demand = session.execute(
        sa.select(r.c.category_id, c.c.name, r.c.city, sa.func.count(), unanswered)
        .select_from(r.join(c, c.c.id == r.c.category_id)).where(*where)
        .group_by(r.c.category_id, c.c.name, r.c.city)
        .order_by(unanswered.desc(), sa.func.count().desc(), c.c.name, r.c.city)
        .limit(SUPPLY_DEMAND_ROWS)).all()
    if not demand:
        return []
    supply: dict[tuple[int, str], int] = {}
    for cat, city, pros in session.execute(
            sa.select(pc.c.category_id, pp.c.city, sa.func.count(sa.distinct(pc.c.user_id)))
            .select_from(pc.join(pp, sa.and_(pp.c.user_id == pc.c.user_id, pp.c.tenant_id == tenant_id)))
            .where(pc.c.tenant_id == tenant_id, pc.c.user_id.in_(active),
                   pc.c.category_id.in_({row[0] for row in demand}))
            .group_by(pc.c.category_id, pp.c.city)):
        key = (cat, (city or "").strip().casefold())
        supply[key] = supply.get(key, 0) + int(pros)
    return [{"category": names.get(cat, name), "place": city, "open_requests": int(open_),
             "unanswered": int(unanswered_ or 0), "active_pros": supply.get((cat, (city or "").strip().casefold()), 0)}
            for cat, name, city, open_, unanswered_ in demand]


# ---------------------------------------------------------------------------------------------------- assembly

GLOSSARY = (
    ("GMV", "Escrow released to the professional side on release ledger transactions in the period (the negative "
            "escrow entries of release transactions, negated): completed work's value, including the released part "
            "of a split."),
    ("Held in escrow", "The balance of all escrow accounts now (of the category's orders when a category is "
                       "chosen; not compared with the previous period)."),
    ("Net revenue", "The net change of the platform fees account in the period."),
    ("Take rate", "take_rate = fees / gmv."),
    ("Average order value", "aov = gmv / to_completed count (orders moved to completed in the period; a "
                            "marketplace that changed its currency shows it for the main currency only)."),
    ("Refund rate", "refund_rate = refunds / paid (money): amounts into refund accounts over amounts clients paid "
                    "into escrow in the period."),
    ("Dispute rate", "dispute_rate = disputes_opened / to_paid count (orders moved to disputed over orders moved "
                     "to paid in the period)."),
    ("New clients, new professionals", "Accounts created in the period, by role (marketplace-wide)."),
    ("Active clients/pros N days", "Distinct users who acted in the N days ending at the period end: clients who "
                                   "posted a request or acted on an order, pros who sent a quote or acted on an "
                                   "order (marketplace-wide)."),
    ("Repeat clients", "repeat_client_rate = of clients who paid in the period, the share whose paid orders up to "
                       "the period end total at least 2 (marketplace-wide)."),
    ("Median time to first quote", "median over requests created in the period that got a quote of "
                                   "first_quote_seconds / 3600 (hours from the request to its first quote)."),
    ("Quote-to-hire rate", "quote_to_hire = quotes_accepted / quotes_sent (quotes sent in the period; accepted "
                           "quotes counted on the day their order was created)."),
    ("Orders by state", "Order events in the period that moved an order into each state (an order counts once per "
                        "state it reached)."),
    ("Funnel", "Requests created in the period, then those of them that got a quote, were hired (an order), paid "
               "and completed; conversion = each step over the one before."),
    ("Cohorts", "Clients by signup month (the last 12 months up to the period end); m_k = % of that cohort with a "
                "paid order in calendar month signup+k (m0 = paid in the signup month; k >= 1: ordered again). "
                "Marketplace-wide."),
    ("Supply and demand", "Per category and city of open requests: open requests, unanswered (open with no quote), "
                          "and active pros (professionals listing that category, based in that city, who sent a "
                          "quote or acted on an order in the 30 days ending today); the 50 rows with the most "
                          "unanswered."),
    ("Days and categories", "Facts count on the UTC day they happened. An order's category is its request's; a "
                            "direct booking has none (\"" + UNCATEGORISED + "\"). The category filter applies to "
                            "order and request figures; signups, active users, repeat clients and cohorts are "
                            "marketplace-wide."),
)


def _ratio(numerator: float, denominator: float) -> float | None:
    return None if not denominator else numerator / denominator * 100


def _show(kind: str, value: float | None, currency: str) -> str:
    if value is None:
        return "—"
    if kind == "money":
        return format_money(int(value), currency)
    if kind == "percent":
        return f"{value:.1f}%"
    if kind == "hours":
        return f"{value:.1f} h"
    return f"{int(value):,}"


def _kpi(key: str, label: str, kind: str, current: float | None, previous: float | None, better: str, hint: str,
         currency: str = "", compare: bool = True) -> KpiValue:
    raw = 0 if current is None else (int(current) if kind in ("money", "count") else round(float(current), 2))
    change = (round((current - previous) / abs(previous) * 100, 1)
              if compare and current is not None and previous else None)
    return KpiValue(key=key, label=label, value=_show(kind, current, currency), raw=raw,
                    previous=_show(kind, previous, currency) if compare else "", change_pct=change, better=better,
                    hint=hint)


@dataclass(frozen=True)
class _Side:
    """One period's figures, as the KPIs need them."""

    totals: Totals
    active: dict[str, int]
    repeat: tuple[int, int]
    median_seconds: float | None


Flows = tuple[list[Totals], list[dict[str, int]], dict[str, int]]  # per period: totals, active users; escrow now
People = tuple[list[tuple[int, int]], list[float | None]]  # per period: repeat clients, median time to first quote


def kpi_periods(period: Period) -> tuple[Period, Period]:
    """The KPIs compare the period with the one before."""
    return period, period.previous()


def read_flows(facts: Facts, session: Session, tenant_id: int, periods: Sequence[Period],
               category_id: int | None) -> Flows:
    """Half of the KPIs' reads (the service runs the two halves on two connections); each kind of fact is read
    for all the periods at once."""
    return (facts.totals(session, tenant_id, periods, category_id),
            facts.active_users(session, tenant_id, [p.end for p in periods]),
            facts.escrow_held(session, tenant_id, category_id))


def read_people(facts: Facts, session: Session, tenant_id: int, periods: Sequence[Period],
                category_id: int | None) -> People:
    """The other half of the KPIs' reads."""
    return (facts.repeat_clients(session, tenant_id, periods),
            facts.median_first_quote_seconds(session, tenant_id, periods, category_id))


def _money_kpis(now: _Side, before: _Side, currency: str, escrow: int, suffix: str) -> list[KpiValue]:
    def pair(metric: str) -> tuple[int, int]:
        return now.totals.amount(currency, metric), before.totals.amount(currency, metric)

    (gmv, gmv0), (fees, fees0), (refunds, refunds0), (paid, paid0) = map(pair, ("gmv", "fees", "refunds", "paid"))
    tag = f" ({currency})" if suffix else ""
    kpis = [
        _kpi("gmv" + suffix, "GMV" + tag, "money", gmv, gmv0, "up", "Value of completed work released from escrow",
             currency),
        _kpi("escrow_held" + suffix, "Held in escrow" + tag, "money", escrow, None, "up",
             "Clients' money in escrow now", currency, compare=False),
        _kpi("net_revenue" + suffix, "Net revenue" + tag, "money", fees, fees0, "up", "Platform fees earned",
             currency),
        _kpi("take_rate" + suffix, "Take rate" + tag, "percent", _ratio(fees, gmv), _ratio(fees0, gmv0), "up",
             "Fees over GMV"),
    ]
    if not suffix:
        completed, completed0 = now.totals.count("to_completed"), before.totals.count("to_completed")
        kpis.append(_kpi("aov", "Average order value", "money", round(gmv / completed) if completed else None,
                         round(gmv0 / completed0) if completed0 else None, "up", "GMV per completed order",
                         currency))
    kpis.append(_kpi("refund_rate" + suffix, "Refund rate" + tag, "percent", _ratio(refunds, paid),
                     _ratio(refunds0, paid0), "down", "Refunds over money paid in"))
    return kpis


def build_kpis(facts: Facts, session: Session, tenant_id: int, currency: str, period: Period,
               category_id: int | None) -> Kpis:
    """The KPIs of the period against the previous one; the currencies seen (the main one first); the period's
    totals (for the rest of the dashboard)."""
    periods = kpi_periods(period)
    return assemble_kpis(currency, read_flows(facts, session, tenant_id, periods, category_id),
                         read_people(facts, session, tenant_id, periods, category_id))


def assemble_kpis(currency: str, flows: Flows, people: People) -> Kpis:
    """The KPIs from the facts read for (period, previous period)."""
    totals, active, escrow = flows
    now, before = (_Side(*figures) for figures in zip(totals, active, *people, strict=True))
    seen = set(now.totals.money) | set(before.totals.money) | {c for c, amount in escrow.items() if amount}
    currencies = [currency, *sorted(seen - {currency})]
    kpis = _money_kpis(now, before, currency, escrow.get(currency, 0), "")
    t, t0 = now.totals, before.totals
    quotes = lambda totals: _ratio(totals.count("quotes_accepted"), totals.count("quotes_sent"))  # noqa: E731
    repeat = lambda side: _ratio(side.repeat[1], side.repeat[0])  # noqa: E731
    hours = lambda side: None if side.median_seconds is None else side.median_seconds / 3600  # noqa: E731
    kpis += [
        _kpi("dispute_rate", "Dispute rate", "percent", _ratio(t.count("disputes_opened"), t.count("to_paid")),
             _ratio(t0.count("disputes_opened"), t0.count("to_paid")), "down", "Disputes opened per order paid"),
        _kpi("signups_client", "New clients", "count", t.count("signups_client"), t0.count("signups_client"), "up",
             "Client accounts created"),
        _kpi("signups_professional", "New professionals", "count", t.count("signups_professional"),
             t0.count("signups_professional"), "up", "Professional accounts created"),
        *(_kpi(f"active_{who}_{days}", f"Active {label} ({days} days)", "count", now.active[f"active_{who}_{days}"],
               before.active[f"active_{who}_{days}"], "up", f"{label.capitalize()} who acted in the last {days} days "
                                                            "of the period")
          for who, label in (("clients", "clients"), ("pros", "professionals")) for days in ACTIVE_DAYS),
        _kpi("repeat_client_rate", "Repeat clients", "percent", repeat(now), repeat(before), "up",
             "Paying clients with 2+ paid orders"),
        _kpi("median_first_quote_hours", "Median time to first quote", "hours", hours(now), hours(before), "down",
             "From a request to its first quote"),
        _kpi("quote_to_hire", "Quote-to-hire rate", "percent", quotes(t), quotes(t0), "up",
             "Quotes accepted over quotes sent"),
    ]
    for other in currencies[1:]:
        kpis += _money_kpis(now, before, other, escrow.get(other, 0), f"_{other.lower()}")
    return kpis, currencies, t


def _month(key: int) -> str:
    return f"{key // 12:04d}-{key % 12 + 1:02d}"


def build_dashboard(facts: Facts, session: Session, tenant_id: int, currency: str, period: Period,
                    category_id: int | None, now: datetime, kpis: Callable[[], Kpis] | None = None) -> Dashboard:
    """The whole dashboard. `kpis`: where the KPIs come from when not from this session (the service computes them
    on a second connection while this one reads the charts); asked for last."""
    names = category_names(session, tenant_id)

    scale = 10 ** minor_unit_exponent(currency)
    days = facts.daily(session, tenant_id, period, category_id, currency)
    series = []
    for offset in range(period.days):
        day = period.start + timedelta(days=offset)
        values = days.get(day, {})
        series.append({"day": day.isoformat(), "gmv": values.get("gmv", 0) / scale,
                       "fees": values.get("fees", 0) / scale, "orders": values.get("orders_created", 0),
                       "signups": sum(values.get(s, 0) for s in SIGNUPS)})

    by_category = facts.funnel(session, tenant_id, period, category_id)
    steps = [sum(row[i] for row in by_category.values()) for i in range(len(STEPS))]
    funnel = []
    for i, (step, count) in enumerate(zip(STEPS, steps)):
        conversion = (100.0 if count else 0.0) if i == 0 else round(_ratio(count, steps[i - 1]) or 0.0, 1)
        funnel.append({"step": step, "count": count, "conversion_pct": conversion})
    funnel_by_category = sorted(
        ({"category": names.get(cat, f"Category {cat}"), **dict(zip(STEPS, row))} for cat, row in by_category.items()),
        key=lambda row: (-row["requests"], row["category"]))

    end_key = period.end.year * 12 + period.end.month - 1
    first_key = end_key - (COHORT_MONTHS - 1)
    sizes, active = facts.cohorts(session, tenant_id, date(first_key // 12, first_key % 12 + 1, 1), period.end)
    cohorts = []
    for key in range(first_key, end_key + 1):
        clients = sizes.get(key, 0)
        row: dict = {"cohort": _month(key), "clients": clients}
        for k in range(COHORT_MONTHS):
            row[f"m{k}"] = (None if key + k > end_key or not clients
                            else round(active.get((key, key + k), 0) / clients * 100, 1))
        cohorts.append(row)

    supply = supply_demand(session, tenant_id, category_id, facts.active_pros(tenant_id, now.date()), names)
    kpi_values, currencies, totals = (kpis or (lambda: build_kpis(facts, session, tenant_id, currency, period,
                                                                  category_id)))()
    return Dashboard(
        period_label=period.label, currency=currency, kpis=kpi_values,
        orders_by_state=[{"state": state, "count": totals.count(f"to_{state}")} for state in S.ORDER_STATES],
        series=series, funnel=funnel, funnel_by_category=funnel_by_category, cohorts=cohorts,
        supply_demand=supply,
        categories=[{"id": id_, "name": name} for id_, name in names.items()],
        generated_at=now.strftime("%Y-%m-%d %H:%M UTC"),
        glossary=[{"term": term, "definition": definition} for term, definition in GLOSSARY],
        currencies=currencies)
