"""Row-level security DDL (PostgreSQL only), used by migrations, and the tenant binding it checks.

What it defends against: SQL that runs as the app role and was not meant to cross tenants: a query that
forgot its filter, a careless raw query, or an injection that can run any statement the app role may run
(`set_config`, `RESET ROLE`, `SET ROLE`, ...). None of these can widen what a transaction sees beyond the one
tenant the application bound it to.

How:
- Every tenant-owned table has `ENABLE` + `FORCE ROW LEVEL SECURITY` and one policy `tenant_isolation`
  (USING and WITH CHECK): `tenant_id = (SELECT app_current_tenant())`. There is no "see everything"
  switch in any policy.
- The binding is signed. The application binds a transaction with two settings, `app.tenant_id` and
  `app.tenant_sig` = MAC(key, tenant id), where the key is derived from SECRET_KEY (`binding_key`).
  `app_current_tenant()` (SECURITY DEFINER, owned by the table owner) returns the bound tenant only when
  the signature matches the copy of the key in `app_private.tenant_binding_key`, a schema the app role
  has no access to (backend.migrate writes the key on every upgrade). So `set_config('app.tenant_id',
  '<another tenant>', ...)` alone binds nothing: a transaction can only see the tenant the application
  signed for it. Wrapped in `(SELECT ...)` the function is an InitPlan: evaluated once per statement.
- The table owner (who runs migrations) gets a SELECT-only policy `owner_reads`; the app role is refused
  at start-up if it is, or is a member of, that owner (backend.db.check_app_role). This lets the few
  narrowly scoped SECURITY DEFINER functions (`definer_function`, e.g. the operator console's user
  counts per tenant) read across tenants while the app role itself cannot.
- Data migrations that must write across tenants as a non-superuser owner bind each tenant with
  `app_current_tenant`'s key like the app does, or `ALTER TABLE ... NO FORCE ROW LEVEL SECURITY` inside
  the migration's transaction and `FORCE` it again before commit.
"""

from __future__ import annotations

import hashlib

from backend.crypto import derive_key

NO_TENANT = -1  # the platform binding (backend.db.NO_TENANT): no tenant-owned row has this tenant_id

# Evaluated once per statement (InitPlan), and NULL (= nothing visible, nothing writable) when the
# transaction is unbound or its signature is wrong.
CURRENT_TENANT = "(SELECT public.app_current_tenant())"
_PREDICATE = f"(tenant_id = {CURRENT_TENANT})"
# webhook_event rows are stored before, or without, knowing their tenant (tenant_id NULL): those are
# visible to the platform binding only; rows that name a tenant, to that tenant only.
_WEBHOOK_PREDICATE = f"(COALESCE(tenant_id, {NO_TENANT}) = {CURRENT_TENANT})"
# Platform-only tables (operator accounts and sessions): visible in platform transactions only, never in a
# transaction bound to a tenant.
_PLATFORM_PREDICATE = f"({CURRENT_TENANT} = {NO_TENANT})"


def binding_key(secret_key: str) -> bytes:
    """The key that signs tenant bindings: derived from SECRET_KEY, so the app needs no extra secret."""
    return derive_key(secret_key, "rls-tenant-binding")


def binding_signature(key: bytes, tenant_id: int) -> str:
    """sha256(key || sha256(key || id)): the same nested construction app_current_tenant() computes with
    PostgreSQL's built-in sha256() (no extension needed); the outer hash rules out length extension."""
    inner = hashlib.sha256(key + str(tenant_id).encode()).digest()
    return hashlib.sha256(key + inner).hexdigest()


def tenant_binding_ddl() -> list[str]:
    """The key table and the verifying function. Idempotent: every enable_*_rls call includes it, so any
    migration (old or new) that creates a policy finds the function in place."""
    return [
        "CREATE SCHEMA IF NOT EXISTS app_private",
        "REVOKE ALL ON SCHEMA app_private FROM PUBLIC",
        """CREATE TABLE IF NOT EXISTS app_private.tenant_binding_key (
             id integer PRIMARY KEY CHECK (id = 1),
             key bytea NOT NULL)""",
        # plpgsql, not sql: its query plan is cached per connection (about 2.5x cheaper per call)
        """CREATE OR REPLACE FUNCTION public.app_current_tenant() RETURNS integer
           LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
           AS $fn$
           DECLARE
             bound text := current_setting('app.tenant_id', true);
             k bytea;
           BEGIN
             SELECT key INTO k FROM app_private.tenant_binding_key WHERE id = 1;
             IF current_setting('app.tenant_sig', true)
                  = encode(sha256(k || sha256(k || convert_to(bound, 'UTF8'))), 'hex') THEN
               RETURN bound::integer;
             END IF;
             RETURN NULL;  -- unbound, unsigned or wrongly signed: no tenant, nothing visible
           END
           $fn$""",
        "REVOKE ALL ON FUNCTION public.app_current_tenant() FROM PUBLIC",
    ]


def _enable_rls(table: str, predicate: str) -> list[str]:
    return [
        *tenant_binding_ddl(),
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS tenant_isolation ON {table}",
        f"CREATE POLICY tenant_isolation ON {table} USING {predicate} WITH CHECK {predicate}",
        *owner_reads(table),
    ]


def owner_reads(table: str) -> list[str]:
    """SELECT for the table's owner (no more than it can do anyway, being able to ALTER the table): the
    SECURITY DEFINER functions run as the owner, which FORCE'd RLS would otherwise restrict."""
    return [
        f"DROP POLICY IF EXISTS owner_reads ON {table}",
        f"""DO $$ BEGIN
              EXECUTE format('CREATE POLICY owner_reads ON {table} FOR SELECT TO %I USING (true)',
                             (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = '{table}'::regclass));
            END $$""",
    ]


def enable_tenant_rls(table: str) -> list[str]:
    return _enable_rls(table, _PREDICATE)


def enable_webhook_event_rls(table: str = "webhook_event") -> list[str]:
    return _enable_rls(table, _WEBHOOK_PREDICATE)


def enable_platform_only_rls(table: str) -> list[str]:
    return _enable_rls(table, _PLATFORM_PREDICATE)


def app_role_grants(role: str) -> list[str]:
    """The runtime role: no ownership, no BYPASSRLS, only DML on the app's tables. Created NOLOGIN when it
    does not exist (production creates it first with LOGIN and a password, see README); creation tolerates
    another process creating it at the same moment (roles are cluster-wide)."""
    return [
        f"""DO $$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                CREATE ROLE "{role}" NOLOGIN NOSUPERUSER NOBYPASSRLS;
              END IF;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
            END $$""",
        f'GRANT USAGE ON SCHEMA public TO "{role}"',
        # only the owner creates objects (PostgreSQL < 15 let everyone create in public)
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        f'REVOKE CREATE ON SCHEMA public FROM "{role}"',
        f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"',
        f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{role}"',
        f'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "{role}"',
        f'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO "{role}"',
        f'REVOKE ALL ON alembic_version FROM "{role}"',
        f'GRANT EXECUTE ON FUNCTION public.app_current_tenant() TO "{role}"',
    ]


def definer_function(signature: str, returns: str, body: str, app_role: str) -> list[str]:
    """A narrowly scoped cross-tenant read: a SQL function that runs as its owner (the table owner, who may
    read every tenant through `owner_reads`) and returns only what its one caller needs (e.g. counts).
    EXECUTE is granted to the app role alone. The app role can call it by itself, so it must never return
    rows a tenant would mind another tenant (or an injection) seeing: aggregates and routing facts only.

    signature: "name(arg type, ...)" in schema public; returns: e.g. "TABLE(tenant_id integer, n bigint)".
    Changing one later is a new migration that calls this again (CREATE OR REPLACE)."""
    return [
        f"""CREATE OR REPLACE FUNCTION public.{signature} RETURNS {returns}
            LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
            AS $fn$ {body} $fn$""",
        f"REVOKE ALL ON FUNCTION public.{signature} FROM PUBLIC",
        f'GRANT EXECUTE ON FUNCTION public.{signature} TO "{app_role}"',
    ]
