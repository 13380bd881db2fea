"""Analytics/Reporting: the tenant admin's dashboard (KPIs, orders by state, series, funnel, cohorts, supply and
demand, CSV exports), the operator's overview of every marketplace, and the operations queues.

Others use what is exported here. Numbers come from rollup tables kept incrementally from watermarks (rollups.py)
behind a cache keyed by data version (cache.py); naive.py computes the same dashboard from the raw rows.
"""

from backend.analytics.cache import Cache, LocalCache
from backend.analytics.operations import QUEUES, Operations, OpsQueues
from backend.analytics.service import AnalyticsService
from backend.analytics.views import TABLES, Dashboard, KpiValue, Period, TenantKpis, table_rows
from backend.errors import PermissionDenied, ValidationFailed

__all__ = ["AnalyticsService", "Cache", "Dashboard", "KpiValue", "LocalCache", "Operations", "OpsQueues", "Period",
           "QUEUES", "PermissionDenied", "TABLES", "TenantKpis", "ValidationFailed", "table_rows"]
