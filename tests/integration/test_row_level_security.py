"""PostgreSQL row-level security: the database itself keeps tenants apart, even when the application
forgets its filter (raw SQL, no ORM scoping), and whatever statement SQL running as the app role tries.

The database here has the production shape: its tables belong to a role that is NOT a superuser (so
FORCE'd RLS applies to the owner too), and the app connects directly as its own LOGIN role
(DATABASE_APP_URL), which owns nothing."""

from __future__ import annotations

import os
import uuid

import psycopg
import psycopg.errors
import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from backend.identity import Role
from backend.accounts.models import User
from backend.config import Settings
from backend.db import CrossTenantWrite, Database, UnsafeDatabaseRole
from backend.errors import PermissionDenied
from backend.payments.models import WebhookEvent
from tests.conftest import APP_ROLE, APP_ROLE_PASSWORD, app_url, make_services
from tests.servers import Servers

OWNER_ROLE = "marketplace_owner_test"  # a plain login role that owns the test database and its tables
OWNER_PASSWORD = "marketplace-owner-test-only"
PASSWORD = "pw-1234567890"


@pytest.fixture(scope="module")
def owned_db(servers):
    """A database owned (and migrated) by a non-superuser role; returns (owner_url, app_url)."""
    servers.ensure_login_role(OWNER_ROLE, OWNER_PASSWORD)
    servers.ensure_login_role(APP_ROLE, APP_ROLE_PASSWORD)
    name = f"mp_rls_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin_url = servers.create_database(name, owner=OWNER_ROLE)
    yield Servers.url_as(admin_url, OWNER_ROLE, OWNER_PASSWORD), app_url(admin_url)
    servers.drop_database(name)


@pytest.fixture
def pg(owned_db, tmp_path):
    """Services as the app login role, two tenants: demo (2 users) and acme (1 user)."""
    owner_url, _ = owned_db
    svc = make_services(owner_url, tmp_path)  # migrates as the owner; the app connects as APP_ROLE
    engine = sa.create_engine(owner_url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        tables = conn.execute(sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                      "AND tablename <> 'alembic_version'")).scalars().all()
        conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    from backend.tenancy.models import Tenant

    with svc.db.platform_session() as s:
        s.add(Tenant(slug="demo", name="Demo", payment_provider="demo"))
        s.add(Tenant(slug="acme", name="Acme", payment_provider="demo"))
    demo, acme = svc.tenants.by_slug("demo"), svc.tenants.by_slug("acme")
    for tenant, emails in ((demo, ["a@demo.com", "b@demo.com"]), (acme, ["x@acme.com"])):
        for email in emails:
            svc.accounts.sign_up(tenant, {"email": email, "password": PASSWORD, "full_name": "U", "role": "client"})
    yield svc, demo, acme
    svc.close()


def _emails(conn) -> list[str]:
    return conn.execute(sa.text("SELECT email FROM user_account ORDER BY email")).scalars().all()


def _bound(svc, conn, tenant_id: int) -> None:
    """What tenant_session does, on a plain connection (so the test can run raw statements after it)."""
    svc.db._bind_connection(conn, tenant_id)


# ------------------------------------------------------------------ who the app is

def test_app_connects_as_its_own_login_role_that_owns_nothing_and_cannot_bypass_rls(pg):
    svc, *_ = pg
    with svc.db.engine.connect() as conn:
        session_user, current_user = conn.execute(sa.text("SELECT session_user, current_user")).one()
        super_, bypass, createrole = conn.execute(sa.text(
            "SELECT rolsuper, rolbypassrls, rolcreaterole FROM pg_roles WHERE rolname = current_user")).one()
        owned = conn.execute(sa.text("SELECT count(*) FROM pg_tables WHERE tableowner = current_user")).scalar()
        member_of_owner = conn.execute(sa.text(
            "SELECT pg_has_role(current_user, :owner, 'MEMBER')"), {"owner": OWNER_ROLE}).scalar()
    assert session_user == current_user == svc.settings.database_app_role == APP_ROLE
    assert not super_ and not bypass and not createrole and owned == 0 and not member_of_owner


def test_every_table_with_a_tenant_id_has_forced_rls_and_the_tenant_policy(pg):
    """Read from pg_catalog: nothing to remember when a table is added, the test finds it."""
    svc, *_ = pg
    allowed_without_rls: set[str] = set()  # none today; an entry here needs a reason in its migration
    with svc.db.engine.connect() as conn:
        rows = conn.execute(sa.text("""
            SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                   p.qual, p.with_check, p.roles::text[]
            FROM pg_class c
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
            LEFT JOIN pg_policies p ON p.schemaname = 'public' AND p.tablename = c.relname
                                   AND p.policyname = 'tenant_isolation'
            WHERE c.relkind IN ('r', 'p') AND c.relnamespace = 'public'::regnamespace""")).all()
        every_policy = conn.execute(sa.text(
            "SELECT tablename, policyname, roles::text[], cmd, coalesce(qual, '') || coalesce(with_check, '') "
            "FROM pg_policies WHERE schemaname = 'public'")).all()
    names = {r[0] for r in rows}
    assert names >= {"user_account", "profile", "auth_session", "one_time_token", "notification", "service_order",
                     "payment", "ledger_entry", "conversation", "webhook_event"}
    for name, enabled, forced, using, check, roles in rows:
        if name in allowed_without_rls:
            continue
        assert enabled and forced, f"{name}: RLS must be enabled and forced"
        assert using and check and "app_current_tenant()" in using and using == check, name
        assert roles == ["public"], name
    for table, policy, roles, cmd, text in every_policy:
        assert "cross_tenant" not in text, (table, policy)  # no "see everything" switch anywhere
        # only the tenant policy applies to the app; the owner's read policy is the owner's alone
        assert policy == "tenant_isolation" or (policy == "owner_reads" and roles == [OWNER_ROLE]
                                                and cmd == "SELECT"), (table, policy, roles)


def test_cross_tenant_reads_are_narrow_security_definer_functions_only_the_app_may_execute(pg):
    svc, *_ = pg
    with svc.db.engine.connect() as conn:
        rows = conn.execute(sa.text("""
            SELECT p.proname, p.prosecdef, pg_get_userbyid(p.proowner), p.proconfig::text[],
                   has_function_privilege(:app, p.oid, 'EXECUTE'),
                   EXISTS (SELECT FROM aclexplode(p.proacl) x WHERE x.grantee = 0)  -- 0 = PUBLIC
            FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
            ORDER BY p.proname"""), {"app": APP_ROLE}).all()
    assert {r[0] for r in rows} == {"app_current_tenant", "platform_tenant_user_counts",
                                    "platform_webhook_event_tenant"}
    for name, definer, owner, config, app_may, public_may in rows:
        assert definer and owner == OWNER_ROLE, name
        assert any(c.startswith("search_path=pg_catalog") for c in config), name
        assert app_may and not public_may, name


# ------------------------------------------------------------------ what SQL as the app role can do

def test_unfiltered_raw_query_sees_only_the_current_tenant(pg):
    svc, demo, acme = pg
    with svc.db.tenant_session(demo.id) as s:
        emails = s.execute(sa.text("SELECT email FROM user_account ORDER BY email")).scalars().all()
    assert emails == ["a@demo.com", "b@demo.com"]
    with svc.db.tenant_session(acme.id) as s:
        assert s.execute(sa.text("SELECT email FROM user_account")).scalars().all() == ["x@acme.com"]
        # even naming the other tenant explicitly finds nothing
        assert s.execute(sa.text("SELECT count(*) FROM user_account WHERE tenant_id = :t"),
                         {"t": demo.id}).scalar() == 0


def test_set_config_cannot_lift_or_move_the_binding(pg):
    svc, demo, acme = pg
    with svc.db.engine.connect() as conn:
        _bound(svc, conn, demo.id)
        # the old escape hatch, session-wide and transaction-local: gone
        conn.execute(sa.text("SELECT set_config('app.cross_tenant', 'on', false)"))
        conn.execute(sa.text("SELECT set_config('app.cross_tenant', 'on', true)"))
        assert _emails(conn) == ["a@demo.com", "b@demo.com"]
        assert conn.execute(sa.text("SELECT count(*) FROM user_account WHERE tenant_id = :t"),
                            {"t": acme.id}).scalar() == 0
        # re-binding to another tenant without the signature binds nothing at all
        stolen_sig = conn.execute(sa.text("SELECT current_setting('app.tenant_sig')")).scalar()
        for scope in (True, False):
            conn.execute(sa.text("SELECT set_config('app.tenant_id', :t, :local)"),
                         {"t": str(acme.id), "local": scope})
            assert _emails(conn) == []
        # nor does the signature of the tenant it was bound to, reused for another
        conn.execute(sa.text("SELECT set_config('app.tenant_sig', :s, false)"), {"s": stolen_sig})
        assert _emails(conn) == []
        # the platform binding (-1) sees no tenant's rows either
        conn.execute(sa.text("SELECT set_config('app.tenant_id', '-1', false)"))
        assert _emails(conn) == []
        with pytest.raises(sa.exc.ProgrammingError, match="row-level security"):  # and cannot write one
            conn.execute(sa.text("INSERT INTO user_account (tenant_id, email, password_hash, role, status, "
                                 "created_at) VALUES (:t, 'evil@x.com', 'x', 'admin', 'active', now())"),
                         {"t": acme.id})


def test_role_changes_cannot_escape(pg):
    svc, demo, acme = pg
    with svc.db.engine.connect() as conn:
        _bound(svc, conn, demo.id)
        conn.execute(sa.text("RESET ROLE"))  # returns to the login role: the app role itself
        assert conn.execute(sa.text("SELECT current_user")).scalar() == APP_ROLE
        assert _emails(conn) == ["a@demo.com", "b@demo.com"]
        conn.commit()
    for statement in (f'SET ROLE "{OWNER_ROLE}"', "SET ROLE postgres", "SET ROLE pg_read_all_data",
                      f'SET SESSION AUTHORIZATION "{OWNER_ROLE}"', "SET SESSION AUTHORIZATION postgres"):
        with svc.db.engine.connect() as conn:
            with pytest.raises(sa.exc.ProgrammingError) as refused:
                conn.execute(sa.text(statement))
        assert isinstance(refused.value.orig, psycopg.errors.InsufficientPrivilege), statement


def test_the_app_role_cannot_change_the_policies_or_read_the_binding_key(pg):
    svc, demo, acme = pg
    attempts = (
        "ALTER TABLE user_account DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE user_account NO FORCE ROW LEVEL SECURITY",
        "DROP POLICY tenant_isolation ON user_account",
        "CREATE POLICY everything ON user_account USING (true)",
        "ALTER FUNCTION public.app_current_tenant() SECURITY INVOKER",
        "SELECT key FROM app_private.tenant_binding_key",
        "CREATE FUNCTION public.mine() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "ALTER ROLE marketplace_app BYPASSRLS",
        f'GRANT "{OWNER_ROLE}" TO marketplace_app',
    )
    for statement in attempts:
        with svc.db.engine.connect() as conn:
            with pytest.raises(sa.exc.ProgrammingError) as refused:
                conn.execute(sa.text(statement))
        assert isinstance(refused.value.orig, psycopg.errors.InsufficientPrivilege), statement
    with svc.db.engine.connect() as conn:  # turning RLS "off" for the session makes queries fail, not pass
        _bound(svc, conn, demo.id)
        conn.execute(sa.text("SET row_security = off"))
        with pytest.raises(sa.exc.ProgrammingError, match="row-level security"):
            _emails(conn)


def test_a_transaction_without_a_tenant_sees_nothing(pg):
    svc, *_ = pg
    with Session(svc.db.engine) as s:  # bypasses Database.tenant_session entirely
        assert s.execute(sa.text("SELECT count(*) FROM user_account")).scalar() == 0
        assert s.execute(sa.text("SELECT count(*) FROM profile")).scalar() == 0
        assert s.execute(sa.text("SELECT count(*) FROM operator_account")).scalar() == 0


def test_binding_parameters_do_not_show_in_pg_stat_activity(pg):
    """A connection of the same role can read another's current query: the signature must not be in it."""
    svc, demo, _ = pg
    with svc.db.engine.connect() as victim, svc.db.engine.connect() as attacker:
        _bound(svc, victim, demo.id)
        sig = victim.execute(sa.text("SELECT current_setting('app.tenant_sig')")).scalar()
        _bound(svc, victim, demo.id)  # its last statement is the binding
        pid = victim.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        _bound(svc, victim, demo.id)
        seen = attacker.execute(sa.text("SELECT query FROM pg_stat_activity WHERE pid = :p"), {"p": pid}).scalar()
    assert "set_config('app.tenant_sig'" in seen and sig not in seen


def test_raw_write_into_another_tenant_fails(pg):
    svc, demo, acme = pg
    with pytest.raises(sa.exc.ProgrammingError, match="row-level security"):
        with svc.db.tenant_session(demo.id) as s:
            s.execute(sa.text("INSERT INTO user_account (tenant_id, email, password_hash, role, status, created_at) "
                              "VALUES (:t, 'evil@x.com', 'x', 'admin', 'active', now())"), {"t": acme.id})
    with svc.db.tenant_session(demo.id) as s:  # updates cannot reach the other tenant's rows either
        changed = s.execute(sa.text("UPDATE user_account SET role = 'admin' WHERE tenant_id = :t"),
                            {"t": acme.id}).rowcount
    assert changed == 0
    with pytest.raises(sa.exc.ProgrammingError, match="row-level security"):
        with svc.db.tenant_session(demo.id) as s:  # nor move own rows into another tenant
            s.execute(sa.text("UPDATE user_account SET tenant_id = :t"), {"t": acme.id})
    with svc.db.tenant_session(acme.id) as s:
        assert s.execute(sa.text("SELECT email FROM user_account")).scalars().all() == ["x@acme.com"]


def test_orm_refuses_cross_tenant_write_before_it_reaches_the_database(pg):
    svc, demo, acme = pg
    with pytest.raises(CrossTenantWrite):
        with svc.db.tenant_session(demo.id) as s:
            s.add(User(tenant_id=acme.id, email="evil@x.com", password_hash="x", role=Role.ADMIN))


def test_operator_accounts_are_visible_to_the_platform_binding_only(pg):
    svc, demo, _ = pg
    svc.platform.create_operator("op@example.com", PASSWORD)
    with svc.db.platform_session() as s:
        assert s.execute(sa.text("SELECT email FROM operator_account")).scalars().all() == ["op@example.com"]
    with svc.db.tenant_session(demo.id) as s:  # e.g. an injection in a tenant's page: no operator hashes
        assert s.execute(sa.text("SELECT count(*) FROM operator_account")).scalar() == 0
        assert s.execute(sa.text("SELECT count(*) FROM operator_session")).scalar() == 0


def test_webhook_events_live_under_their_tenant_or_the_platform(pg):
    svc, demo, acme = pg
    with svc.db.tenant_session(demo.id) as s:
        s.add(WebhookEvent(tenant_id=demo.id, provider="stripe", event_id="evt_demo", kind="checkout_completed"))
    with svc.db.platform_session() as s:
        s.add(WebhookEvent(tenant_id=None, provider="stripe", event_id="evt_none", kind="checkout_completed"))
    with pytest.raises(sa.exc.ProgrammingError, match="row-level security"):
        with svc.db.platform_session() as s:  # the platform binding cannot file an event under a tenant
            s.add(WebhookEvent(tenant_id=acme.id, provider="stripe", event_id="evt_x", kind="checkout_completed"))
    seen = {}
    for label, scope in (("platform", svc.db.platform_session), ("demo", lambda: svc.db.tenant_session(demo.id)),
                         ("acme", lambda: svc.db.tenant_session(acme.id))):
        with scope() as s:
            seen[label] = sorted(s.exec(select(WebhookEvent.event_id)).all())
    assert seen == {"platform": ["evt_none"], "demo": ["evt_demo"], "acme": []}
    # the processing job finds an event's tenant through the narrow definer function
    from backend.tenancy.platform_reads import WEBHOOK_EVENT_TENANT

    with svc.db.tenant_session(demo.id) as s:
        row_id = s.exec(select(WebhookEvent.id)).one()
    assert [tuple(r) for r in svc.db.platform_read(WEBHOOK_EVENT_TENANT, event_row_id=row_id)] == [(demo.id,)]
    assert svc.db.platform_read(WEBHOOK_EVENT_TENANT, event_row_id=10_000) == []


# ------------------------------------------------------------------ the operator console, without a cross-tenant session

def test_operator_console_counts_and_creates_tenants_as_the_app_role(pg):
    svc, demo, acme = pg
    client = svc.accounts.login(demo, "a@demo.com", PASSWORD)[0]
    with pytest.raises(PermissionDenied):
        svc.platform.list_tenants(client)
    svc.platform.create_operator("op@example.com", PASSWORD)
    op, _ = svc.accounts.operator_login("op@example.com", PASSWORD)
    assert {t.slug: t.users for t in svc.platform.list_tenants(op)} == {"demo": 2, "acme": 1}
    created = svc.platform.create_tenant(op, {
        "slug": "newco", "name": "NewCo", "admin_email": "boss@newco.com", "admin_password": PASSWORD,
        "admin_name": "Boss", "payment_provider": "demo"})
    assert {t.slug: t.users for t in svc.platform.list_tenants(op)} == {"demo": 2, "acme": 1, "newco": 1}
    admin, _ = svc.accounts.login(created, "boss@newco.com", PASSWORD)
    assert admin.role == Role.ADMIN and admin.tenant_id == created.id
    with svc.db.tenant_session(demo.id) as s:  # and it went to the new tenant, nowhere else
        assert s.execute(sa.text("SELECT count(*) FROM user_account WHERE email = 'boss@newco.com'")).scalar() == 0


def test_timers_sweep_every_tenant_one_binding_at_a_time(pg):
    svc, *_ = pg
    totals = svc.run_timers()
    assert isinstance(totals.pop("analytics_days"), int)
    assert totals == {"expire": 0, "auto_complete": 0, "requests_expired": 0,
                      "reviews_published": 0, "review_reminders": 0, "invoices_redone": 0,
                      "payouts_redone": 0, "webhooks_redone": 0, "deliveries_due": 0}


# ------------------------------------------------------------------ start-up refuses unsafe roles

def _production(owner_url: str, app: str | None, tmp_path) -> Settings:
    return Settings(environment="test", database_url=owner_url, database_app_url=app, data_dir=tmp_path,
                    redis_url=None).model_copy(update={"environment": "production"})


def test_production_settings_require_a_separate_app_connection(tmp_path):
    base = dict(environment="production", secret_key="s" * 40, data_dir=tmp_path,
                database_url="postgresql+psycopg://owner@db/marketplace")
    with pytest.raises(ValueError, match="DATABASE_APP_URL is required in production"):
        Settings(**base)
    with pytest.raises(ValueError, match="must not be the owner's connection"):
        Settings(**base, database_app_url=base["database_url"])


def test_start_up_refuses_a_superuser_the_owner_or_the_set_role_fallback(owned_db, servers, tmp_path):
    owner_url, app = owned_db
    superuser_url = servers.postgres_admin_url.rsplit("/", 1)[0] + "/" + owner_url.rsplit("/", 1)[1]
    with pytest.raises(UnsafeDatabaseRole, match=r"is a superuser.*CREATE ROLE marketplace_app LOGIN"):
        Database(_production(owner_url, superuser_url, tmp_path))
    with pytest.raises(UnsafeDatabaseRole, match=rf"role '{OWNER_ROLE}' owns the tables"):
        Database(_production(owner_url, owner_url, tmp_path))
    with pytest.raises(UnsafeDatabaseRole, match="needs DATABASE_APP_URL"):
        Database(_production(owner_url, None, tmp_path))
    # a login role that is a member of the owner's role is the owner for this purpose
    servers.ensure_login_role("marketplace_owner_member_test", "x")
    with psycopg.connect(servers.postgres_admin_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'GRANT "{OWNER_ROLE}" TO marketplace_owner_member_test')
    member_url = Servers.url_as(owner_url, "marketplace_owner_member_test", "x")
    with pytest.raises(UnsafeDatabaseRole, match=rf"is a member of '{OWNER_ROLE}', which owns the tables"):
        Database(_production(owner_url, member_url, tmp_path))
    # ... and so is one that could SET ROLE to a role with BYPASSRLS
    servers.ensure_login_role("marketplace_bypass_member_test", "x")
    with psycopg.connect(servers.postgres_admin_url.replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute("""DO $$ BEGIN CREATE ROLE marketplace_bypass_test NOLOGIN BYPASSRLS;
                        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$""")
        conn.execute("GRANT marketplace_bypass_test TO marketplace_bypass_member_test")
    with pytest.raises(UnsafeDatabaseRole, match="is a member of 'marketplace_bypass_test', which has BYPASSRLS"):
        Database(_production(owner_url, Servers.url_as(owner_url, "marketplace_bypass_member_test", "x"), tmp_path))
    db = Database(_production(owner_url, app, tmp_path))  # the app's own login role starts
    db.dispose()


def test_start_up_refuses_a_binding_key_that_does_not_match_secret_key(owned_db, tmp_path):
    owner_url, app = owned_db
    make_services(owner_url, tmp_path).close()  # migrated, key stored from the default SECRET_KEY
    other = Settings(environment="test", database_url=owner_url, database_app_url=app, data_dir=tmp_path,
                     secret_key="another-secret-" * 4)
    with pytest.raises(UnsafeDatabaseRole, match="does not match this process's SECRET_KEY"):
        Database(other)


def test_orm_scoping_on_sqlite_matches_rls(tmp_path):
    """The embedded default has no RLS: the ORM scoping alone must give the same answers."""
    from backend.tenancy.models import Tenant

    svc = make_services(None, tmp_path)
    with svc.db.platform_session() as s:
        s.add(Tenant(slug="demo", name="Demo", payment_provider="demo"))
        s.add(Tenant(slug="acme", name="Acme", payment_provider="demo"))
    demo, acme = svc.tenants.by_slug("demo"), svc.tenants.by_slug("acme")
    svc.accounts.sign_up(demo, {"email": "a@demo.com", "password": PASSWORD, "full_name": "U"})
    svc.accounts.sign_up(acme, {"email": "x@acme.com", "password": PASSWORD, "full_name": "U"})
    with svc.db.tenant_session(acme.id) as s:
        assert [u.email for u in s.exec(select(User)).all()] == ["x@acme.com"]
        assert s.exec(select(User).where(User.tenant_id == demo.id)).all() == []
    with svc.db.platform_session() as s:
        assert s.exec(select(User)).all() == []
    svc.platform.create_operator("op@example.com", PASSWORD)
    op, _ = svc.accounts.operator_login("op@example.com", PASSWORD)
    assert {t.slug: t.users for t in svc.platform.list_tenants(op)} == {"demo": 1, "acme": 1}
    svc.close()
