"""Shared fixtures: real servers, a fresh database per test session, services wired for tests."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.servers import Servers


@pytest.fixture(scope="session")
def servers():
    s = Servers()
    yield s
    s.stop()


# The production shape: the app connects directly as its own LOGIN role (DATABASE_APP_URL), which the
# migrations grant DML to and which owns nothing; the admin URL (pg_url) is the owner and runs migrations.
APP_ROLE = "marketplace_app"
APP_ROLE_PASSWORD = "marketplace-app-test-only"  # trust auth here; a password-auth server would need it


@pytest.fixture(scope="session")
def pg_url(servers):
    name = f"mp_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = servers.create_database(name)
    servers.ensure_login_role(APP_ROLE, APP_ROLE_PASSWORD)
    yield url
    servers.drop_database(name)


def app_url(database_url: str) -> str:
    """The same database as the app's login role (DATABASE_APP_URL)."""
    return Servers.url_as(database_url, APP_ROLE, APP_ROLE_PASSWORD)



def make_services(database_url: str | None, data_dir: Path, **overrides):
    from backend.bootstrap import build_services
    from backend.config import Settings
    from backend.jobqueue import InlineJobQueue

    if database_url and database_url.startswith("postgresql"):  # unless a test asks for the SET ROLE fallback
        overrides = {"database_app_url": app_url(database_url), **overrides}
    settings = Settings(**{"environment": "test", "database_url": database_url, "data_dir": data_dir,
                           "redis_url": None, "argon2_time_cost": 1, "argon2_memory_kib": 8 * 1024,
                           "argon2_parallelism": 1, **overrides})
    jobs = InlineJobQueue(raise_errors=True)
    # the test-card gateway and the dev outbox exist only in development; the suite (ENVIRONMENT=test) asks for them
    svc = build_services(settings, jobs=jobs, dev_tools=True if settings.environment == "test" else None)
    return svc


@pytest.fixture(params=["sqlite", "postgresql"])
def svc(request, tmp_path):
    """Services on both databases: the same code must behave the same on each."""
    if request.param == "sqlite":
        services = make_services(None, tmp_path)
    else:
        url = request.getfixturevalue("pg_url")
        services = make_services(url, tmp_path)
        _truncate(services)
    yield services
    services.close()


def _truncate(services):
    import sqlalchemy as sa

    from backend.migrate import upgrade

    upgrade(services.settings.owner_database_url, services.settings)
    engine = sa.create_engine(services.settings.owner_database_url)
    with engine.begin() as conn:
        tables = [r[0] for r in conn.execute(sa.text(
            "SELECT tablename FROM pg_tables WHERE schemaname='public' AND tablename <> 'alembic_version'"))]
        conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    services.tenants._cache.clear()


@pytest.fixture
def tenants(svc):
    """Two active tenants, returned as TenantPublic."""
    from backend.tenancy.models import Tenant

    with svc.db.platform_session() as session:
        for slug, name in (("demo", "Demo"), ("acme", "Acme")):
            session.add(Tenant(slug=slug, name=name, payment_provider="demo"))
    return svc.tenants.by_slug("demo"), svc.tenants.by_slug("acme")


@pytest.fixture
def pg_services(pg_url, tmp_path):
    """Services on PostgreSQL only, with an empty database and the tenant `demo`."""
    from backend.tenancy.models import Tenant

    services = make_services(pg_url, tmp_path)
    _truncate(services)
    with services.db.platform_session() as s:
        s.add(Tenant(slug="demo", name="Demo", payment_provider="demo"))
    yield services, services.tenants.by_slug("demo")
    services.close()
