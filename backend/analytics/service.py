"""Analytics/Reporting: the admin's dashboard, the operator's overview across marketplaces, CSV exports, and the
operations queues (delegated to `operations.Operations`).

Speed comes from both layers of docs/architecture.md's decision: the rollup tables (rollups.py) make a cold dashboard
cheap whatever the size of the raw tables, and the cache makes a warm one instant. Before reading, the dashboard
checks the sources' max ids against the watermarks (one indexed round trip) and refreshes if they moved, so a new
completed order counts at once; the cache key carries that data version, so no write ever has to invalidate
anything. The key also carries the UTC hour: a few figures change without a new row (a request closed or expired,
the windows of "active" users), and are at most an hour old.
"""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa

from backend.analytics import sources as S
from backend.analytics.cache import Cache
from backend.analytics.csv_export import to_csv
from backend.analytics.metrics import (RollupFacts, assemble_kpis, build_dashboard, build_kpis, kpi_periods,
                                       read_flows, read_people)
from backend.analytics.rollups import Rollups, Version
from backend.analytics.views import TABLES, Dashboard, Period, TenantKpis, table_rows
from backend.db import Database, utcnow
from backend.errors import PermissionDenied, ValidationFailed
from backend.identity import Caller, TenantPublic

CACHE_TTL_SECONDS = 24 * 3600
CACHE_FORMAT = 1  # bump when a view's shape changes: older cached values are then never read

V = TypeVar("V")


class OpsSource(Protocol):
    """What needs the admin today (backend/analytics/operations.py)."""

    def queues(self, tenant: TenantPublic, caller: Caller) -> Any: ...

    def counts(self, tenant: TenantPublic, caller: Caller) -> dict[str, int]: ...


class AnalyticsService:
    TABLES = TABLES

    def __init__(self, db: Database, cache: Cache, ops: OpsSource | None = None,
                 clock: Callable[[], datetime] = utcnow):
        self.db = db
        self.cache = cache
        self.ops = ops
        self.clock = clock
        self.rollups = Rollups(db, clock)
        self.facts = RollupFacts()
        self._parallel = ThreadPoolExecutor(max_workers=4, thread_name_prefix="analytics")

    # ------------------------------------------------------------------ checks

    @staticmethod
    def _require_admin(tenant: TenantPublic, caller: Caller | None) -> None:
        if caller is None or not caller.is_admin_of(tenant.id):
            raise PermissionDenied("Only this marketplace's admins can see its analytics.")

    def _checked_period(self, period: Period) -> Period:
        if not isinstance(period, Period):
            raise ValidationFailed({"start": "Choose a period"})
        return period.check(self.clock().date())

    def _checked_category(self, tenant_id: int, category_id: int | None) -> int | None:
        if category_id is None:
            return None
        if isinstance(category_id, bool) or not isinstance(category_id, int):
            raise ValidationFailed({"category_id": "Choose a category from the list"})
        if category_id == 0:
            return 0
        c = S.category
        with self.db.tenant_session(tenant_id) as session:
            found = session.execute(sa.select(c.c.id).where(c.c.tenant_id == tenant_id, c.c.id == category_id)).first()
        if found is None:
            raise ValidationFailed({"category_id": "Choose a category from the list"})
        return category_id

    # ------------------------------------------------------------------ cache

    def _key(self, kind: str, tenant_id: int, currency: str, period: Period, category_id: int | None,
             version: Version) -> str:
        category = "all" if category_id is None else str(category_id)
        return (f"{kind}:v{CACHE_FORMAT}:{tenant_id}:{currency}:{period.start}:{period.end}:{category}:"
                f"{version.key()}:{self.clock():%Y%m%d%H}")

    def _cached(self, key: str, build: Callable[[], V], load: Callable[[Any], V]) -> V:
        hit = self.cache.get(key)
        if hit is not None:
            try:
                return load(json.loads(hit))
            except (ValueError, TypeError, KeyError):
                pass  # written by another shape of the view: recompute and overwrite
        value = build()
        self.cache.set(key, json.dumps(dataclasses.asdict(value)).encode(), CACHE_TTL_SECONDS)
        return value

    # ------------------------------------------------------------------ the admin's dashboard

    def dashboard(self, tenant: TenantPublic, caller: Caller, period: Period,
                  category_id: int | None = None) -> Dashboard:
        """The tenant's KPIs for the period (compared with the one before), charts and tables. Admin only."""
        self._require_admin(tenant, caller)
        period = self._checked_period(period)
        category_id = self._checked_category(tenant.id, category_id)
        version = self.rollups.fresh_version(tenant.id)

        def build() -> Dashboard:
            kpis = None
            if self.db.engine.dialect.name == "postgresql":
                # the KPIs' two halves on two more connections while this one reads the charts: three queries at a
                # time (the embedded SQLite has one writer and would gain nothing); the pool's tasks never wait on
                # each other, so concurrent dashboards cannot starve it
                periods = kpi_periods(period)
                flows, people = (self._parallel.submit(self._read, tenant.id, read, periods, category_id)
                                 for read in (read_flows, read_people))
                kpis = lambda: assemble_kpis(tenant.currency, flows.result(), people.result())  # noqa: E731
            with self.db.tenant_session(tenant.id) as session:
                return build_dashboard(self.facts, session, tenant.id, tenant.currency, period, category_id,
                                       self.clock(), kpis=kpis)

        return self._cached(self._key("dashboard", tenant.id, tenant.currency, period, category_id, version),
                            build, Dashboard.from_dict)

    def _read(self, tenant_id: int, read: Callable, periods: tuple[Period, Period], category_id: int | None):
        """One half of the KPIs' reads in a tenant session of its own (a pool thread)."""
        with self.db.tenant_session(tenant_id) as session:
            return read(self.facts, session, tenant_id, periods, category_id)

    def export_csv(self, tenant: TenantPublic, caller: Caller, period: Period, category_id: int | None,
                   table: str) -> tuple[str, str]:
        """(file name, CSV text) of one chart or table of the dashboard (`TABLES`): the numbers the page shows."""
        if table not in TABLES:
            raise ValidationFailed({"table": f"Choose one of: {', '.join(TABLES)}"})
        dashboard = self.dashboard(tenant, caller, period, category_id)
        period = self._checked_period(period)
        headers, rows = table_rows(dashboard, table)
        return f"{tenant.slug}-{table}-{period.start}-{period.end}.csv", to_csv(headers, rows)

    # ------------------------------------------------------------------ the operator's overview

    def overview(self, caller: Caller, period: Period) -> list[TenantKpis]:
        """The dashboard's KPIs for every marketplace, one row each. Platform operator only: each tenant is read in
        its own tenant session (the same code and cache as the dashboard's KPIs)."""
        if caller is None or not caller.is_operator:
            raise PermissionDenied("Only the platform operator sees every marketplace.")
        period = self._checked_period(period)
        tm = S.tenant
        with self.db.platform_session() as session:
            tenants = session.execute(sa.select(tm.c.id, tm.c.slug, tm.c.name, tm.c.status, tm.c.currency)
                                      .order_by(tm.c.created_at, tm.c.id)).all()
        rows = []
        for tenant_id, slug, name, status, currency in tenants:
            version = self.rollups.fresh_version(tenant_id)

            def build(tenant_id=tenant_id, slug=slug, name=name, status=status, currency=currency) -> TenantKpis:
                with self.db.tenant_session(tenant_id) as session:
                    kpis = build_kpis(self.facts, session, tenant_id, currency, period, None)[0]
                return TenantKpis(tenant_id=tenant_id, slug=slug, name=name, status=status, currency=currency,
                                  kpis=kpis)

            rows.append(self._cached(self._key("kpis", tenant_id, currency, period, None, version), build,
                                     TenantKpis.from_dict))
        return rows

    # ------------------------------------------------------------------ rollups (timers, seed, bench)

    def refresh(self, tenant_id: int) -> int:
        """Fold in what happened since the last refresh (the timers call this every 5 minutes); returns the number
        of days recomputed."""
        return self.rollups.refresh(tenant_id)

    def rebuild(self, tenant_id: int) -> int:
        """Drop the tenant's rollups and recompute them from the raw rows; returns the number of days with numbers."""
        return self.rollups.rebuild(tenant_id)

    # ------------------------------------------------------------------ operations queues

    def _operations(self) -> OpsSource:
        if self.ops is None:
            raise RuntimeError("AnalyticsService was built without its operations queues")
        return self.ops

    def ops_queues(self, tenant: TenantPublic, caller: Caller):
        """What needs the admin today, each item with a link to act on it (admin only, checked by each read)."""
        return self._operations().queues(tenant, caller)

    def ops_counts(self, tenant: TenantPublic, caller: Caller) -> dict[str, int]:
        """The badge counts of the admin navigation."""
        return self._operations().counts(tenant, caller)
