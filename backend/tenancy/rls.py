"""Row-level security DDL for tenant-owned tables (PostgreSQL only). Used by migrations."""

from __future__ import annotations

# A row is visible/writable when it belongs to the transaction's tenant
# (SET LOCAL app.tenant_id) or when the privileged operator path is on (app.cross_tenant).
# current_setting(..., true) returns NULL/'' when unset, so an unbound transaction sees nothing.
_PREDICATE = (
    "(current_setting('app.cross_tenant', true) = 'on' "
    "OR tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::integer)"
)


def enable_tenant_rls(table: str) -> list[str]:
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS tenant_isolation ON {table}",
        f"CREATE POLICY tenant_isolation ON {table} USING {_PREDICATE} WITH CHECK {_PREDICATE}",
    ]


def app_role_grants(role: str) -> list[str]:
    """The runtime role: no ownership, no BYPASSRLS, only DML on the app's tables."""
    return [
        f"""DO $$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                CREATE ROLE "{role}" NOLOGIN NOSUPERUSER NOBYPASSRLS;
              END IF;
            END $$""",
        f'GRANT USAGE ON SCHEMA public TO "{role}"',
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"',
        f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"',
        f'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "{role}"',
        f'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO "{role}"',
        f'REVOKE ALL ON alembic_version FROM "{role}"',
    ]
