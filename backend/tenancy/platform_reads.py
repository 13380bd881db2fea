"""The few reads that span tenants, each one question with a narrow answer.

The app role cannot read across tenants (backend/rls.py). Where the platform genuinely needs a
cross-tenant answer, it is a `PlatformRead`: on PostgreSQL a SECURITY DEFINER function created by a
migration (`rls.definer_function`, EXECUTE granted to the app role only) that returns just that answer,
called through `Database.platform_read`; on SQLite (no RLS) the equivalent SELECT runs directly.

Because the app role can call these functions by itself, each must answer only what no tenant would mind
being known: aggregates (counts, sums) and routing facts (which tenant a stored event belongs to), never
rows of a tenant's data. Callers check authorization (e.g. "is a platform operator") before calling.

Adding one (e.g. operator KPIs across tenants for analytics): define it here, create its function in a new
migration with `definer_function(read.signature, read.returns, read.body, app_role)`, and call
`db.platform_read(READ, **params)`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlatformRead:
    name: str  # SQL function name, in schema public
    args: str  # PostgreSQL argument list, e.g. "event_row_id integer"; referenced by name in `body`
    returns: str  # e.g. "TABLE(tenant_id integer, users bigint)"
    body: str  # one SELECT (PostgreSQL), runs as the function's owner
    sqlite_sql: str  # the same question on SQLite, arguments as :name bind parameters

    @property
    def signature(self) -> str:
        return f"{self.name}({self.args})"

    @property
    def call(self) -> str:
        """`name(:arg, ...)`, bound by Database.platform_read's keyword arguments."""
        names = [a.split()[0] for a in self.args.split(",") if a.strip()]
        return f"{self.name}({', '.join(':' + n for n in names)})"


TENANT_USER_COUNTS = PlatformRead(
    name="platform_tenant_user_counts",
    args="",
    returns="TABLE(tenant_id integer, users bigint)",
    body="SELECT tenant_id, count(*) FROM public.user_account GROUP BY tenant_id",
    sqlite_sql="SELECT tenant_id, count(*) AS users FROM user_account GROUP BY tenant_id",
)

# Webhook events are stored under the tenant their verified payload names; the job that processes one
# gets only its row id, and needs the tenant to open the right session.
WEBHOOK_EVENT_TENANT = PlatformRead(
    name="platform_webhook_event_tenant",
    args="event_row_id integer",
    returns="TABLE(tenant_id integer)",
    body="SELECT tenant_id FROM public.webhook_event WHERE id = event_row_id",
    sqlite_sql="SELECT tenant_id FROM webhook_event WHERE id = :event_row_id",
)

ALL_READS = (TENANT_USER_COUNTS, WEBHOOK_EVENT_TENANT)
