"""Places through the gazetteer: the profile editors store the gazetteer's label and coordinates and refuse a place
it does not know, and migration 0010 rewrites the cities stored before it (on SQLite, and on PostgreSQL with the
production shape: a non-superuser owner held by the FORCEd row-level security)."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from sqlmodel import select

from backend.errors import ValidationFailed
from backend.migrate import alembic_config
from backend.places import UNKNOWN_PLACE
from backend.profiles.models import ProProfile
from tests.conftest import APP_ROLE, APP_ROLE_PASSWORD
from tests.servers import Servers

PW = "pw-1234567890"
OWNER_ROLE = "marketplace_owner_test"  # as in test_row_level_security: owns the database, not a superuser
OWNER_PASSWORD = "marketplace-owner-test-only"
AUSTIN = "Austin, TX, United States"


def test_pro_editor_stores_the_gazetteers_label_and_coordinates(svc, tenants):
    demo, _ = tenants
    svc.catalog.seed_defaults(demo.id)
    plumbing = next(c.id for c in svc.catalog.categories(demo.id) if c.slug == "plumbing")
    pro, _ = svc.accounts.sign_up(demo, {"email": "pro@example.com", "password": PW, "full_name": "Pia",
                                         "role": "professional"})
    form = {"headline": "Plumber", "hourly_rate": "80", "category_ids": [plumbing]}

    view = svc.pros.update_own(demo, pro, {**form, "city": "  austin "})
    assert view.city == AUSTIN
    with svc.db.tenant_session(demo.id) as session:
        row = session.exec(select(ProProfile).where(ProProfile.user_id == pro.id)).one()
        assert (round(row.latitude, 2), round(row.longitude, 2)) == (30.27, -97.74)

    assert svc.pros.update_own(demo, pro, {**form, "city": "Portland, ME"}).city == "Portland, ME, United States"
    with pytest.raises(ValidationFailed) as exc:
        svc.pros.update_own(demo, pro, {**form, "city": "Narnia"})
    assert exc.value.errors == {"city": UNKNOWN_PLACE}
    assert svc.pros.get_own(demo, pro).city == "Portland, ME, United States"  # nothing written


def test_client_city_is_optional_and_resolved_when_given(svc, tenants):
    demo, _ = tenants
    client, _ = svc.accounts.sign_up(demo, {"email": "c@example.com", "password": PW, "full_name": "Cy"})
    assert svc.profiles.update_own(client, {"full_name": "Cy Young", "city": ""}).city == ""
    assert svc.profiles.update_own(client, {"full_name": "Cy Young", "city": "sao paulo"}).city == "São Paulo, Brazil"
    with pytest.raises(ValidationFailed) as exc:
        svc.profiles.update_own(client, {"full_name": "Cy Young", "city": "Nowhere Special"})
    assert exc.value.errors == {"city": UNKNOWN_PLACE}
    assert svc.profiles.get_own(client).city == "São Paulo, Brazil"


# --------------------------------------------------------------------------------------- migration 0010

CAMBRIDGE_MA = (42.3736, -71.1097)  # what the old 30-city list stored for "Cambridge"


def _insert(conn, table: str, **values) -> int:
    """A row with `values`, other required columns filled with plain placeholders (the 0009 schema, whatever
    later revisions add to the models)."""
    t = sa.Table(table, sa.MetaData(), autoload_with=conn)
    row = dict(values)
    for col in t.columns:
        if col.name in row or col.nullable or col.server_default is not None:
            continue
        if col.primary_key and isinstance(col.type, sa.Integer):
            continue  # generated
        if isinstance(col.type, sa.JSON):
            row[col.name] = []
        else:
            kind = col.type.python_type
            text = uuid.uuid4().hex[:getattr(col.type, "length", None) or 12]
            row[col.name] = {int: 0, float: 0.0, bool: False, str: text, datetime: datetime.now(UTC),
                             date: date.today()}[kind]
    result = conn.execute(t.insert().values(**row))
    return result.inserted_primary_key[0] if result.inserted_primary_key else None


def _seed_0009(url: str) -> dict:
    """Rows as the code before 0010 stored them, in two tenants."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    ids: dict = {}
    tables = ("user_account", "profile", "pro_profile", "category", "service_request")
    with engine.begin() as conn:
        postgres = conn.dialect.name == "postgresql"
        if postgres:  # the test writes as the owner, which FORCEd RLS holds: lift it for the setup only
            for table in tables:
                conn.execute(sa.text(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY"))
        for slug in ("demo", "acme"):
            tenant = _insert(conn, "tenant", slug=slug, name=slug.title())
            category = _insert(conn, "category", tenant_id=tenant, slug="plumbing", name="Plumbing")
            users = {}
            for handle, city, coords in (("austin", "austin", None), ("cambridge", "Cambridge", CAMBRIDGE_MA),
                                         ("nowhere", "Narnia", None), ("nyc", "  new   york ", None),
                                         ("empty", "", None)):
                user = _insert(conn, "user_account", tenant_id=tenant, email=f"{handle}@{slug}.example",
                               role="professional")
                _insert(conn, "profile", tenant_id=tenant, user_id=user, full_name=handle, city=city)
                _insert(conn, "pro_profile", tenant_id=tenant, user_id=user, city=city,
                        latitude=coords[0] if coords else None, longitude=coords[1] if coords else None)
                users[handle] = user
            request = _insert(conn, "service_request", tenant_id=tenant, client_id=users["austin"],
                              category_id=category, title="Fix", description="Drips", city="paris", currency="USD")
            ids[slug] = {"users": users, "request": request}
        if postgres:
            for table in tables:
                conn.execute(sa.text(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY"))
    engine.dispose()
    return ids


def _check_migrated(url: str, ids: dict) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:  # the owner reads every tenant's rows (policy owner_reads on PostgreSQL)
        for slug in ("demo", "acme"):
            users = ids[slug]["users"]

            def pro(handle):
                return conn.execute(sa.text("SELECT city, latitude, longitude FROM pro_profile WHERE user_id = :u"),
                                    {"u": users[handle]}).one()

            def profile(handle):
                return conn.execute(sa.text("SELECT city FROM profile WHERE user_id = :u"),
                                    {"u": users[handle]}).scalar_one()

            city, lat, lon = pro("austin")
            assert (city, round(lat, 2), round(lon, 2)) == (AUSTIN, 30.27, -97.74)
            # its stored coordinates say which Cambridge it was: Massachusetts, not the more populous English one
            city, lat, lon = pro("cambridge")
            assert (city, round(lat, 1), round(lon, 1)) == ("Cambridge, MA, United States", 42.4, -71.1)
            assert tuple(pro("nowhere")) == ("Narnia", None, None)  # unknown: left as it was
            assert pro("nyc")[0] == "New York City, NY, United States"
            assert tuple(pro("empty")) == ("", None, None)
            assert [profile(h) for h in ("austin", "cambridge", "nowhere", "nyc", "empty")] == [
                AUSTIN, "Cambridge, United Kingdom", "Narnia", "New York City, NY, United States", ""]
            city, lat, lon = conn.execute(sa.text("SELECT city, latitude, longitude FROM service_request "
                                                  "WHERE id = :i"), {"i": ids[slug]["request"]}).one()
            assert (city, round(lat, 2), round(lon, 2)) == ("Paris, France", 48.85, 2.35)
        if conn.dialect.name == "postgresql":  # FORCE is back on every table the migration touched
            forced = conn.execute(sa.text(
                "SELECT relname FROM pg_class WHERE relname IN ('pro_profile', 'profile', 'service_request') "
                "AND relforcerowsecurity")).scalars().all()
            assert sorted(forced) == ["pro_profile", "profile", "service_request"]
    engine.dispose()


def test_migration_0010_rewrites_stored_cities_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'places.db'}"
    command.upgrade(alembic_config(url), "0009")
    ids = _seed_0009(url)
    command.upgrade(alembic_config(url), "0010")
    _check_migrated(url, ids)


def test_migration_0010_rewrites_every_tenants_cities_under_forced_rls(servers):
    servers.ensure_login_role(OWNER_ROLE, OWNER_PASSWORD)
    servers.ensure_login_role(APP_ROLE, APP_ROLE_PASSWORD)  # 0001 grants it DML
    name = f"mp_places_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = Servers.url_as(servers.create_database(name, owner=OWNER_ROLE), OWNER_ROLE, OWNER_PASSWORD)
    try:
        command.upgrade(alembic_config(url), "0009")
        ids = _seed_0009(url)
        command.upgrade(alembic_config(url), "0010")
        _check_migrated(url, ids)
    finally:
        servers.drop_database(name)
