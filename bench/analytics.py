"""The admin dashboard at scale: 10 marketplaces and ANALYTICS_BENCH_ORDERS orders (default 1,000,000) with their
requests, quotes, events, payments and ledger, on a throwaway PostgreSQL database.

- load: backend/history.py writes 12 months of history per marketplace (ANALYTICS_BENCH_ORDERS / 10 orders each),
  COPYed through the database owner's connection (the superuser that created the throwaway database: row-level
  security does not apply to it, and PostgreSQL refuses COPY where it does; the app role would INSERT instead),
  then ANALYZE; then `AnalyticsService.rebuild` per marketplace (the rollup tables from the raw rows), timed, then
  VACUUM ANALYZE of the rollup tables (what autovacuum does after a bulk insert; the bench's server may run without
  it, and a planner that believes the rollups empty sorts on disk instead of hashing).
- dashboard of one marketplace, for three ranges (30 days, 90 days, 12 months), every KPI, chart and table:
  cold = rollups built, cache empty (a new LocalCache before each call); cached = the same call again
  (LocalCache in process, and RedisCache when a local Redis answers); baseline in the same run: the same
  dashboard from the raw rows (`backend/analytics/naive.py`, no rollups, no cache). The rollup and naive
  dashboards must show the same numbers (checked for every range).
- memory: tracemalloc peak of one rebuild, one cold, one cached and one naive dashboard (measured in separate calls:
  tracing slows Python down), and this process's RSS.

ANALYTICS_BENCH_ORDERS=20000 for a quick run; ANALYTICS_BENCH_RUNS measured calls per range and mode (default 30;
the naive baseline gets at most 10); ANALYTICS_BENCH_TENANTS marketplaces (default 10; the orders are split between
them, so ANALYTICS_BENCH_ORDERS=100000 ANALYTICS_BENCH_TENANTS=1 profiles one full-size marketplace quickly).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

import psutil
import redis
import sqlalchemy as sa

from backend import history
from backend.analytics import AnalyticsService, LocalCache, Period
from backend.analytics.adapters.redis_cache import RedisCache
from backend.analytics.naive import naive_dashboard
from backend.bootstrap import build_services
from backend.config import Settings
from backend.db import utcnow
from backend.identity import Caller, Role
from backend.jobqueue import InlineJobQueue
from backend.tenancy.models import Tenant
from bench.login import throwaway_database
from bench.orders import BrokenInvariant
from bench.stats import MIB, Table, percentile, self_peak_rss_mib

ORDERS = int(os.environ.get("ANALYTICS_BENCH_ORDERS", "1000000"))
TENANTS = max(1, int(os.environ.get("ANALYTICS_BENCH_TENANTS", "10")))
MONTHS = 12
RUNS = max(5, int(os.environ.get("ANALYTICS_BENCH_RUNS", "30")))
NAIVE_RUNS = min(RUNS, 10)
REDIS_URL = os.environ.get("ANALYTICS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
RANGES = (("30 days", 30), ("90 days", 90), ("12 months", 365))
RAW_TABLES = ("user_account", "service_request", "quote", "service_order", "order_event", "payment",
              "ledger_account", "ledger_transaction", "ledger_entry", "payout")
ROLLUP_TABLES = ("analytics_daily", "analytics_request", "analytics_funnel_day", "analytics_client_day",
                 "analytics_actor_day", "analytics_watermark")
HEADERS = ["range", "dashboard", "n", "p50 ms", "p95 ms", "p99 ms", "p95 ratio to baseline"]


def _timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def _traced_peak_mib(fn) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / MIB
    finally:
        tracemalloc.stop()


def _rss_mib() -> float:
    return psutil.Process().memory_info().rss / MIB


def _numbers(dashboard) -> dict:
    """What the page shows, without when it was computed."""
    return {k: v for k, v in dataclasses.asdict(dashboard).items() if k != "generated_at"}


def _differences(a: dict, b: dict) -> list[str]:
    return [f"{key}: rollups {str(a[key])[:160]} vs raw {str(b[key])[:160]}" for key in a if a[key] != b.get(key)]


def analytics_benchmark() -> list[Table]:
    per_tenant = [ORDERS // TENANTS + (i < ORDERS % TENANTS) for i in range(TENANTS)]
    load = Table(f"Bulk history: {ORDERS:,} orders in {TENANTS} marketplaces ({MONTHS} months each), then the "
                 "rollups", ["step", "n", "rows", "seconds", "rows/s", "per marketplace p50 s", "max s"])
    dash = Table(f"Admin dashboard of one marketplace ({per_tenant[0]:,} orders; whole page: KPIs vs the previous "
                 "period, series, funnel, cohorts, supply and demand)", HEADERS)
    memory = Table("Memory (this Python process)", ["what", "tracemalloc peak MiB", "notes"])
    failures: list[str] = []
    rss_before = _rss_mib()
    with throwaway_database() as url, tempfile.TemporaryDirectory(prefix="mp-bench-analytics-") as tmp:
        settings = Settings(_env_file=None, environment="development", database_url=url, data_dir=Path(tmp),
                            redis_url=None)
        svc = build_services(settings, jobs=InlineJobQueue(raise_errors=True))
        # the owner (the superuser that created the database): COPY allowed, and foreign-key triggers off while
        # loading (session_replication_role=replica), as a restore does; the tests check the same rows with them on
        owner = sa.create_engine(url, connect_args={"options": "-c session_replication_role=replica"})
        try:
            tenants = _tenants(svc)
            # ---------------------------------------------------------------- load
            stats, gen_s = [], []
            now = utcnow()
            password_hash = svc.accounts.passwords.hash(uuid.uuid4().hex)  # one hash for every generated account
            print(f"  generating {ORDERS:,} orders ...", flush=True)
            for i, (tenant, orders) in enumerate(zip(tenants, per_tenant, strict=True)):
                seconds, s = _timed(lambda t=tenant, n=orders, i=i: history.generate(
                    svc.db, t.id, orders=n, months=MONTHS, seed=1000 + i, now=now, bulk_engine=owner,
                    password_hash=password_hash))
                stats.append(s)
                gen_s.append(seconds)
                print(f"    {tenant.slug}: {s.orders:,} orders in {seconds:.1f} s ({s.bulk})", flush=True)
            analyze_s, _ = _timed(lambda: _analyze(owner))
            rows = sum(_rows(s) for s in stats)
            load.add(f"generate ({stats[0].bulk.upper()} as the owner)", f"{sum(s.orders for s in stats):,} orders",
                     f"{rows:,}", sum(gen_s), rows / sum(gen_s), percentile(gen_s, 50), max(gen_s))
            load.add("ANALYZE", "", "", analyze_s, None, None, None)

            service = AnalyticsService(svc.db, LocalCache())
            rebuild_s = []
            print("  rebuilding the rollups ...", flush=True)
            for tenant in tenants:
                seconds, _ = _timed(lambda t=tenant: service.rebuild(t.id))
                rebuild_s.append(seconds)
            vacuum_s, _ = _timed(lambda: _analyze(owner, ROLLUP_TABLES))
            rollup_rows = _count(owner, ROLLUP_TABLES)
            load.add("AnalyticsService.rebuild, per marketplace", TENANTS, f"{rollup_rows:,}", sum(rebuild_s),
                     rollup_rows / sum(rebuild_s), percentile(rebuild_s, 50), max(rebuild_s))
            load.add("VACUUM ANALYZE of the rollup tables", "", "", vacuum_s, None, None, None)
            raw_mib, rollup_mib = _size_mib(owner, RAW_TABLES), _size_mib(owner, ROLLUP_TABLES)
            load.notes += [
                f"rows = every row generated: {', '.join(f'{k} {v:,}' for k, v in _by_table(stats).items())}",
                f"on disk (tables + indexes, all marketplaces): raw {raw_mib:,.0f} MiB, rollups {rollup_mib:,.1f} "
                f"MiB ({rollup_rows:,} rows)",
                "generate = backend/history.py: the rows the services would have written, ids taken from the "
                "sequences, COPYed through the database owner's (superuser's) connection, which row-level security "
                "does not hold (PostgreSQL refuses COPY where it does: the app role INSERTs instead), with "
                "foreign-key triggers off while loading (session_replication_role=replica, as a restore does; "
                "tests/integration/test_history.py writes the same rows with every check on); bench-only "
                "shortcuts, the app never connects as the owner",
                "orders per state: " + ", ".join(f"{k} {v:,}" for k, v in _states(stats).items()),
            ]

            # ---------------------------------------------------------------- dashboards of one marketplace
            tenant = tenants[0]
            admin = Caller(role=Role.ADMIN, id=_admin_id(svc, tenant.id), tenant_id=tenant.id)
            today = utcnow().date()
            caches = [("cached (LocalCache, in process)", LocalCache())]
            redis_cache = _redis_cache()
            if redis_cache is not None:
                caches.append(("cached (RedisCache, local Redis)", redis_cache))
            print("  dashboards ...", flush=True)
            for label, days in RANGES:
                period = Period.last(days, today)
                naive_s = []
                for _ in range(NAIVE_RUNS):
                    seconds, raw = _timed(lambda p=period: naive_dashboard(svc.db, tenant.id, tenant.currency, p,
                                                                           None, utcnow()))
                    naive_s.append(seconds)
                cold_s = []
                for _ in range(RUNS):
                    service.cache = LocalCache()
                    seconds, cold = _timed(lambda p=period: service.dashboard(tenant, admin, p))
                    cold_s.append(seconds)
                if diff := _differences(_numbers(cold), _numbers(raw)):
                    failures.append(f"{label}: the rollups and the raw rows disagree: " + "; ".join(diff))
                base_p95 = percentile(naive_s, 95) * 1000
                _row(dash, label, f"baseline: naive (raw rows), n={NAIVE_RUNS}", naive_s, None)
                _row(dash, label, "cold (rollups, cache empty)", cold_s, base_p95)
                for name, cache in caches:
                    service.cache = cache
                    service.dashboard(tenant, admin, period)  # fills it
                    warm_s = [_timed(lambda p=period: service.dashboard(tenant, admin, p))[0] for _ in range(RUNS)]
                    _row(dash, label, name, warm_s, base_p95)
                print(f"    {label}: naive p95 {base_p95:.0f} ms, cold p95 {percentile(cold_s, 95) * 1000:.0f} ms",
                      flush=True)
            dash.notes += [
                "one call = `AnalyticsService.dashboard(tenant, admin, period)` as the admin page makes it: the data "
                "version check against the watermarks (one round trip; a refresh when a source moved), then the "
                "whole Dashboard (every KPI and its previous period, orders by state, the daily series, funnel and "
                "funnel by category, 12 monthly cohorts, supply and demand) or its cached copy (JSON, rebuilt into "
                "dataclasses); naive = backend/analytics/naive.py, the same Dashboard from the raw rows, no "
                "rollups, no cache",
                f"cold: the rollups are up to date and the cache is empty (a new LocalCache before each of the {RUNS} "
                "calls); cached: the cache filled by one call first"
                + ("" if redis_cache is not None else "; no Redis answered at " + REDIS_URL + ", so no Redis row"),
                "✓ the rollup dashboard equals the naive one for every range (all numbers)" if not failures else
                "✗ BROKEN: " + "; ".join(failures),
                f"every marketplace holds {per_tenant[0]:,} orders over {MONTHS} months; PostgreSQL on the same "
                "machine, the app's connection (the app role, row-level security on)",
            ]

            # ---------------------------------------------------------------- memory
            period = Period.last(365, today)
            memory.add("rebuild of one marketplace's rollups", _traced_peak_mib(lambda: service.rebuild(tenant.id)),
                       f"{per_tenant[0]:,} orders")
            service.cache = LocalCache()
            memory.add("cold dashboard, 12 months", _traced_peak_mib(
                lambda: service.dashboard(tenant, admin, period)), "rollups built, cache empty")
            memory.add("cached dashboard, 12 months (LocalCache)", _traced_peak_mib(
                lambda: service.dashboard(tenant, admin, period)), "")
            memory.add("baseline: naive dashboard, 12 months", _traced_peak_mib(
                lambda: naive_dashboard(svc.db, tenant.id, tenant.currency, period, None, utcnow())), "raw rows")
            memory.notes += [
                f"this process's RSS: {rss_before:.0f} MiB before the part, {_rss_mib():.0f} MiB at the end, peak "
                f"{self_peak_rss_mib():.0f} MiB (the generator holds at most one batch of rows: 20,000 orders)",
                "tracemalloc peak = Python allocations during that one call (traced separately from the timings)",
            ]
            if redis_cache is not None:
                redis_cache.close()
        finally:
            owner.dispose()
            svc.close()
    tables = [load, dash, memory]
    if failures:
        raise BrokenInvariant(dash, failures)
    return tables


def _tenants(svc) -> list:
    with svc.db.platform_session() as session:
        for i in range(TENANTS):
            session.add(Tenant(slug=f"bench{i}", name=f"Bench {i}", payment_provider="demo"))
    tenants = [svc.tenants.by_slug(f"bench{i}") for i in range(TENANTS)]
    for tenant in tenants:
        svc.catalog.seed_defaults(tenant.id)
    return tenants


def _admin_id(svc, tenant_id: int) -> int:
    users = sa.table("user_account", sa.column("id"), sa.column("role"), sa.column("tenant_id"))
    with svc.db.tenant_session(tenant_id) as session:
        return session.execute(sa.select(users.c.id).where(users.c.tenant_id == tenant_id,
                                                           users.c.role == Role.ADMIN)).scalar_one()


def _analyze(owner: sa.Engine, tables: tuple[str, ...] = ()) -> None:
    """ANALYZE everything, or VACUUM ANALYZE these tables (statistics and the visibility map)."""
    with owner.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.execute(sa.text(f"VACUUM ANALYZE {', '.join(tables)}" if tables else "ANALYZE"))


def _count(owner: sa.Engine, tables: tuple[str, ...]) -> int:
    with owner.connect() as conn:
        return sum(conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables)


def _size_mib(owner: sa.Engine, tables: tuple[str, ...]) -> float:
    with owner.connect() as conn:
        return sum(conn.execute(sa.text("SELECT pg_total_relation_size(:t)"), {"t": t}).scalar_one()
                   for t in tables) / MIB


def _by_table(stats) -> dict[str, int]:
    fields = ("requests", "quotes", "orders", "order_events", "payments", "payouts", "ledger_transactions",
              "ledger_entries")
    out = {name: sum(getattr(s, name) for s in stats) for name in fields}
    out["people"] = sum(s.clients_created + s.pros_created for s in stats)
    return out


def _rows(s) -> int:
    return (s.requests + s.quotes + s.orders + s.order_events + s.payments + s.payouts + s.ledger_transactions
            + s.ledger_entries + s.clients_created + s.pros_created)


def _states(stats) -> dict[str, int]:
    total: dict[str, int] = {}
    for s in stats:
        for state, n in s.orders_by_state.items():
            total[state] = total.get(state, 0) + n
    return dict(sorted(total.items(), key=lambda kv: -kv[1]))


def _row(table: Table, label: str, name: str, samples_s: list[float], base_p95_ms: float | None) -> None:
    ms = [s * 1000 for s in samples_s]
    p95 = percentile(ms, 95)
    table.add(label, name, len(ms), percentile(ms, 50), p95, percentile(ms, 99),
              "1.00× (baseline)" if base_p95_ms is None else f"{p95 / base_p95_ms:.3f}×")


class _BenchRedis(RedisCache):
    """RedisCache on a key prefix of its own, removed afterwards."""

    def close(self) -> None:
        for key in self.redis.scan_iter(f"{self.prefix}*"):
            self.redis.delete(key)
        self.redis.close()


def _redis_cache() -> _BenchRedis | None:
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
        client.ping()
    except redis.RedisError:
        return None
    return _BenchRedis(client, prefix=f"analytics-bench-{uuid.uuid4().hex[:8]}:")

