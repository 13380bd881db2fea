"""PostgreSQL row-level security: the database itself keeps tenants apart, even when the
application forgets its filter (raw SQL, no ORM scoping)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from backend.accounts.models import Role, User
from backend.db import CrossTenantWrite
from backend.errors import PermissionDenied
from tests.conftest import make_services


@pytest.fixture
def pg(pg_services):
    svc, demo = pg_services
    from backend.tenancy.models import Tenant

    with svc.db.platform_session() as s:
        s.add(Tenant(slug="acme", name="Acme"))
    acme = svc.tenants.by_slug("acme")
    for tenant, emails in ((demo, ["a@demo.com", "b@demo.com"]), (acme, ["x@acme.com"])):
        for email in emails:
            svc.accounts.sign_up(tenant, {"email": email, "password": "pw-1234567890", "full_name": "U",
                                          "role": "client"})
    return svc, demo, acme


def test_app_connects_as_a_role_that_owns_nothing_and_cannot_bypass_rls(pg):
    svc, *_ = pg
    with svc.db.engine.connect() as conn:
        user, super_, bypass = conn.execute(sa.text(
            "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")).one()
        owned = conn.execute(sa.text("SELECT count(*) FROM pg_tables WHERE tableowner = current_user")).scalar()
    assert user == svc.settings.database_app_role
    assert not super_ and not bypass and owned == 0


def test_every_tenant_table_has_forced_rls_with_both_clauses(pg):
    svc, *_ = pg
    with svc.db.engine.connect() as conn:
        rows = conn.execute(sa.text("""
            SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, p.qual IS NOT NULL, p.with_check IS NOT NULL
            FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id'
            LEFT JOIN pg_policies p ON p.tablename = c.relname
            WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace
              AND c.relname <> 'webhook_event'  -- a platform table: verified before its tenant is known""")).all()
    assert {r[0] for r in rows} >= {"user_account", "profile", "auth_session", "one_time_token", "notification"}
    for name, enabled, forced, using, check in rows:
        assert enabled and forced and using and check, name


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


def test_a_transaction_without_a_tenant_sees_nothing(pg):
    svc, *_ = pg
    with Session(svc.db.engine) as s:  # bypasses Database.tenant_session entirely
        assert s.execute(sa.text("SELECT count(*) FROM user_account")).scalar() == 0
        assert s.execute(sa.text("SELECT count(*) FROM profile")).scalar() == 0


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


def test_operator_path_is_privileged_and_sees_all_tenants(pg):
    svc, demo, acme = pg
    client = svc.accounts.login(demo, "a@demo.com", "pw-1234567890")[0]
    with pytest.raises(PermissionDenied):
        svc.platform.list_tenants(client)
    svc.accounts.create_operator("op@example.com", "pw-1234567890")
    op, _ = svc.accounts.operator_login("op@example.com", "pw-1234567890")
    users = {t.slug: t.users for t in svc.platform.list_tenants(op)}
    assert users == {"demo": 2, "acme": 1}


def test_orm_scoping_on_sqlite_matches_rls(tmp_path):
    """The embedded default has no RLS: the ORM scoping alone must give the same answers."""
    from backend.tenancy.models import Tenant

    svc = make_services(None, tmp_path)
    with svc.db.platform_session() as s:
        s.add(Tenant(slug="demo", name="Demo"))
        s.add(Tenant(slug="acme", name="Acme"))
    demo, acme = svc.tenants.by_slug("demo"), svc.tenants.by_slug("acme")
    svc.accounts.sign_up(demo, {"email": "a@demo.com", "password": "pw-1234567890", "full_name": "U"})
    svc.accounts.sign_up(acme, {"email": "x@acme.com", "password": "pw-1234567890", "full_name": "U"})
    with svc.db.tenant_session(acme.id) as s:
        assert [u.email for u in s.exec(select(User)).all()] == ["x@acme.com"]
        assert s.exec(select(User).where(User.tenant_id == demo.id)).all() == []
    with svc.db.platform_session() as s:
        assert s.exec(select(User)).all() == []
