"""Synthetic marketplace history in bulk, for development (the demo's charts) and benchmarks only.

`generate(db, tenant_id, orders=..., months=..., seed=...)` writes months of consistent activity into one
marketplace: clients and professionals who sign up over time, service requests in the tenant's categories and
places, quotes (1-4 per request, minutes to days after it), orders from accepted quotes and direct bookings, and
each order taken along its lifecycle with the rows the services would have written at every step:

- the order's audit trail (`order_event`): the opening row (`accept_quote` / `book`), then one row per transition,
  each looked up in `backend.orders.process.TRANSITIONS` (action, from and to state, the party taking it), plus the
  two audit rows that are not transitions: an admin's partial refund (`refund`, state unchanged) and the timer's
  reminder before an automatic completion (`remind_auto_complete`);
- the money, as `backend/payments` posts it: the payment row (checkout, authorized, captured, voided), the
  write-ahead `payment_step` of every step giving money back, balanced ledger transactions with the same kinds,
  account codes, idempotency keys and memos as `escrow.py` and `payouts.py` (hold; release with the fee from
  `backend.money.fee_for` at the tenant's rate; refund; the split of a dispute; payout), the payout rows, and for
  the demo gateway its own `demo_charge` records, so a generated order can be acted on like any other;
- timers respected: an order waits in `accepted` less than 48 hours and in `delivered` less than 7 days unless the
  timer moved it (expired, completed automatically), and an open request has not expired, so the app's own timers
  find nothing the history should already have done.

Everything happens before `now`, spread over `months` with growth (more activity recently). Generated people get
addresses @history.example (`has_history` looks for them) and one password hash for all (never one per user).
Generated professionals have no headline: they do not appear in the search (which lists pros with a headline), so
the demo's search results stay as they are, but they count as supply of their categories.

Rows go in with SQLAlchemy Core, tables from `SQLModel.metadata`, ids taken ahead (PostgreSQL: from the
sequences; SQLite: after the largest id, the single writer), one transaction per `batch` orders. On PostgreSQL the
rows are COPYed when row-level security does not apply to the connection (a superuser's: the bench's owner URL,
`bulk_engine`); under RLS (the app role) PostgreSQL refuses COPY, and the rows go in as executemany INSERTs.

Refuses to run unless ENVIRONMENT is development or test: it writes made-up people and money.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import math
import random
import secrets
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, SQLModel

from backend import tables as _tables  # noqa: F401  (every table in SQLModel.metadata)
from backend.accounts.security import Passwords
from backend.db import Database, utcnow
from backend.identity import Role
from backend.money import fee_for, format_money, minor_unit_exponent
from backend.orders import process
from backend.orders.process import Effect, Party
from backend.payments import ledger as L
from backend.payments.models import PaymentStatus, StepStatus
from backend.places import Place
from backend.tenancy.hosts import tenant_url

__all__ = ["HISTORY_DOMAIN", "HistoryRefused", "HistoryStats", "generate", "has_history", "refuse_unless_allowed"]

ALLOWED_ENVIRONMENTS = ("development", "test")
HISTORY_DOMAIN = "history.example"
# label, latitude, longitude: what the embedded gazetteer answers for these cities (used when `places` is not given)
DEFAULT_PLACES = (("Austin, TX, United States", 30.2672, -97.7431), ("Denver, CO, United States", 39.7392, -104.9847),
                  ("Portland, OR, United States", 45.5234, -122.6762), ("Chicago, IL, United States", 41.85, -87.65),
                  ("Boston, MA, United States", 42.3584, -71.0598), ("Seattle, WA, United States", 47.6062, -122.3321),
                  ("Atlanta, GA, United States", 33.749, -84.388), ("Phoenix, AZ, United States", 33.4484, -112.074))

# Parents before children: the order in which buffered rows are written (foreign keys are checked per statement).
TABLES = ("user_account", "profile", "pro_profile", "pro_category", "payout_account", "service_request", "quote",
          "service_order", "order_event", "payment", "payment_step", "demo_charge", "ledger_account",
          "ledger_transaction", "ledger_entry", "payout")
ID_TABLES = ("user_account", "service_request", "quote", "service_order", "ledger_account", "ledger_transaction")
FLUSH_ROWS = 50_000  # buffered rows written at the next order boundary

BOOKING_SHARE = 0.18  # of the orders, direct bookings (the others come from accepted quotes)
UNHIRED_PER_HIRED = 0.8  # requests that never became an order, per request that did
PAYOUT_ACCOUNT_SHARE = 0.7  # generated professionals with a payout account (their released shares are paid out)
ADMIN_REFUND_CHANCE = 0.02  # per stay in paid / in progress / delivered: the admin refunds part of the escrow
ABANDONED_CHECKOUT_CHANCE = 0.4  # an accepted order never paid had its checkout page opened
TIMER_JITTER_S = 300  # the timers run every 5 minutes

FIRST = ("Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "James", "Isabella", "Lucas", "Mia", "Mason",
         "Amelia", "Ethan", "Harper", "Logan", "Evelyn", "Aiden", "Abigail", "Jackson", "Ella", "Sebastian", "Aria",
         "Mateo", "Chloe", "Jack", "Layla", "Owen", "Nora", "Samuel", "Zoe", "Henry", "Riley", "Leo", "Lily", "Wyatt",
         "Grace", "Julian", "Hannah", "Levi", "Priya", "Omar", "Yuki", "Fatima", "Wei", "Carlos", "Amara", "Ines")
LAST = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
        "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
        "Lee", "Perez", "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson", "Walker", "Young", "Allen",
        "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Patel", "Kim", "Okafor")
# category slug -> (request titles, budget range in major units)
JOBS = {
    "plumbing": (("Fix a leaking kitchen tap", "Replace the water heater", "Unclog the shower drain",
                  "Install a new toilet"), (80, 900)),
    "cleaning": (("Deep clean a two-bedroom flat", "Move-out cleaning", "Weekly cleaning for a family home",
                  "Clean the windows inside and out"), (60, 400)),
    "electrical": (("Install an EV charger", "Add three outlets in the garage", "Replace the fuse box",
                    "Fit ceiling lights in the living room"), (100, 1500)),
    "handyman": (("Mount a TV on the wall", "Assemble flat-pack furniture", "Fix a sticking door",
                  "Put up shelves in the study"), (50, 400)),
    "moving": (("Move a one-bedroom flat across town", "Carry a piano upstairs", "Help loading a van",
                "Office move, ten desks"), (150, 1500)),
    "tutoring": (("Maths tutoring for a high-school student", "Physics exam preparation", "Spanish conversation",
                  "Help with a chemistry course"), (40, 300)),
    "photography": (("Family portraits in the park", "Product photos for a web shop", "Wedding photographer",
                     "Headshots for the team"), (150, 2000)),
    "design": (("Redesign a small living room", "Colour scheme for the whole house", "Kitchen layout plan",
                "Logo and business cards"), (200, 2500)),
    "gardening": (("Prune the fruit trees", "Lawn care for the summer", "Plant a vegetable garden",
                   "Clear an overgrown backyard"), (60, 600)),
    "painting": (("Paint the living room and hallway", "Repaint the front fence", "Paint the kitchen cabinets",
                  "Exterior painting of a bungalow"), (200, 3000)),
}
GENERIC_JOB = (("Help with a {name} job", "A quick {name} job", "{name}: quote wanted"), (60, 800))
DISPUTE_NOTES = ("The work was not finished as agreed.", "The professional did not show up on the second day.",
                 "Part of the job has to be redone.", "The result does not match the quote.")
ADMIN_NOTES = ("Both sides heard; settled as agreed on the phone.", "Photos checked; decision per the quote.",
               "Professional confirmed the issue.", "Client's evidence reviewed.")
REFUND_REASONS = ("One item was not done", "Materials cost less than quoted", "Goodwill for the delay",
                  "Second visit not needed")
QUOTE_MESSAGES = ("Happy to help, I can start this week.", "Price includes materials and clean-up.",
                  "I have done many jobs like this one nearby.", "Fixed price, no surprises.")
WEEKDAY_HOURS = {d: ["09:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}

MIN, HOUR, DAY = 60.0, 3600.0, 86400.0
_C, _P, _A, _S = Party.CLIENT, Party.PROFESSIONAL, Party.ADMIN, Party.SYSTEM
# What happens next to an order in each state: ((action, who), weight); every pair is a row of process.TRANSITIONS
NEXT_STEPS = {
    "requested": ((("accept", _P), 80), (("decline", _P), 10), (("cancel", _C), 7), (("cancel", _P), 3)),
    "accepted": ((("pay", _C), 78), (("pay", _S), 8), (("cancel", _C), 4), (("cancel", _P), 2), (("expire", _S), 8)),
    "paid": ((("start", _P), 93), (("cancel", _C), 2.5), (("cancel", _P), 2), (("cancel", _A), 2.5)),
    "in_progress": ((("deliver", _P), 94), (("dispute", _C), 2.5), (("cancel", _P), 3.5)),
    "delivered": ((("complete", _C), 73), (("dispute", _C), 2.5), (("auto_complete", _S), 24.5)),
    "disputed": ((("resolve_refund", _A), 35), (("resolve_release", _A), 35), (("resolve_split", _A), 30)),
}
_NEXT = {state: ([step for step, _ in steps], list(itertools.accumulate(w for _, w in steps)))
         for state, steps in NEXT_STEPS.items()}
# How long an order stays in a state before the people act: (median, sigma of the log-normal, min, max) seconds.
# Accepted: paid well within the 48 h expiry; delivered: approved before the timer's reminder at 6 days (an order
# approved later would have had one); the timers' own actions come at their due time (see _next).
DELAYS = {
    "requested": (3 * HOUR, 1.2, 5 * MIN, 3 * DAY),
    "accepted": (2 * HOUR, 1.3, 2 * MIN, 40 * HOUR),
    "paid": (DAY, 1.0, 10 * MIN, 10 * DAY),
    "in_progress": (1.5 * DAY, 0.9, 30 * MIN, 14 * DAY),
    "delivered": (20 * HOUR, 1.1, 10 * MIN,
                  (process.AUTO_COMPLETE_AFTER - process.AUTO_COMPLETE_REMINDER).total_seconds() - HOUR),
    "disputed": (2 * DAY, 0.9, HOUR, 20 * DAY),
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class HistoryRefused(RuntimeError):
    """Not in development or test: nothing was written."""


class HistoryError(RuntimeError):
    """The generator would write something the services never would (a bug here): nothing of that batch is kept."""


def refuse_unless_allowed(settings) -> None:
    if settings.environment not in ALLOWED_ENVIRONMENTS:
        raise HistoryRefused(
            f"Refusing to generate synthetic history with ENVIRONMENT={settings.environment}: it writes made-up "
            "people, orders and money into the marketplace. It is for ENVIRONMENT=development or test only "
            "(the demo seed and the benchmarks); nothing was written.")


@dataclass
class HistoryStats:
    tenant_id: int
    orders: int = 0
    requests: int = 0
    quotes: int = 0
    clients_created: int = 0
    pros_created: int = 0
    order_events: int = 0
    ledger_transactions: int = 0
    ledger_entries: int = 0
    payments: int = 0
    payouts: int = 0
    orders_by_state: dict[str, int] = field(default_factory=dict)
    bulk: str = ""  # how the rows went in: "copy" or "insert"
    seconds: float = 0.0


def has_history(db: Database, tenant_id: int) -> bool:
    """Whether generated people are already in this marketplace (the seed generates once)."""
    users = SQLModel.metadata.tables["user_account"]
    with db.tenant_session(tenant_id) as session:
        return session.execute(sa.select(users.c.id).where(
            users.c.tenant_id == tenant_id, users.c.email.like(f"%@{HISTORY_DOMAIN}")).limit(1)).first() is not None


def generate(db: Database, tenant_id: int, *, orders: int, months: int, seed: int, now: datetime | None = None,
             clients: Sequence[int] | int | None = None, pros: Sequence[int] | int | None = None,
             batch: int = 20_000, places: Sequence[Place] | None = None, password_hash: str | None = None,
             bulk_engine: sa.Engine | None = None) -> HistoryStats:
    """Write `orders` orders (and their requests, quotes, events, payments and ledger) over the `months` before
    `now` (default: the current time) into the tenant. Same seed and inputs, same history.

    clients / pros: ids of existing users to reuse (they must have signed up before the activity they get), or how
    many to create (default: one client per 8 orders, one professional per 25, at least 12 and 8).
    places: where requests and people are (default: eight US cities); password_hash: the one hash every generated
    account gets (default: a random password nobody knows); bulk_engine: an engine to write through instead of
    the app's (the bench passes the owner's, whose COPY row-level security does not refuse)."""
    refuse_unless_allowed(db.settings)
    if orders < 0 or months < 1 or batch < 1:
        raise ValueError("orders >= 0, months >= 1 and batch >= 1")
    started = time.perf_counter()
    run = _Run(db, tenant_id, seed=seed, now=now or utcnow(), months=months, places=places,
               password_hash=password_hash, bulk_engine=bulk_engine)
    run.prepare(clients, pros, orders)
    run.history(orders, batch)
    run.stats.seconds = time.perf_counter() - started
    return run.stats


# ------------------------------------------------------------------------------------------------ internals

def _ts(moment: datetime) -> float:
    """Seconds since the epoch (a naive moment is UTC)."""
    return ((moment if moment.tzinfo else moment.replace(tzinfo=UTC)) - _EPOCH).total_seconds()


def _dt(seconds: float) -> datetime:
    """An aware UTC datetime, as the app's columns take them (timestamptz)."""
    return datetime.fromtimestamp(seconds, UTC)


def _day(seconds: float) -> date:
    return _dt(seconds).date()


@dataclass
class _Person:
    id: int
    signup: float
    name: str
    place: int = 0
    rate: int = 0  # professionals: hourly rate (minor units)
    categories: tuple[int, ...] = ()
    payout_since: float = math.inf  # professionals: when their payout account at the tenant's provider was set up


@dataclass
class _Order:
    id: int
    client: _Person
    pro: _Person
    price: int
    fee: int
    state: str
    created: float
    title: str
    scheduled_for: date | None
    request_id: int | None = None
    quote_id: int | None = None
    changed: float = 0.0
    held: int = 0
    refunds: int = 0  # admin partial refunds so far (their steps are refund-1, refund-2, ...)
    payment: dict | None = None
    charge: dict | None = None  # the demo gateway's record
    events: list[dict] = field(default_factory=list)


class _Ids:
    """Ids taken ahead: PostgreSQL from each table's sequence (a gap if some are left unused), SQLite after the
    largest id (one writer at a time; a concurrent writer would make the insert fail, never mix rows up)."""

    CHUNK = 10_000

    def __init__(self, postgres: bool):
        self.postgres = postgres
        self.conn: sa.Connection | None = None
        self._free: dict[str, list[int]] = {}
        self._next: dict[str, int] = {}

    def take(self, table: str) -> int:
        if not self.postgres:
            if table not in self._next:
                self._next[table] = (self.conn.execute(sa.text(f"SELECT coalesce(max(id), 0) FROM {table}")
                                                       ).scalar_one() + 1)
            value = self._next[table]
            self._next[table] = value + 1
            return value
        free = self._free.setdefault(table, [])
        if not free:
            free.extend(reversed(self.conn.execute(
                sa.text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
                {"t": table, "n": self.CHUNK}).scalars().all()))
        return free.pop()


class _Sink:
    """Buffered rows per table, written parents first: COPY, or Core executemany INSERTs."""

    def __init__(self, copy: bool):
        self.copy = copy
        self.conn: sa.Connection | None = None
        self.rows: dict[str, list[dict]] = {name: [] for name in TABLES}
        self.pending = 0
        self.written: Counter[str] = Counter()

    def add(self, table: str, row: dict) -> None:
        self.rows[table].append(row)
        self.pending += 1

    def maybe_flush(self) -> None:
        if self.pending >= FLUSH_ROWS:
            self.flush()

    def flush(self) -> None:
        for name in TABLES:
            rows = self.rows[name]
            if not rows:
                continue
            table = SQLModel.metadata.tables[name]
            if self.copy:
                self._copy(table, rows)
            else:
                self.conn.execute(sa.insert(table), rows)
            self.written[name] += len(rows)
            self.rows[name] = []
        self.pending = 0

    def _copy(self, table: sa.Table, rows: list[dict]) -> None:
        columns = list(rows[0])
        json_columns = {c.name for c in table.columns if isinstance(c.type, sa.JSON)}
        dump = [(i, name in json_columns) for i, name in enumerate(columns)]
        quoted = ", ".join(f'"{c}"' for c in columns)
        with self.conn.connection.driver_connection.cursor() as cursor:
            with cursor.copy(f"COPY {table.name} ({quoted}) FROM STDIN") as copy:
                for row in rows:
                    values = [row[c] for c in columns]
                    for i, is_json in dump:
                        if is_json:
                            values[i] = json.dumps(values[i])
                    copy.write_row(values)


class _Run:
    def __init__(self, db: Database, tenant_id: int, *, seed: int, now: datetime, months: int,
                 places: Sequence[Place] | None, password_hash: str | None, bulk_engine: sa.Engine | None):
        self.db = db
        self.tenant_id = tenant_id
        self.rng = random.Random(seed)
        self.now = _ts(now)
        self.start = self.now - months * 30.44 * DAY
        self.growth = math.log(1 + min(months, 16) / 4)  # the last month ~ (1 + months/4) x the first
        self.places = ([(p.label, p.latitude, p.longitude) for p in places] if places else list(DEFAULT_PLACES))
        self.place_weights = list(itertools.accumulate(self.rng.uniform(0.5, 2.0) for _ in self.places))
        self.password_hash = password_hash
        self.engine = bulk_engine or db.engine
        self.bulk_engine = bulk_engine
        self.postgres = self.engine.dialect.name == "postgresql"
        self.ids = _Ids(self.postgres)
        self.sink = _Sink(copy=False)
        self.stats = HistoryStats(tenant_id=tenant_id)
        self.accounts: dict[str, int] = {}
        self.state_counts: Counter[str] = Counter()

    # -------------------------------------------------------------------- transactions

    @contextmanager
    def _transaction(self) -> Iterator[sa.Connection]:
        """One transaction bound to the tenant (RLS on PostgreSQL), through the app's engine or the bulk one."""
        if self.bulk_engine is None:
            with self.db.tenant_session(self.tenant_id) as session:
                yield self._attach(session.connection())
                self.sink.flush()
        else:
            with Session(self.bulk_engine) as session, session.begin():
                self.db.bind(session, self.tenant_id)
                yield self._attach(session.connection())
                self.sink.flush()

    def _attach(self, conn: sa.Connection) -> sa.Connection:
        self.ids.conn = self.sink.conn = conn
        return conn

    def _can_copy(self, conn: sa.Connection) -> bool:
        """COPY FROM is refused on a table whose row-level security applies to this connection (the app role)."""
        if not self.postgres:
            return False
        active = conn.execute(sa.text(
            "SELECT coalesce(bool_or(row_security_active(c.oid)), false) FROM pg_class c "
            "WHERE c.relname = ANY(:names) AND c.relnamespace = 'public'::regnamespace"),
            {"names": list(TABLES)}).scalar_one()
        return not active

    # -------------------------------------------------------------------- the marketplace as it is

    def prepare(self, clients, pros, orders: int) -> None:
        tenants = SQLModel.metadata.tables["tenant"]
        with self.db.platform_session() as session:
            tenant = session.execute(sa.select(tenants).where(tenants.c.id == self.tenant_id)).mappings().first()
        if tenant is None:
            raise LookupError(f"no tenant with id {self.tenant_id}")
        self.tenant = dict(tenant)
        self.currency = tenant["currency"]
        self.unit = 10 ** minor_unit_exponent(self.currency)
        self.fee_bps = tenant["platform_fee_bps"]
        self.provider = tenant["payment_provider"] or "demo"
        self.expiry = tenant["request_expiry_days"] * DAY
        settings = self.db.settings
        self.order_url = lambda order_id, query: tenant_url(  # noqa: E731
            settings.public_url, tenant["slug"], settings.default_tenant, f"/orders/{order_id}?checkout={query}")
        if self.password_hash is None:
            self.password_hash = Passwords(settings).hash(secrets.token_urlsafe(24))  # one hash, nobody's password
        with self._transaction() as conn:
            self.sink.copy = self._can_copy(conn)
            self.stats.bulk = "copy" if self.sink.copy else "insert"
            t = self.tenant_id
            category = SQLModel.metadata.tables["category"]
            rows = conn.execute(sa.select(category.c.id, category.c.slug, category.c.name).where(
                category.c.tenant_id == t, category.c.active.is_(True)).order_by(category.c.sort, category.c.id)).all()
            if not rows:
                raise LookupError("The marketplace has no active categories: create them first (catalog).")
            self.categories = [(r.id, *JOBS.get(r.slug, _generic(r.name))) for r in rows]
            self.category_weights = [self.rng.uniform(0.4, 2.0) for _ in rows]
            self.category_cum = list(itertools.accumulate(self.category_weights))
            accounts = SQLModel.metadata.tables["ledger_account"]
            self.accounts = {r.code: r.id for r in conn.execute(sa.select(accounts.c.code, accounts.c.id).where(
                accounts.c.tenant_id == t, accounts.c.currency == self.currency, accounts.c.kind != "escrow"))}
            self.admin_id = self._admin(conn)
            n_clients = clients if isinstance(clients, int) else max(12, orders // 8)
            n_pros = pros if isinstance(pros, int) else max(8, orders // 25)
            self.clients = (self._existing(conn, clients, Role.CLIENT) if _is_ids(clients)
                            else self._people(Role.CLIENT, n_clients))
            self.pros = (self._existing(conn, pros, Role.PROFESSIONAL) if _is_ids(pros)
                         else self._people(Role.PROFESSIONAL, n_pros))
            if not self.clients or not self.pros:
                raise ValueError("History needs at least one client and one professional.")
        self.stats.clients_created = 0 if _is_ids(clients) else len(self.clients)
        self.stats.pros_created = 0 if _is_ids(pros) else len(self.pros)
        self._index_people()

    def _admin(self, conn: sa.Connection) -> int:
        users = SQLModel.metadata.tables["user_account"]
        found = conn.execute(sa.select(users.c.id).where(users.c.tenant_id == self.tenant_id,
                                                         users.c.role == Role.ADMIN).order_by(users.c.id).limit(1)
                             ).scalar()
        if found is not None:
            return found
        return self._user(Role.ADMIN, self.start - 61 * DAY, "Harper Admin", 0).id

    def _existing(self, conn: sa.Connection, ids: Sequence[int], role: Role) -> list[_Person]:
        users, profiles = SQLModel.metadata.tables["user_account"], SQLModel.metadata.tables["profile"]
        pro_profiles, pro_categories = SQLModel.metadata.tables["pro_profile"], SQLModel.metadata.tables["pro_category"]
        t = self.tenant_id
        rows = conn.execute(sa.select(users.c.id, users.c.role, users.c.created_at, profiles.c.full_name)
                            .join(profiles, profiles.c.user_id == users.c.id, isouter=True)
                            .where(users.c.tenant_id == t, users.c.id.in_(list(ids)))).all()
        if len(rows) != len(set(ids)) or any(r.role != role for r in rows):
            raise ValueError(f"every reused id must be a {role} of this marketplace")
        rates = dict(conn.execute(sa.select(pro_profiles.c.user_id, pro_profiles.c.hourly_rate_minor).where(
            pro_profiles.c.tenant_id == t, pro_profiles.c.user_id.in_(list(ids)))).all())
        cats: dict[int, list[int]] = {}
        for user_id, category_id in conn.execute(sa.select(pro_categories.c.user_id, pro_categories.c.category_id)
                                                 .where(pro_categories.c.tenant_id == t,
                                                        pro_categories.c.user_id.in_(list(ids)))):
            cats.setdefault(user_id, []).append(category_id)
        links = SQLModel.metadata.tables["payout_account"]
        since = {pro_id: _ts(at) for pro_id, at in conn.execute(sa.select(links.c.pro_id, links.c.created_at).where(
            links.c.tenant_id == t, links.c.provider == self.provider, links.c.pro_id.in_(list(ids))))}
        known = {c for c, *_ in self.categories}
        return [_Person(id=r.id, signup=_ts(r.created_at), name=r.full_name or f"User {r.id}",
                        place=self._pick_place(), rate=rates.get(r.id) or self._rate(),
                        categories=tuple(c for c in cats.get(r.id, ()) if c in known),
                        payout_since=since.get(r.id, math.inf)) for r in rows]

    def _people(self, role: Role, n: int) -> list[_Person]:
        """n new people signing up over the span (a tenth of them before it, so that the first days have someone);
        professionals serve one or two categories, the first ones covering every category."""
        early = max(1, n // 10, len(self.categories) if role == Role.PROFESSIONAL else 0)
        signups = sorted([self.start - self.rng.uniform(1, 60) * DAY for _ in range(min(early, n))]
                         + [self._moment(self.start, self.now - HOUR) for _ in range(n - min(early, n))])
        people = []
        for i, signup in enumerate(signups):
            name = f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}"
            categories: tuple[int, ...] = ()
            if role == Role.PROFESSIONAL:
                first = (self.categories[i % len(self.categories)][0] if i < len(self.categories)
                         else self._pick_category()[0])
                second = self._pick_category()[0]
                categories = (first,) if second == first or self.rng.random() < 0.6 else (first, second)
            people.append(self._user(role, signup, name, self._pick_place(), categories))
        return people

    def _user(self, role: Role, signup: float, name: str, place: int, categories: tuple[int, ...] = ()) -> _Person:
        t = self.tenant_id
        person = _Person(id=self.ids.take("user_account"), signup=signup, name=name, place=place,
                         categories=categories)
        label, lat, lon = self.places[place]
        first, last = name.lower().split(" ", 1)
        self.sink.add("user_account", {
            "tenant_id": t, "id": person.id, "email": f"{first}.{last}.{person.id}@{HISTORY_DOMAIN}",
            "password_hash": self.password_hash, "role": str(role), "status": "active",
            "email_verified_at": _dt(min(signup + self.rng.uniform(1, 30) * MIN, self.now)),
            "created_at": _dt(signup), "last_login_at": None, "phone_e164": "", "phone_verified_at": None})
        self.sink.add("profile", {"tenant_id": t, "user_id": person.id, "full_name": name, "city": label,
                                  "avatar_key": "", "updated_at": _dt(signup)})
        if role == Role.PROFESSIONAL:
            person.rate = self._rate()
            if self.rng.random() < PAYOUT_ACCOUNT_SHARE:
                person.payout_since = signup + 5 * MIN
            self.sink.add("pro_profile", {
                "tenant_id": t, "user_id": person.id, "headline": "", "bio": "", "skills": [], "city": label,
                "latitude": lat, "longitude": lon, "radius_km": 40, "phone_verified": False,
                "hourly_rate_minor": person.rate, "currency": self.currency, "availability": WEEKDAY_HOURS,
                "blocked_dates": [], "verified": self.rng.random() < 0.3, "updated_at": _dt(signup)})
            for category_id in categories:
                self.sink.add("pro_category", {"tenant_id": t, "user_id": person.id, "category_id": category_id})
            if person.payout_since < math.inf:
                self.sink.add("payout_account", {
                    "tenant_id": t, "pro_id": person.id, "provider": self.provider,
                    "account_id": f"{self.provider}_acct_{person.id}", "created_at": _dt(person.payout_since)})
        return person

    def _index_people(self) -> None:
        """Who is there at a given moment: signups sorted, per category and per category and place."""
        self.clients.sort(key=lambda p: p.signup)
        self.client_signups = [p.signup for p in self.clients]
        self.pros.sort(key=lambda p: p.signup)
        self.pro_signups = [p.signup for p in self.pros]
        self.by_category: dict[int, list[_Person]] = {}
        self.by_category_place: dict[tuple[int, int], list[_Person]] = {}
        for pro in self.pros:
            for category_id in pro.categories:
                self.by_category.setdefault(category_id, []).append(pro)
                self.by_category_place.setdefault((category_id, pro.place), []).append(pro)
        self.signups_of = {key: [p.signup for p in group] for key, group in
                           [*self.by_category.items(), *self.by_category_place.items()]}
        served = [i for i, (category_id, *_) in enumerate(self.categories) if category_id in self.by_category]
        if not served:
            raise ValueError("No professional serves any of the marketplace's categories.")
        self.served = served
        self.served_cum = list(itertools.accumulate(self.category_weights[i] for i in served))

    # -------------------------------------------------------------------- random helpers

    def _moment(self, lo: float, hi: float) -> float:
        """A moment in [lo, hi) with growth (density ~ e^(g x)); weekends a little quieter."""
        g = self.growth
        while True:
            u = self.rng.random()
            x = math.log1p(u * math.expm1(g)) / g if g > 0 else u
            moment = lo + x * (hi - lo)
            if _dt(moment).weekday() < 5 or self.rng.random() < 0.7:
                return moment

    def _delay(self, median: float, sigma: float, lo: float, hi: float) -> float:
        return min(hi, max(lo, self.rng.lognormvariate(math.log(median), sigma)))

    def _pick_place(self) -> int:
        return self.rng.choices(range(len(self.places)), cum_weights=self.place_weights)[0]

    def _pick_category(self, served: bool = False) -> tuple:
        if served:
            i = self.rng.choices(self.served, cum_weights=self.served_cum)[0]
        else:
            i = self.rng.choices(range(len(self.categories)), cum_weights=self.category_cum)[0]
        return self.categories[i]

    def _rate(self) -> int:
        return self.rng.randrange(35, 125, 5) * self.unit

    def _client_at(self, moment: float) -> _Person:
        """A client signed up before `moment`: often a recent signup (new clients order soon), else anyone."""
        n = max(1, bisect.bisect_right(self.client_signups, moment - 5 * MIN))
        if self.rng.random() < 0.35:
            return self.clients[n - 1 - int(self.rng.random() * max(1, n // 7))]
        return self.clients[self.rng.randrange(n)]

    def _pros_for(self, category_id: int, place: int, moment: float, k: int) -> list[_Person]:
        """Up to k distinct professionals of the category signed up before `moment`, mostly from the place."""
        cut = moment - 10 * MIN
        wide = self.by_category.get(category_id, [])
        n_wide = bisect.bisect_right(self.signups_of.get(category_id, []), cut)
        local = self.by_category_place.get((category_id, place), [])
        n_local = bisect.bisect_right(self.signups_of.get((category_id, place), []), cut)
        chosen: list[_Person] = []
        for _ in range(k * 3):
            if len(chosen) == k or (n_wide == 0 and n_local == 0):
                break
            pro = (local[self.rng.randrange(n_local)] if n_local and self.rng.random() < 0.75
                   else wide[self.rng.randrange(n_wide)] if n_wide else local[self.rng.randrange(n_local)])
            if pro not in chosen:
                chosen.append(pro)
        return chosen

    def _round_price(self, low: float, high: float) -> int:
        step = 5 * self.unit
        return max(step, int(self.rng.uniform(low, high) * self.unit / step) * step)

    # -------------------------------------------------------------------- the history

    def history(self, orders: int, batch: int) -> None:
        bookings = sum(self.rng.random() < BOOKING_SHARE for _ in range(orders))
        hired = orders - bookings
        unhired = round(hired * UNHIRED_PER_HIRED)
        # nothing happens before someone is there to do it (reused people may have signed up recently)
        self.first = max(self.start, self.client_signups[0] + 10 * MIN, self.pro_signups[0] + 20 * MIN)
        if self.first >= self.now - 10 * MIN:
            raise ValueError("The clients and professionals given signed up too recently to have any history.")
        plan = sorted([(self._moment(self.first, self.now - 10 * MIN), "quote") for _ in range(hired)]
                      + [(self._moment(self.first, self.now - 10 * MIN), "booking") for _ in range(bookings)]
                      + [(self._moment(self.first, self.now - 10 * MIN), "request") for _ in range(unhired)])
        done = 0
        while done < len(plan):
            end, taken = done, 0
            while end < len(plan) and (taken < batch or plan[end][1] == "request"):
                taken += plan[end][1] != "request"
                end += 1
            with self._transaction():
                for moment, kind in plan[done:end]:
                    if kind == "quote":
                        self._hired_request(moment)
                    elif kind == "booking":
                        self._booking(moment)
                    else:
                        self._unhired_request(moment)
                    self.sink.maybe_flush()
            done = end
        written = self.sink.written
        self.stats.requests, self.stats.quotes = written["service_request"], written["quote"]
        self.stats.orders, self.stats.order_events = written["service_order"], written["order_event"]
        self.stats.ledger_transactions, self.stats.ledger_entries = (written["ledger_transaction"],
                                                                     written["ledger_entry"])
        self.stats.payments, self.stats.payouts = written["payment"], written["payout"]
        self.stats.orders_by_state = dict(sorted(self.state_counts.items()))

    def _request_row(self, moment: float, category: tuple, place: int, client: _Person, status: str) -> dict:
        category_id, titles, (low, high) = category
        label, lat, lon = self.places[place]
        budget_min = self._round_price(low, (low + high) / 2)
        start = _day(moment + self.rng.uniform(2, 21) * DAY)
        row = {"tenant_id": self.tenant_id, "id": self.ids.take("service_request"), "client_id": client.id,
               "category_id": category_id, "title": self.rng.choice(titles),
               "description": "Details in the photos and happy to answer questions. Flexible on the date.",
               "city": label, "latitude": lat, "longitude": lon, "budget_min_minor": budget_min,
               "budget_max_minor": max(budget_min, self._round_price((low + high) / 2, high)),
               "currency": self.currency, "preferred_start": start,
               "preferred_end": start + timedelta(days=self.rng.randrange(0, 8)) if self.rng.random() < 0.5 else None,
               "photo_keys": [], "status": status, "created_at": _dt(moment), "expires_at": _dt(moment + self.expiry)}
        self.sink.add("service_request", row)
        return row

    def _quote_times(self, moment: float, k: int, until: float) -> list[float]:
        """When k quotes arrive (before `until`): the first minutes to days after the request, the others later."""
        times, at = [], moment
        for i in range(k):
            at += (self._delay(150 * MIN, 1.2, 5 * MIN, 4 * DAY) if i == 0
                   else self._delay(6 * HOUR, 1.0, 10 * MIN, 2 * DAY))
            if at >= until:
                break
            times.append(at)
        return times

    def _quote_row(self, request: dict, pro: _Person, at: float, status: str, category: tuple) -> dict:
        _, _, (low, high) = category
        row = {"tenant_id": self.tenant_id, "id": self.ids.take("quote"), "request_id": request["id"],
               "pro_id": pro.id, "price_minor": self._round_price(low * 0.9, high * 1.1), "currency": self.currency,
               "message": self.rng.choice(QUOTE_MESSAGES), "duration_hours": self.rng.randrange(1, 17),
               "valid_until": _day(at + 14 * DAY), "status": status, "created_at": _dt(at)}
        self.sink.add("quote", row)
        return row

    def _hired_request(self, moment: float) -> None:
        category = self._pick_category(served=True)
        place = self._pick_place()
        k = self.rng.choices((1, 2, 3, 4), (30, 30, 25, 15))[0]
        window = min(self.expiry - HOUR, 13 * DAY)  # accepted before the request expires and the quote lapses
        times = self._quote_times(moment, k, moment + window * 0.6) or [moment + min(window * 0.3, 2 * HOUR)]
        accepted_at = min(times[-1] + self._delay(10 * HOUR, 1.1, 10 * MIN, 5 * DAY), moment + window)
        if accepted_at > self.now - MIN:  # the whole request moves back so that the hire happened already
            shift = accepted_at - self.now + self.rng.uniform(1 * MIN, 3 * HOUR)
            if moment - shift < self.first:
                return self._booking(moment)
            moment, times, accepted_at = moment - shift, [t - shift for t in times], accepted_at - shift
        pros = self._pros_for(category[0], place, moment, len(times))
        if not pros:  # nobody of that category had joined yet: this client booked someone directly instead
            return self._booking(moment)
        times = times[:len(pros)]
        client = self._client_at(moment)
        request = self._request_row(moment, category, place, client, "closed")
        chosen = self.rng.randrange(len(pros))
        quotes = []
        for i, (pro, at) in enumerate(zip(pros, times, strict=True)):
            status = "accepted" if i == chosen else "withdrawn" if self.rng.random() < 0.05 else "declined"
            quotes.append(self._quote_row(request, pro, at, status, category))
        quote, pro = quotes[chosen], pros[chosen]
        plan = self._open(client, pro, accepted_at, price=quote["price_minor"], title=request["title"],
                           scheduled_for=request["preferred_start"], request_id=request["id"], quote_id=quote["id"])
        self._event(plan, "accept_quote", "", "accepted", client.id, Party.CLIENT, accepted_at,
                    f"Quote #{quote['id']} accepted")
        self._live(plan)

    def _unhired_request(self, moment: float) -> None:
        category = self._pick_category()
        place = self._pick_place()
        client = self._client_at(moment)
        open_now = moment + self.expiry > self.now
        status = ("open" if self.rng.random() < 0.75 else "closed") if open_now else (
            "expired" if self.rng.random() < 0.7 else "closed")
        request = self._request_row(moment, category, place, client, status)
        k = self.rng.choices((0, 1, 2, 3, 4), (20, 30, 25, 15, 10))[0]
        times = [t for t in self._quote_times(moment, k, moment + self.expiry) if t < self.now]
        for pro, at in zip(self._pros_for(category[0], place, moment, len(times)), times, strict=False):
            withdrawn = self.rng.random() < 0.05
            self._quote_row(request, pro, at, "withdrawn" if withdrawn else "sent" if status == "open" else "declined",
                            category)

    def _booking(self, moment: float) -> None:
        client = self._client_at(moment)
        n = max(1, bisect.bisect_right(self.pro_signups, moment - 10 * MIN))
        pro = self.pros[self.rng.randrange(n)]
        hours = self.rng.randrange(1, 9)
        day = _day(moment + self.rng.uniform(1, 14) * DAY)
        while day.weekday() >= 5:
            day += timedelta(days=1)
        plan = self._open(client, pro, moment, price=pro.rate * hours, title=f"{hours} h with {pro.name}",
                           scheduled_for=day)
        self._event(plan, "book", "", "requested", client.id, Party.CLIENT, moment,
                    self.rng.choice(("", "", "Please bring a ladder.", "Parking in front of the house.")))
        self._live(plan)

    def _open(self, client: _Person, pro: _Person, at: float, *, price: int, title: str, scheduled_for: date | None,
              request_id: int | None = None, quote_id: int | None = None) -> _Order:
        return _Order(id=self.ids.take("service_order"), client=client, pro=pro, price=price,
                      fee=fee_for(price, self.fee_bps), state="", created=at, changed=at, title=title,
                      scheduled_for=scheduled_for, request_id=request_id, quote_id=quote_id)

    # -------------------------------------------------------------------- an order's life

    def _next(self, plan: _Order, t: float) -> tuple[str, Party, float, str] | None:
        """The next transition from the order's state (action, who, when, note); None when it has ended."""
        choice = _NEXT.get(plan.state)
        if choice is None:
            return None
        rng, state = self.rng, plan.state
        steps, cum_weights = choice
        action, who = rng.choices(steps, cum_weights=cum_weights)[0]
        note = (rng.choice(ADMIN_NOTES) if who == Party.ADMIN else
                rng.choice(DISPUTE_NOTES) if action == "dispute" else "")
        if action == "expire":  # the timer, on its first run after 48 hours
            return action, who, t + process.UNPAID_EXPIRY.total_seconds() + rng.uniform(1, TIMER_JITTER_S), note
        if action == "auto_complete":
            return action, who, t + process.AUTO_COMPLETE_AFTER.total_seconds() + rng.uniform(1, TIMER_JITTER_S), note
        median, sigma, lo, hi = DELAYS[state]
        return action, who, t + self._delay(median, sigma, lo, hi), note

    def _live(self, plan: _Order) -> None:
        """Take the order from its opening state along transitions until it ends or the next one lies after now."""
        t = plan.changed
        while (step := self._next(plan, t)) is not None:
            action, who, at, note = step
            if plan.state in ("paid", "in_progress", "delivered") and self.rng.random() < ADMIN_REFUND_CHANCE:
                refund_at = t + (min(at, self.now) - t) * self.rng.uniform(0.2, 0.8)
                if plan.held > self.unit:
                    self._admin_refund(plan, refund_at)
            if action == "auto_complete":
                reminder = (t + (process.AUTO_COMPLETE_AFTER - process.AUTO_COMPLETE_REMINDER).total_seconds()
                            + self.rng.uniform(1, TIMER_JITTER_S))
                if reminder <= self.now:
                    left = plan.changed + process.AUTO_COMPLETE_AFTER.total_seconds() - reminder
                    hours = max(1, math.ceil(left / HOUR))
                    self._event(plan, process.REMIND_AUTO_COMPLETE, "delivered", "delivered", None, Party.SYSTEM,
                                reminder, f"The client was reminded: the order completes automatically in "
                                          f"{hours} hour{'' if hours == 1 else 's'}.")
            if at > self.now:
                break
            self._transition(plan, action, who, at, note)
            t = at
        self._finish(plan)

    def _actor(self, plan: _Order, who: Party) -> int | None:
        return {Party.CLIENT: plan.client.id, Party.PROFESSIONAL: plan.pro.id, Party.ADMIN: self.admin_id,
                Party.SYSTEM: None}[who]

    def _transition(self, plan: _Order, action: str, who: Party, at: float, note: str) -> None:
        """One row of process.TRANSITIONS applied as OrderService._apply does: payment effect, then the event."""
        transition = process.find(action, plan.state, who)
        if transition is None:
            raise HistoryError(f"no transition {action!r} from {plan.state!r} by {who}")
        if transition.needs_note and not note:
            raise HistoryError(f"{action!r} needs a note")
        actor_id = self._actor(plan, who)
        if transition.effect == Effect.HOLD:
            self._hold(plan, actor_id, at)
        elif transition.effect == Effect.RELEASE:
            self._release(plan, actor_id, at, step=action)
        elif transition.effect == Effect.REFUND:
            self._step(plan, action, action, actor_id, who, note, None, at)
            self._refund(plan, None, actor_id, at, step=action)
        elif transition.effect == Effect.SPLIT:
            amount = max(1, int(plan.held * self.rng.uniform(0.2, 0.7)) // self.unit * self.unit)
            self._step(plan, action, action, actor_id, who, note, amount, at)
            self._refund(plan, amount, actor_id, at, step=f"{action}-refund")
            self._release(plan, actor_id, at, step=f"{action}-release")
        elif plan.state == "accepted" and self.rng.random() < ABANDONED_CHECKOUT_CHANCE:
            self._checkout(plan, plan.changed + (at - plan.changed) * self.rng.uniform(0.1, 0.9))
        target = transition.target.value
        self._event(plan, action, plan.state, target, actor_id, who, at, note)
        plan.state, plan.changed = target, at

    def _event(self, plan: _Order, action: str, from_state: str, to_state: str, actor_id: int | None, who: Party,
               at: float, note: str) -> None:
        if not plan.events:
            plan.state = to_state
        plan.events.append({"tenant_id": self.tenant_id, "order_id": plan.id, "action": action,
                             "from_state": from_state, "to_state": to_state, "actor_id": actor_id,
                             "actor_role": who.value, "note": note[:500], "at": _dt(at)})

    def _finish(self, plan: _Order) -> None:
        if plan.state == "accepted" and plan.payment is None and self.rng.random() < ABANDONED_CHECKOUT_CHANCE:
            self._checkout(plan, plan.changed + (self.now - plan.changed) * self.rng.uniform(0.1, 0.9))
        self.sink.add("service_order", {
            "tenant_id": self.tenant_id, "id": plan.id, "client_id": plan.client.id, "pro_id": plan.pro.id,
            "request_id": plan.request_id, "quote_id": plan.quote_id, "title": plan.title[:120],
            "price_minor": plan.price, "currency": self.currency, "platform_fee_minor": plan.fee,
            "scheduled_for": plan.scheduled_for, "state": plan.state, "invoice_key": "",
            "created_at": _dt(plan.created), "state_changed_at": _dt(plan.changed)})
        for event in plan.events:
            self.sink.add("order_event", event)
        if plan.payment is not None:
            self.sink.add("payment", plan.payment)
        if plan.charge is not None:
            self.sink.add("demo_charge", plan.charge)
        self.state_counts[plan.state] += 1

    # -------------------------------------------------------------------- money, as backend/payments books it

    def _account(self, spec: tuple[str, str, int | None]) -> int:
        code, kind, party = spec
        account_id = self.accounts.get(code)
        if account_id is None:
            account_id = self.accounts[code] = self.ids.take("ledger_account")
            self.sink.add("ledger_account", {"tenant_id": self.tenant_id, "id": account_id, "code": code,
                                             "kind": kind, "party_id": party, "currency": self.currency})
        return account_id

    def _post(self, plan: _Order, kind: str, key: str, memo: str, actor_id: int | None, at: float,
              lines: list[tuple[tuple[str, str, int | None], int]]) -> None:
        """Ledger.post: a balanced transaction (zero lines dropped), its key o<order>-<step>."""
        lines = [(spec, amount) for spec, amount in lines if amount != 0]
        if not lines or sum(amount for _, amount in lines) != 0:
            raise HistoryError(f"unbalanced or empty ledger transaction {key}")
        tx = self.ids.take("ledger_transaction")
        self.sink.add("ledger_transaction", {"tenant_id": self.tenant_id, "id": tx, "order_id": plan.id,
                                             "kind": kind, "idempotency_key": key, "memo": memo[:500],
                                             "actor_id": actor_id, "created_at": _dt(at)})
        for spec, amount in lines:
            self.sink.add("ledger_entry", {"tenant_id": self.tenant_id, "transaction_id": tx,
                                           "account_id": self._account(spec), "amount_minor": amount,
                                           "currency": self.currency})

    def _checkout(self, plan: _Order, at: float) -> None:
        """Checkout.start: the payment row (and the demo gateway's charge) when the client opens the payment page."""
        t, o = self.tenant_id, plan.id
        session_id = f"demo_cs_t{t}_h{o}" if self.provider == "demo" else f"cs_history_t{t}_o{o}"
        plan.payment = {"tenant_id": t, "order_id": o, "provider": self.provider, "session_id": session_id,
                         "reference": "", "amount_minor": plan.price, "currency": self.currency,
                         "status": PaymentStatus.CHECKOUT.value, "captured_minor": 0, "refunded_minor": 0,
                         "released_minor": 0, "created_at": _dt(at), "updated_at": _dt(at)}
        if self.provider == "demo":
            plan.charge = {"tenant_id": t, "session_id": session_id, "reference": "",
                            "checkout_key": f"t{t}-o{o}-checkout-demo", "order_id": o, "amount_minor": plan.price,
                            "currency": self.currency, "description": plan.title[:200],
                            "success_url": self.order_url(o, session_id), "cancel_url": self.order_url(o, "cancelled"),
                            "card_last4": "", "status": "open", "captured_minor": 0, "released_minor": 0,
                            "refunded_minor": 0, "applied_keys": [], "created_at": _dt(at)}

    def _apply_key(self, plan: _Order, key: str) -> None:
        if plan.charge is not None:
            plan.charge["applied_keys"] = [*plan.charge["applied_keys"], key]

    def _hold(self, plan: _Order, actor_id: int | None, at: float) -> None:
        """Escrow.hold: the authorised payment into the order's escrow."""
        self._checkout(plan, max(plan.changed + 1, at - self.rng.uniform(1, 10) * MIN))
        reference = (f"demo_pi_t{self.tenant_id}_h{plan.id}" if self.provider == "demo"
                     else f"pi_history_t{self.tenant_id}_o{plan.id}")
        payment = plan.payment
        payment["reference"], payment["status"], payment["updated_at"] = reference, PaymentStatus.AUTHORIZED.value, _dt(at)
        if plan.charge is not None:
            plan.charge.update(status="held", card_last4="4242", reference=reference)
        self._post(plan, "hold", f"o{plan.id}-hold", f"{self.provider} {reference}", actor_id, at,
                   [(L.client_funding(plan.client.id), -plan.price), (L.escrow(plan.id), plan.price)])
        plan.held = plan.price

    def _ensure_captured(self, plan: _Order) -> None:
        payment = plan.payment
        if payment["status"] == PaymentStatus.AUTHORIZED:
            payment["status"], payment["captured_minor"] = PaymentStatus.CAPTURED.value, payment["amount_minor"]
            if plan.charge is not None:
                plan.charge.update(status="captured", captured_minor=payment["amount_minor"])
                self._apply_key(plan, f"t{self.tenant_id}-o{plan.id}-capture")

    def _release(self, plan: _Order, actor_id: int | None, at: float, step: str) -> None:
        """Escrow.release: what is left in escrow to the professional minus the fee; the order keeps that fee. Then
        the payout job (Payouts.pay_out_order) if the professional has a payout account."""
        remaining = plan.held
        if remaining <= 0:
            return
        self._ensure_captured(plan)
        fee = fee_for(remaining, self.fee_bps)
        self._post(plan, "release", f"o{plan.id}-{step}", f"fee {self.fee_bps / 100:g}%", actor_id, at,
                   [(L.escrow(plan.id), -remaining), (L.pro_payable(plan.pro.id), remaining - fee),
                    (L.platform_fees(), fee)])
        plan.held, plan.fee = 0, fee
        paid_at = at + self.rng.uniform(2, 90)
        share = remaining - fee
        if plan.pro.payout_since <= at and share > 0 and paid_at <= self.now:
            self._payout(plan, share, paid_at)

    def _payout(self, plan: _Order, share: int, at: float) -> None:
        key = f"t{self.tenant_id}-o{plan.id}-payout"
        transfer_id = (f"demo_tr_{hashlib.sha256(key.encode()).hexdigest()[:16]}" if self.provider == "demo"
                       else f"tr_history_t{self.tenant_id}_o{plan.id}")
        plan.payment["released_minor"] += share
        if plan.charge is not None:
            plan.charge["released_minor"] += share
            self._apply_key(plan, key)
        self.sink.add("payout", {"tenant_id": self.tenant_id, "pro_id": plan.pro.id, "order_id": plan.id,
                                 "provider": self.provider, "transfer_id": transfer_id, "amount_minor": share,
                                 "currency": self.currency, "created_at": _dt(at)})
        self._post(plan, "payout", f"o{plan.id}-payout", transfer_id, plan.pro.id, at,
                   [(L.pro_payable(plan.pro.id), -share), (L.pro_paid_out(plan.pro.id), share)])

    def _refund(self, plan: _Order, amount: int | None, actor_id: int | None, at: float, step: str,
                reason: str = "") -> int:
        """Escrow.refund: give escrowed money back (all of it when amount is None); voids an untouched hold."""
        remaining = plan.held
        if amount is None and remaining == 0:
            return 0
        amount = remaining if amount is None else amount
        if not 0 < amount <= remaining:
            raise HistoryError(f"refund of {amount} with {remaining} in escrow")
        payment, key = plan.payment, f"t{self.tenant_id}-o{plan.id}-{step}"
        if payment["status"] == PaymentStatus.AUTHORIZED and amount == payment["amount_minor"]:
            payment["status"] = PaymentStatus.VOIDED.value
            if plan.charge is not None:
                plan.charge.update(status="voided", refunded_minor=amount)
        else:
            self._ensure_captured(plan)
            if plan.charge is not None:
                charge = plan.charge
                charge["refunded_minor"] += amount
                if charge["refunded_minor"] == charge["captured_minor"]:
                    charge["status"] = "refunded"
        self._apply_key(plan, key)
        payment["refunded_minor"] += amount
        payment["updated_at"] = _dt(at)
        self._post(plan, "refund", f"o{plan.id}-{step}", reason, actor_id, at,
                   [(L.escrow(plan.id), -amount), (L.refunds(plan.client.id), amount)])
        plan.held -= amount
        return amount

    def _step(self, plan: _Order, step: str, action: str, actor_id: int | None, who: Party, note: str,
              amount: int | None, at: float) -> None:
        """PaymentSteps.begin + finish: the write-ahead row of a step giving money back, done with the books."""
        self.sink.add("payment_step", {
            "tenant_id": self.tenant_id, "order_id": plan.id, "step": step, "action": action, "actor_id": actor_id,
            "actor_role": "" if who == Party.SYSTEM else who.value, "note": note[:500], "amount_minor": amount,
            "status": StepStatus.DONE.value, "attempts": 1, "last_error": "", "created_at": _dt(at),
            "updated_at": _dt(at)})

    def _admin_refund(self, plan: _Order, at: float) -> None:
        """OrderService.refund: the admin gives part of the escrow back; an audit row, the state unchanged."""
        amount = max(self.unit, int(plan.held * self.rng.uniform(0.1, 0.4)) // self.unit * self.unit)
        if amount >= plan.held:
            return
        plan.refunds += 1
        step, reason = f"refund-{plan.refunds}", self.rng.choice(REFUND_REASONS)
        self._step(plan, step, "admin_refund", self.admin_id, Party.ADMIN, reason, amount, at)
        self._refund(plan, amount, self.admin_id, at, step=step, reason=reason)
        self._event(plan, "refund", plan.state, plan.state, self.admin_id, Party.ADMIN, at,
                    f"Refunded {format_money(amount, self.currency)}: {reason}")


def _is_ids(value: Any) -> bool:
    return value is not None and not isinstance(value, int)


def _generic(name: str) -> tuple:
    titles, budget = GENERIC_JOB
    return tuple(t.format(name=name) for t in titles), budget
