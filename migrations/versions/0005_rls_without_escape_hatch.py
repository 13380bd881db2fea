"""row-level security without an escape hatch: signed tenant binding, no cross-tenant switch

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 12:00:00.000000

Until now every policy also accepted `current_setting('app.cross_tenant') = 'on'`, which the app role could
set itself: any SQL it ran could read every tenant. From here on (see backend/rls.py):
- every policy is `tenant_id = (SELECT app_current_tenant())`, where app_current_tenant() returns the bound
  tenant only if the binding carries the right signature (key derived from SECRET_KEY, kept in
  app_private, which the app role cannot read); there is no "see everything" setting any more;
- webhook_event gets RLS too: a row naming a tenant is visible to that tenant only, a row without one
  (stored before, or without, knowing its tenant) to the platform binding only;
- operator_account and operator_session (no tenant_id, but operator password hashes and sessions) are
  visible to the platform binding only, never inside a transaction bound to a tenant;
- the owner may read every row (policy owner_reads: it can ALTER the tables anyway), so that the narrowly
  scoped SECURITY DEFINER functions of backend/tenancy/platform_reads.py can answer the few cross-tenant
  questions (user counts per tenant for the operator console; the tenant of a stored webhook event).

Tables with a tenant_id column and deliberately without the tenant policy: none. Tables without RLS, and
why: tenant (the directory every request reads to resolve its host: names, colours, provider; no secret),
login_attempt (see 0004: counted before the tenant's user is known, holds no secret), alembic_version
(the app role has no privilege on it at all).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from backend.config import get_settings
from backend.tenancy.platform_reads import ALL_READS
from backend.rls import (
    app_role_grants, definer_function, enable_platform_only_rls, enable_tenant_rls, enable_webhook_event_rls,
)

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WEBHOOK_TABLE = "webhook_event"
PLATFORM_ONLY_TABLES = ("operator_account", "operator_session")

_TENANT_TABLES_SQL = sa.text("""
    SELECT c.relname FROM pg_class c
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
    WHERE c.relkind IN ('r', 'p') AND c.relnamespace = 'public'::regnamespace
    ORDER BY c.relname""")

# What 0001-0004 had, for downgrade only.
_LEGACY_PREDICATE = ("(current_setting('app.cross_tenant', true) = 'on' "
                     "OR tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::integer)")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return  # SQLite: no RLS; the ORM scoping (backend/db.py) is the isolation there
    role = get_settings().database_app_role
    tables = [t for t in bind.execute(_TENANT_TABLES_SQL).scalars() if t != WEBHOOK_TABLE]
    for table in tables:  # every table with a tenant_id: the policy, re-created without the switch
        for statement in enable_tenant_rls(table):
            op.execute(statement)
    for statement in enable_webhook_event_rls(WEBHOOK_TABLE):
        op.execute(statement)
    for table in PLATFORM_ONLY_TABLES:
        for statement in enable_platform_only_rls(table):
            op.execute(statement)
    for statement in app_role_grants(role):  # incl. EXECUTE on app_current_tenant()
        op.execute(statement)
    for read in ALL_READS:
        for statement in definer_function(read.signature, read.returns, read.body, role):
            op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for read in ALL_READS:
        op.execute(f"DROP FUNCTION IF EXISTS public.{read.signature}")
    for table in PLATFORM_ONLY_TABLES:
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
        op.execute(f"DROP POLICY IF EXISTS owner_reads ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {WEBHOOK_TABLE}")
    op.execute(f"DROP POLICY IF EXISTS owner_reads ON {WEBHOOK_TABLE}")
    op.execute(f"ALTER TABLE {WEBHOOK_TABLE} NO FORCE ROW LEVEL SECURITY")
    op.execute(f"ALTER TABLE {WEBHOOK_TABLE} DISABLE ROW LEVEL SECURITY")
    for table in [t for t in bind.execute(_TENANT_TABLES_SQL).scalars() if t != WEBHOOK_TABLE]:
        op.execute(f"DROP POLICY IF EXISTS owner_reads ON {table}")
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} USING {_LEGACY_PREDICATE} "
                   f"WITH CHECK {_LEGACY_PREDICATE}")
    op.execute("DROP FUNCTION IF EXISTS public.app_current_tenant()")
    op.execute("DROP SCHEMA IF EXISTS app_private CASCADE")
