"""Analytics on SQLite and PostgreSQL: every KPI of the dashboard against numbers worked out by hand, the rollups
against the same dashboard computed from raw rows, incremental refresh and cache keys, tenant isolation, periods.

The fixture is built through the real services (sign-ups, requests, quotes, orders paid on the demo gateway,
cancellations, a dispute settled by a split). Services stamp their rows with the real time, so each step runs inside
`Timeline.at(moment)`, which moves the rows that step wrote to that moment before anything reads them; the analytics
service runs on a fixed clock, NOW.

The market ("demo", USD, 10 % fee; categories Plumbing and Electrical; period P = Jun 11-20 2026, previous = Jun 1-10):

  users     admin (Jan 10), plumber (Austin, plumbing; Mar 1), c1 (client, Apr 15), pro2 (Round Rock, plumbing; Jun 2),
            c3 (client, Jun 5), sparky (Austin, electrical; Jun 11), c2 (client, Jun 12)
  previous  R0 c1 plumbing Jun 3 08:00, plumber quotes 09:00 ($150), accepted, paid Jun 3, completed Jun 5
            R8 c3 plumbing in Dallas Jun 6: open, no quote
  P         R1 c1 plumbing Jun 12 08:00: plumber quotes 10:00 ($100), pro2 13:00 ($110); plumber's accepted 14:00,
               paid 15:00, started and delivered Jun 13, completed Jun 14
            R2 c1 electrical Jun 13 08:00: sparky quotes 12:00 ($200); accepted, paid Jun 13; started Jun 14,
               delivered Jun 15, completed Jun 16
            R3 c2 plumbing Jun 14 08:00: plumber quotes 09:00 ($50); accepted, paid Jun 14; c2 cancels Jun 15: refund
            R4 c1 electrical Jun 15 08:00: sparky quotes 18:00 ($300); accepted 19:00; paid Jun 16, started; delivered
               Jun 17, disputed Jun 17; the admin splits Jun 18: $100 back to c1, $200 released
            R5 c1 plumbing Jun 16 08:00: plumber quotes 11:00 ($80); accepted 12:00; c1 cancels unpaid 13:00
            R6 c2 plumbing Jun 18: open, no quote
            R7 c1 electrical Jun 19 08:00: sparky quotes 14:00: open
            R9 c1 electrical Jun 19 09:00: sparky quotes 10:00 ($120); accepted 11:00, paid 12:00: held in escrow
  acme      another marketplace: one $999 order completed Jun 15, never in demo's numbers
"""

from __future__ import annotations

import csv
import io
import os
import threading
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel.sql.sqltypes import UTCDateTime

from backend.analytics import TABLES, AnalyticsService, LocalCache, Period
from backend.analytics.adapters.redis_cache import RedisCache
from backend.analytics.naive import naive_dashboard
from backend.errors import PermissionDenied, ValidationFailed
from backend.identity import Caller, Role
from backend.tenancy.models import Tenant
from tests.conftest import APP_ROLE, APP_ROLE_PASSWORD, make_services
from tests.integration.test_orders import REQUEST, TODAY, category_id, make_admin, make_pro, pay, user

NOW = datetime(2026, 6, 20, 12, 0, tzinfo=UTC)
P = Period(date(2026, 6, 11), date(2026, 6, 20))
OPERATOR = Caller(role=Role.OPERATOR, id=1, tenant_id=None)

# what each step may write that analytics reads, and the time column the timeline moves
STAMPED = {"user_account": "created_at", "service_request": "created_at", "quote": "created_at",
           "service_order": "created_at", "order_event": "at", "ledger_transaction": "created_at"}


def jun(day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(2026, 6, day, hour, minute, tzinfo=UTC)


class Timeline:
    """Runs a step through the services, then moves the rows it wrote to the step's moment (before any refresh)."""

    def __init__(self, svc, tenant, after: Callable[[], object] = lambda: None):
        self.svc, self.tenant, self.after = svc, tenant, after

    def _tops(self) -> dict[str, int]:
        with self.svc.db.tenant_session(self.tenant.id) as s:
            return {table: s.execute(sa.text(f"SELECT COALESCE(MAX(id), 0) FROM {table} WHERE tenant_id = :t"),
                                     {"t": self.tenant.id}).scalar_one() for table in STAMPED}

    @contextmanager
    def at(self, moment: datetime):
        before = self._tops()
        yield
        with self.svc.db.tenant_session(self.tenant.id) as s:
            for table, column in STAMPED.items():
                s.execute(sa.text(f"UPDATE {table} SET {column} = :moment WHERE tenant_id = :t AND id > :top")
                          .bindparams(sa.bindparam("moment", type_=UTCDateTime())),
                          {"moment": moment, "t": self.tenant.id, "top": before[table]})
        self.after()


@dataclass
class Market:
    svc: object
    t: object
    acme: object
    tl: Timeline
    admin: Caller
    c1: Caller
    c2: Caller
    c3: Caller
    plumber: Caller
    pro2: Caller
    sparky: Caller
    acme_admin: Caller
    plumbing: int
    electrical: int
    requests: dict

    def post(self, client: Caller, category: int, when: datetime, city: str = "Austin", name: str = "") -> int:
        with self.tl.at(when):
            return self.svc.quotes.create_request(self.t, client, REQUEST | {
                "category_id": category, "city": city, "title": f"Job {name or when.isoformat()}"})

    def quote(self, pro: Caller, request_id: int, price: str, when: datetime) -> int:
        with self.tl.at(when):
            return self.svc.quotes.send_quote(self.t, pro, request_id, {
                "price": price, "message": "I can do it this week.", "duration_hours": 2,
                "valid_until": (TODAY + timedelta(days=7)).isoformat()})

    def accept(self, client: Caller, quote_id: int, when: datetime) -> int:
        with self.tl.at(when):
            return self.svc.quotes.accept_quote(self.t, client, quote_id)

    def pay(self, client: Caller, order_id: int, when: datetime) -> None:
        with self.tl.at(when):
            pay(self.svc, self.t, client, order_id)

    def act(self, who: Caller, order_id: int, action: str, when: datetime, **kw) -> None:
        with self.tl.at(when):
            self.svc.orders.apply(self.t, who, order_id, action, **kw)


def build_market(svc, tenants, after: Callable[[], object] = lambda: None) -> Market:
    demo, acme = tenants
    for t in tenants:
        svc.catalog.seed_defaults(t.id)
    tl = Timeline(svc, demo, after)
    people = {}
    for key, moment, make in (
            ("admin", datetime(2026, 1, 10, 9, tzinfo=UTC), lambda: make_admin(svc, demo)),
            ("plumber", datetime(2026, 3, 1, 9, tzinfo=UTC), lambda: make_pro(svc, demo, "plumber@example.com")),
            ("c1", datetime(2026, 4, 15, 9, tzinfo=UTC), lambda: user(svc, demo, "c1@example.com")),
            ("pro2", jun(2, 9), lambda: make_pro(svc, demo, "pro2@example.com", city="Round Rock")),
            ("c3", jun(5, 9), lambda: user(svc, demo, "c3@example.com")),
            ("sparky", jun(11, 7), lambda: make_pro(svc, demo, "sparky@example.com", slugs=("electrical",))),
            ("c2", jun(12, 7), lambda: user(svc, demo, "c2@example.com"))):
        with tl.at(moment):
            people[key] = make()
    m = Market(svc=svc, t=demo, acme=acme, tl=tl, acme_admin=make_admin(svc, acme, "boss@acme.example"),
               plumbing=category_id(svc, demo, "plumbing"), electrical=category_id(svc, demo, "electrical"),
               requests={}, **people)
    c1, c2, c3, plumber, pro2, sparky = m.c1, m.c2, m.c3, m.plumber, m.pro2, m.sparky

    def through(order_id: int, client: Caller, pro: Caller, steps: list[tuple[str, datetime]]) -> None:
        for action, when in steps:
            if action == "pay":
                m.pay(client, order_id, when)
            elif action in ("complete", "dispute", "cancel_client"):
                m.act(client, order_id, action.removesuffix("_client"), when,
                      **({"note": "The work is not finished"} if action == "dispute" else {}))
            else:
                m.act(pro, order_id, action, when)

    # the previous period
    r0 = m.post(c1, m.plumbing, jun(3, 8), name="R0")
    o0 = m.accept(c1, m.quote(plumber, r0, "150", jun(3, 9)), jun(3, 10))
    through(o0, c1, plumber, [("pay", jun(3, 11)), ("start", jun(5, 9)), ("deliver", jun(5, 9, 30)),
                              ("complete", jun(5, 10))])
    m.post(c3, m.plumbing, jun(6, 8), city="Dallas", name="R8")
    # the period
    r1 = m.post(c1, m.plumbing, jun(12, 8), name="R1")
    q1 = m.quote(plumber, r1, "100", jun(12, 10))
    m.quote(pro2, r1, "110", jun(12, 13))
    o1 = m.accept(c1, q1, jun(12, 14))
    through(o1, c1, plumber, [("pay", jun(12, 15)), ("start", jun(13, 9)), ("deliver", jun(13, 17)),
                              ("complete", jun(14, 9))])
    r2 = m.post(c1, m.electrical, jun(13, 8), name="R2")
    o2 = m.accept(c1, m.quote(sparky, r2, "200", jun(13, 12)), jun(13, 13))
    through(o2, c1, sparky, [("pay", jun(13, 14)), ("start", jun(14, 9)), ("deliver", jun(15, 10)),
                             ("complete", jun(16, 9))])
    r3 = m.post(c2, m.plumbing, jun(14, 8), name="R3")
    o3 = m.accept(c2, m.quote(plumber, r3, "50", jun(14, 9)), jun(14, 10))
    through(o3, c2, plumber, [("pay", jun(14, 11)), ("cancel_client", jun(15, 9))])
    r4 = m.post(c1, m.electrical, jun(15, 8), name="R4")
    o4 = m.accept(c1, m.quote(sparky, r4, "300", jun(15, 18)), jun(15, 19))
    through(o4, c1, sparky, [("pay", jun(16, 9)), ("start", jun(16, 10)), ("deliver", jun(17, 9)),
                             ("dispute", jun(17, 12))])
    m.act(m.admin, o4, "resolve_split", jun(18, 10), note="Half the job was done", refund="100")
    r5 = m.post(c1, m.plumbing, jun(16, 8), name="R5")
    o5 = m.accept(c1, m.quote(plumber, r5, "80", jun(16, 11)), jun(16, 12))
    through(o5, c1, plumber, [("cancel_client", jun(16, 13))])
    m.post(c2, m.plumbing, jun(18, 8), name="R6")
    r7 = m.post(c1, m.electrical, jun(19, 8), name="R7")
    m.quote(sparky, r7, "90", jun(19, 14))
    r9 = m.post(c1, m.electrical, jun(19, 9), name="R9")
    o9 = m.accept(c1, m.quote(sparky, r9, "120", jun(19, 10)), jun(19, 11))
    m.pay(c1, o9, jun(19, 12))
    m.requests = {"R1": r1, "R9": r9}

    # another marketplace, same days: never in demo's numbers
    other = Timeline(svc, acme)
    with other.at(jun(1, 9)):
        acme_client = user(svc, acme, "client@acme.example")
        acme_pro = make_pro(svc, acme, "pro@acme.example")
    with other.at(jun(15, 9)):
        request_id = svc.quotes.create_request(acme, acme_client, REQUEST | {
            "category_id": category_id(svc, acme, "plumbing")})
        quote_id = svc.quotes.send_quote(acme, acme_pro, request_id, {
            "price": "999", "message": "Acme does it all.", "duration_hours": 2,
            "valid_until": (TODAY + timedelta(days=7)).isoformat()})
        order_id = svc.quotes.accept_quote(acme, acme_client, quote_id)
        pay(svc, acme, acme_client, order_id)
        for action in ("start", "deliver"):
            svc.orders.apply(acme, acme_pro, order_id, action)
        svc.orders.apply(acme, acme_client, order_id, "complete")
    return m


class SpyCache(LocalCache):
    """A LocalCache that remembers the keys asked for and written."""

    def __init__(self):
        super().__init__()
        self.gets: list[str] = []
        self.sets: list[str] = []

    def get(self, key):
        self.gets.append(key)
        return super().get(key)

    def set(self, key, value, ttl_seconds):
        self.sets.append(key)
        super().set(key, value, ttl_seconds)


def analytics(svc, cache=None) -> AnalyticsService:
    return AnalyticsService(svc.db, cache if cache is not None else LocalCache(), clock=lambda: NOW)


@pytest.fixture
def market(svc, tenants) -> Market:
    """A market of one's own (for tests that add to it)."""
    return build_market(svc, tenants)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared(request, tmp_path_factory, servers):
    """The market built once per database for the tests that only read it (building it takes a while). On
    PostgreSQL in a database of its own: other tests truncate the session's database."""
    name = f"mp_analytics_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = None
    if request.param == "postgresql":
        url = servers.create_database(name)
        servers.ensure_login_role(APP_ROLE, APP_ROLE_PASSWORD)
    services = make_services(url, tmp_path_factory.mktemp("analytics"))
    try:
        with services.db.platform_session() as session:
            for slug, label in (("demo", "Demo"), ("acme", "Acme")):
                session.add(Tenant(slug=slug, name=label, payment_provider="demo"))
        yield build_market(services, (services.tenants.by_slug("demo"), services.tenants.by_slug("acme")))
    finally:
        services.close()
        if url:
            servers.drop_database(name)


def kpis(dashboard) -> dict[str, tuple[str, object, str, float | None]]:
    return {k.key: (k.value, k.raw, k.previous, k.change_pct) for k in dashboard.kpis}


def comparable(dashboard) -> dict:
    data = asdict(dashboard)
    data.pop("generated_at")
    return data


# ---------------------------------------------------------------------------------------------------- the numbers

def test_every_kpi_equals_the_hand_computed_number(shared):
    m = shared
    dashboard = analytics(m.svc).dashboard(m.t, m.admin, P)
    assert (dashboard.period_label, dashboard.currency, dashboard.currencies) == ("Jun 11 – Jun 20, 2026", "USD",
                                                                                  ["USD"])
    assert kpis(dashboard) == {
        # released: R1 $100 (Jun 14) + R2 $200 (Jun 16) + R4's released $200 (Jun 18); previous: R0 $150
        "gmv": ("$500.00", 50000, "$150.00", 233.3),
        "escrow_held": ("$120.00", 12000, "", None),  # R9, paid and not released
        "net_revenue": ("$50.00", 5000, "$15.00", 233.3),  # 10 % of each release
        "take_rate": ("10.0%", 10.0, "10.0%", 0.0),
        "aov": ("$250.00", 25000, "$150.00", 66.7),  # $500 / 2 completed (R1, R2); R4 was resolved, not completed
        # refunds R3 $50 + R4 $100 over holds $100 + $200 + $50 + $300 + $120
        "refund_rate": ("19.5%", 19.48, "0.0%", None),
        "dispute_rate": ("20.0%", 20.0, "0.0%", None),  # 1 disputed / 5 paid
        "signups_client": ("1", 1, "1", 0.0),  # c2; previous c3 (the admin is no client)
        "signups_professional": ("1", 1, "1", 0.0),  # sparky; previous pro2
        "active_clients_7": ("2", 2, "2", 0.0),  # c1, c2 (Jun 14-20); previous c1 (R0's completion), c3 (R8)
        "active_clients_30": ("3", 3, "2", 50.0),  # + c3, who posted R8 on Jun 6
        "active_pros_7": ("2", 2, "1", 100.0),  # plumber, sparky; previous the plumber (R0)
        "active_pros_30": ("3", 3, "1", 200.0),  # + pro2, whose quote on R1 was Jun 12
        # paid in P: c1 (5 paid orders up to Jun 20) and c2 (1); previous: c1 with 1
        "repeat_client_rate": ("50.0%", 50.0, "0.0%", None),
        # first quotes of requests created in P: R1 2 h, R2 4, R3 1, R4 10, R5 3, R7 6, R9 1; previous R0 1 h
        "median_first_quote_hours": ("3.0 h", 3.0, "1.0 h", 200.0),
        "quote_to_hire": ("75.0%", 75.0, "100.0%", -25.0),  # 6 of 8 quotes sent in P accepted; previous 1 of 1
    }
    assert {row["state"]: row["count"] for row in dashboard.orders_by_state} == {
        "requested": 0, "accepted": 6, "paid": 5, "in_progress": 3, "delivered": 3, "completed": 2, "cancelled": 2,
        "expired": 0, "disputed": 1, "resolved": 1}
    assert dashboard.funnel == [
        {"step": "requests", "count": 8, "conversion_pct": 100.0}, {"step": "quoted", "count": 7, "conversion_pct": 87.5},
        {"step": "hired", "count": 6, "conversion_pct": 85.7}, {"step": "paid", "count": 5, "conversion_pct": 83.3},
        {"step": "completed", "count": 2, "conversion_pct": 40.0}]
    assert dashboard.funnel_by_category == [
        {"category": "Electrical", "requests": 4, "quoted": 4, "hired": 3, "paid": 3, "completed": 1},
        {"category": "Plumbing", "requests": 4, "quoted": 3, "hired": 3, "paid": 2, "completed": 1}]
    assert [row["day"] for row in dashboard.series] == [f"2026-06-{d}" for d in range(11, 21)]
    by_day = {row["day"]: row for row in dashboard.series}
    assert by_day["2026-06-11"] == {"day": "2026-06-11", "gmv": 0.0, "fees": 0.0, "orders": 0, "signups": 1}
    assert by_day["2026-06-12"] == {"day": "2026-06-12", "gmv": 0.0, "fees": 0.0, "orders": 1, "signups": 1}
    assert by_day["2026-06-14"] == {"day": "2026-06-14", "gmv": 100.0, "fees": 10.0, "orders": 1, "signups": 0}
    assert by_day["2026-06-18"] == {"day": "2026-06-18", "gmv": 200.0, "fees": 20.0, "orders": 0, "signups": 0}
    assert sum(row["orders"] for row in dashboard.series) == 6
    cohorts = {row["cohort"]: row for row in dashboard.cohorts}
    assert list(cohorts) == [f"2025-{m:02d}" for m in range(7, 13)] + [f"2026-{m:02d}" for m in range(1, 7)]
    assert cohorts["2026-04"] == {"cohort": "2026-04", "clients": 1, "m0": 0.0, "m1": 0.0, "m2": 100.0,
                                  **{f"m{k}": None for k in range(3, 12)}}  # c1 paid first in June
    assert cohorts["2026-06"] == {"cohort": "2026-06", "clients": 2, "m0": 50.0,  # c2 paid, c3 did not
                                  **{f"m{k}": None for k in range(1, 12)}}
    assert cohorts["2026-01"]["clients"] == 0 and cohorts["2026-01"]["m0"] is None  # the admin is no client
    assert dashboard.supply_demand == [  # R6, R8 unanswered; R7 quoted; pro2 is in Round Rock
        {"category": "Plumbing", "place": "Austin, TX, United States", "open_requests": 1, "unanswered": 1,
         "active_pros": 1},
        {"category": "Plumbing", "place": "Dallas, TX, United States", "open_requests": 1, "unanswered": 1,
         "active_pros": 0},
        {"category": "Electrical", "place": "Austin, TX, United States", "open_requests": 1, "unanswered": 0,
         "active_pros": 1}]
    names = {c["id"]: c["name"] for c in dashboard.categories}
    assert names[m.plumbing] == "Plumbing" and names[m.electrical] == "Electrical" and 0 in names
    assert {g["term"] for g in dashboard.glossary} >= {"GMV", "Take rate", "Repeat clients", "Cohorts"}

    plumbing = analytics(m.svc).dashboard(m.t, m.admin, P, m.plumbing)
    values = {key: value[:2] for key, value in kpis(plumbing).items()}
    assert values == {
        "gmv": ("$100.00", 10000), "escrow_held": ("$0.00", 0), "net_revenue": ("$10.00", 1000),
        "take_rate": ("10.0%", 10.0), "aov": ("$100.00", 10000),
        "refund_rate": ("33.3%", 33.33),  # R3's $50 over R1's $100 + R3's $50
        "dispute_rate": ("0.0%", 0.0), "quote_to_hire": ("75.0%", 75.0),  # 3 of R1 x2, R3, R5
        "median_first_quote_hours": ("2.0 h", 2.0),  # R1 2 h, R3 1 h, R5 3 h
        # marketplace-wide, whatever the category
        "signups_client": ("1", 1), "signups_professional": ("1", 1), "active_clients_7": ("2", 2),
        "active_clients_30": ("3", 3), "active_pros_7": ("2", 2), "active_pros_30": ("3", 3),
        "repeat_client_rate": ("50.0%", 50.0)}
    assert [row["category"] for row in plumbing.supply_demand] == ["Plumbing", "Plumbing"]
    assert plumbing.funnel_by_category == [dashboard.funnel_by_category[1]]


def test_rollups_refreshed_step_by_step_equal_the_naive_dashboard(svc, tenants):
    steps = []
    service = analytics(svc)
    m = build_market(svc, tenants, after=lambda: steps.append(service.refresh(tenants[0].id)))
    assert len(steps) > 40 and steps[0] == 0 and set(steps[1:]) == {1}  # the admin: no fact; then one day a step
    periods = [P, P.previous(), Period(date(2026, 6, 14), date(2026, 6, 14)), Period(date(2026, 3, 23), NOW.date()),
               Period(date(2025, 6, 20), date(2026, 6, 21))]
    for period in periods:
        for category in (None, m.plumbing, m.electrical, 0):
            rolled = service.dashboard(m.t, m.admin, period, category)
            assert comparable(rolled) == comparable(naive_dashboard(svc.db, m.t.id, "USD", period, category, NOW)), (
                period, category)
    before = comparable(service.dashboard(m.t, m.admin, P))
    assert service.rebuild(m.t.id) == 15  # days with facts: Mar 1, Apr 15 and 13 in June (an admin is no client)
    assert comparable(analytics(svc).dashboard(m.t, m.admin, P)) == before
    assert service.refresh(m.t.id) == 0  # nothing new, nothing within the late-commit window of NOW


def test_a_new_completed_order_changes_gmv_at_once_under_a_new_cache_key(market):
    m = market
    cache = SpyCache()
    service = analytics(m.svc, cache)
    first = service.dashboard(m.t, m.admin, P)
    assert len(cache.sets) == 1
    again = service.dashboard(m.t, m.admin, P)
    assert again == first and len(cache.sets) == 1 and cache.gets[-1] == cache.gets[0]  # served from the cache

    request_id = m.post(m.c2, m.plumbing, jun(20, 8), name="R10")
    order_id = m.accept(m.c2, m.quote(m.plumber, request_id, "40", jun(20, 9)), jun(20, 9, 30))
    m.pay(m.c2, order_id, jun(20, 10))
    for action, who in (("start", m.plumber), ("deliver", m.plumber), ("complete", m.c2)):
        m.act(who, order_id, action, jun(20, 11))
    after = service.dashboard(m.t, m.admin, P)  # no refresh called: the dashboard sees the sources moved
    assert cache.gets[-1] != cache.gets[0] and len(cache.sets) == 2
    assert after.kpi("gmv").raw == 50000 + 4000 and after.kpi("gmv").value == "$540.00"
    assert after.kpi("aov").value == "$180.00"  # $540 / 3 completed
    assert after.kpi("repeat_client_rate").value == "100.0%"  # c2 has paid twice now
    assert {r["day"]: r["gmv"] for r in after.series}["2026-06-20"] == 40.0
    assert service.dashboard(m.t, m.admin, P) == after and len(cache.sets) == 2  # and cached again
    # the operator's overview follows the same data version
    assert {row.slug: row.kpi("gmv").raw for row in service.overview(OPERATOR, P)}["demo"] == 54000


def test_a_payment_on_an_earlier_day_moves_the_running_totals_of_the_later_ones(market):
    """A paying day folded in after later ones (a late commit, or a refresh that sees an older day): the running
    totals and first-of-month flags of the client's later paying days follow (repeat clients, cohorts)."""
    m = market
    service = analytics(m.svc)
    before = service.dashboard(m.t, m.admin, P)  # everything folded in
    assert before.kpi("repeat_client_rate").value == "50.0%"  # c1 yes; c2 paid once (R3, Jun 14)
    request_id = m.post(m.c2, m.plumbing, jun(13, 8), name="R11")
    order_id = m.accept(m.c2, m.quote(m.plumber, request_id, "30", jun(13, 9)), jun(13, 9, 30))
    m.pay(m.c2, order_id, jun(13, 10))
    after = service.dashboard(m.t, m.admin, P)  # refreshes Jun 13 only
    assert after.kpi("repeat_client_rate").value == "100.0%"  # c2's Jun 14 day now has 2 paid orders to date
    for period in (P, P.previous(), Period(date(2026, 6, 14), date(2026, 6, 14))):
        assert comparable(service.dashboard(m.t, m.admin, period)) == comparable(
            naive_dashboard(m.svc.db, m.t.id, "USD", period, None, NOW)), period


def test_another_tenants_numbers_never_count_and_only_its_admin_sees_a_dashboard(shared):
    m = shared
    service = analytics(m.svc)
    for outsider in (m.c1, m.plumber, m.acme_admin, OPERATOR, None):
        with pytest.raises(PermissionDenied):
            service.dashboard(m.t, outsider, P)
        with pytest.raises(PermissionDenied):
            service.export_csv(m.t, outsider, P, None, "kpis")
    acme = service.dashboard(m.acme, m.acme_admin, P)
    assert (acme.kpi("gmv").value, acme.kpi("signups_client").value) == ("$999.00", "0")  # its client: Jun 1
    assert sum(row["count"] for row in acme.funnel[:1]) == 1
    demo = service.dashboard(m.t, m.admin, P)
    assert demo.kpi("gmv").raw == 50000  # acme's $999 completed on Jun 15 is not here

    for not_operator in (m.admin, m.acme_admin, m.c1):
        with pytest.raises(PermissionDenied):
            service.overview(not_operator, P)
    rows = service.overview(OPERATOR, P)
    assert [(r.slug, r.name, r.currency) for r in rows] == [("demo", "Demo", "USD"), ("acme", "Acme", "USD")]
    assert [r.kpi("gmv").raw for r in rows] == [50000, 99900]
    assert [k.key for k in rows[0].kpis] == [k.key for k in demo.kpis]
    assert rows[0].kpis == demo.kpis  # the same numbers as the admin's dashboard


def test_concurrent_rebuilds_and_refreshes_take_turns(shared):
    m = shared
    service = analytics(m.svc)
    errors, results = [], []

    def run(job):
        try:
            results.append(job(m.t.id))
        except Exception as exc:  # noqa: BLE001  (any error fails the test below)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,))
               for job in (service.rebuild, service.refresh, service.rebuild, service.refresh, service.rebuild)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and sorted(results)[-1] == 15
    for category in (None, m.plumbing):
        assert comparable(service.dashboard(m.t, m.admin, P, category)) == comparable(
            naive_dashboard(m.svc.db, m.t.id, "USD", P, category, NOW))


def test_periods_and_categories_are_checked_at_the_boundary(shared):
    m = shared
    service = analytics(m.svc)
    cases = [(Period(date(2026, 6, 20), date(2026, 6, 19)), "end"),  # before the start
             (Period(date(2026, 6, 1), date(2026, 6, 22)), "end"),  # after tomorrow (NOW is Jun 20)
             (Period(date(2024, 6, 19), date(2026, 6, 20)), "start")]  # 732 days: 731 at most
    for period, field in cases:
        with pytest.raises(ValidationFailed) as exc:
            service.dashboard(m.t, m.admin, period)
        assert field in exc.value.errors, (period, exc.value.errors)
        with pytest.raises(ValidationFailed):
            service.overview(OPERATOR, period)
    assert service.dashboard(m.t, m.admin, Period(date(2024, 6, 22), date(2026, 6, 21))).period_label == (
        "Jun 22, 2024 – Jun 21, 2026")  # exactly 731 days, ending tomorrow
    for bad in (99999, -1, "1", True):
        with pytest.raises(ValidationFailed) as exc:
            service.dashboard(m.t, m.admin, P, bad)
        assert "category_id" in exc.value.errors
    acme_category = category_id(m.svc, m.acme, "plumbing")
    with pytest.raises(ValidationFailed):  # a category of another marketplace
        service.dashboard(m.t, m.admin, P, acme_category)
    with pytest.raises(ValidationFailed) as exc:
        Period.parse("2026-06-01", "June 20")
    assert list(exc.value.errors) == ["end"]
    assert Period.parse(" 2026-06-11", "2026-06-20") == P and P.previous() == Period(date(2026, 6, 1),
                                                                                     date(2026, 6, 10))
    assert Period.last(30, NOW.date()) == Period(date(2026, 5, 22), date(2026, 6, 20))
    with pytest.raises(ValidationFailed) as exc:
        service.export_csv(m.t, m.admin, P, None, "secrets")
    assert "table" in exc.value.errors


def test_csv_exports_hold_what_the_page_shows_and_no_formula(shared):
    m = shared
    rename = sa.text("UPDATE category SET name = :name WHERE id = :id")
    with m.svc.db.tenant_session(m.t.id) as s:  # an admin may name a category anything
        s.execute(rename, {"name": '=HYPERLINK("https://evil.example","Plumbing")', "id": m.plumbing})
    try:
        service = analytics(m.svc)
        dashboard = service.dashboard(m.t, m.admin, P)
        _check_exports(m, service, dashboard)
    finally:
        with m.svc.db.tenant_session(m.t.id) as s:
            s.execute(rename, {"name": "Plumbing", "id": m.plumbing})


def _check_exports(m: Market, service: AnalyticsService, dashboard) -> None:
    for table in TABLES:
        name, text = service.export_csv(m.t, m.admin, P, None, table)
        assert name == f"demo-{table}-2026-06-11-2026-06-20.csv"
        rows = list(csv.reader(io.StringIO(text)))
        shown = [asdict(k) for k in dashboard.kpis] if table == "kpis" else getattr(dashboard, table)
        assert len(rows) == len(shown) + 1, table
        for line, row in zip(rows[1:], shown):
            for header, value in zip(rows[0], line):
                expected = row[header]
                if isinstance(expected, str) and expected.startswith("="):
                    assert value == "'" + expected
                elif expected is None:
                    assert value == ""
                elif isinstance(expected, float):
                    assert float(value) == expected
                else:
                    assert value == str(expected), (table, header)
    _, funnel = service.export_csv(m.t, m.admin, P, None, "funnel_by_category")
    assert "'=HYPERLINK" in funnel and "\n=HYPERLINK" not in funnel


def test_several_currencies_show_money_per_currency_the_main_one_first(market):
    m = market
    with m.svc.db.platform_session() as s:  # the operator switched the marketplace to euros
        s.get(Tenant, m.t.id).currency = "EUR"
    m.svc.tenants._cache.clear()
    m.t = m.svc.tenants.by_slug("demo")
    request_id = m.post(m.c2, m.electrical, jun(20, 8), name="R11")
    order_id = m.accept(m.c2, m.quote(m.sparky, request_id, "70", jun(20, 9)), jun(20, 10))
    m.pay(m.c2, order_id, jun(20, 10))
    for action, who in (("start", m.sparky), ("deliver", m.sparky), ("complete", m.c2)):
        m.act(who, order_id, action, jun(20, 11))
    service = analytics(m.svc)
    dashboard = service.dashboard(m.t, m.admin, P)
    assert (dashboard.currency, dashboard.currencies) == ("EUR", ["EUR", "USD"])
    values = {k.key: k.value for k in dashboard.kpis}
    assert (values["gmv"], values["net_revenue"], values["escrow_held"], values["aov"]) == (
        "€70.00", "€7.00", "€0.00", "€23.33")  # aov: the main currency's GMV over all 3 completed orders
    assert (values["gmv_usd"], values["net_revenue_usd"], values["escrow_held_usd"], values["refund_rate_usd"]) == (
        "$500.00", "$50.00", "$120.00", "19.5%")
    assert "aov_usd" not in values
    assert {r["day"]: r["gmv"] for r in dashboard.series}["2026-06-14"] == 0.0  # the series is in euros
    assert {r["day"]: r["gmv"] for r in dashboard.series}["2026-06-20"] == 70.0
    assert comparable(dashboard) == comparable(naive_dashboard(m.svc.db, m.t.id, "EUR", P, None, NOW))


def test_redis_cache_serves_the_dashboard_and_a_redis_outage_is_only_a_miss(shared, servers):
    import redis

    m = shared
    client = redis.Redis.from_url(servers.redis_url)
    prefix = f"analytics-test-{m.t.id}-{id(m)}:"
    service = analytics(m.svc, RedisCache(client, prefix=prefix))
    try:
        first = service.dashboard(m.t, m.admin, P)
        keys = client.keys(prefix + "*")
        assert len(keys) == 1 and 0 < client.ttl(keys[0]) <= 24 * 3600
        assert service.dashboard(m.t, m.admin, P) == first
    finally:
        for key in client.keys(prefix + "*"):
            client.delete(key)
    down = RedisCache.from_url("redis://127.0.0.1:1/0")  # nothing listens there
    assert comparable(analytics(m.svc, down).dashboard(m.t, m.admin, P)) == comparable(first)
    assert down.get("anything") is None  # left alone for a while after the failure
