"""Engine, sessions and tenant binding.

Two layers keep tenants apart:
1. Repository scoping in the ORM, on every database: a session bound to a tenant adds
   `tenant_id = :current` to every SELECT/UPDATE/DELETE of a tenant-owned model
   (`with_loader_criteria`) and refuses to flush a row that belongs to another tenant.
2. On PostgreSQL, row-level security on every tenant table, keyed on
   `current_setting('app.tenant_id')`, which each transaction sets with `SET LOCAL`
   (`set_config(..., true)`); the app runs as a role that does not own the tables, so a
   query that forgot its filter still sees only the current tenant.

The only cross-tenant path is `Database.cross_tenant_session`, used by the platform
operator service alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession, with_loader_criteria
from sqlmodel import Field, Session, SQLModel

from backend.config import Settings

NO_TENANT = -1  # binds platform sessions: tenant-owned rows are invisible there


def utcnow() -> datetime:
    return datetime.now(UTC)


class TenantOwned(SQLModel):
    """Mixin for every tenant-owned table: carries tenant_id, and is scoped automatically."""

    tenant_id: int = Field(foreign_key="tenant.id", index=True, nullable=False)


class CrossTenantWrite(PermissionError):
    pass


def _tenant_tables() -> list[type[TenantOwned]]:
    # The mixin itself is not mapped, so criteria are attached per mapped table class.
    return [m.class_ for m in SQLModel._sa_registry.mappers if issubclass(m.class_, TenantOwned)]


@event.listens_for(OrmSession, "do_orm_execute")
def _scope_queries_to_tenant(execute_state) -> None:
    info = execute_state.session.info
    if info.get("cross_tenant") or "tenant_id" not in info:
        return
    if execute_state.is_select or execute_state.is_update or execute_state.is_delete:
        tenant_id = info["tenant_id"]
        execute_state.statement = execute_state.statement.options(*(
            with_loader_criteria(cls, cls.tenant_id == tenant_id, include_aliases=True)
            for cls in _tenant_tables()
        ))


@event.listens_for(OrmSession, "before_flush")
def _guard_tenant_writes(session, flush_context, instances) -> None:
    info = session.info
    if info.get("cross_tenant") or "tenant_id" not in info:
        return
    tenant_id = info["tenant_id"]
    for obj in list(session.new) + list(session.dirty):
        if not isinstance(obj, TenantOwned):
            continue
        if obj.tenant_id is None and obj in session.new:
            obj.tenant_id = tenant_id
        if obj.tenant_id != tenant_id:
            raise CrossTenantWrite(f"refused to write {type(obj).__name__} into another tenant")


class Database:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.is_postgres = settings.is_postgres
        self.engine = self._create_engine()

    def _create_engine(self) -> sa.Engine:
        settings = self.settings
        if not self.is_postgres:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(
                settings.owner_database_url, connect_args={"check_same_thread": False, "timeout": 30}
            )

            @event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_conn, _record):
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()

            return engine

        url = settings.database_app_url or settings.owner_database_url
        engine = sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        if not settings.database_app_url:
            role = settings.database_app_role

            @event.listens_for(engine, "connect")
            def _drop_to_app_role(dbapi_conn, _record):
                # The owner connection runs migrations; the app itself must not own the
                # tables, or FORCE'd RLS aside, a superuser would bypass every policy.
                with dbapi_conn.cursor() as cur:
                    cur.execute(f'SET ROLE "{role}"')
                dbapi_conn.commit()

        return engine

    def _bind(self, session: Session, setting: str, value: str) -> None:
        if self.is_postgres:
            session.execute(sa.text("SELECT set_config(:k, :v, true)"), {"k": setting, "v": value})

    @contextmanager
    def tenant_session(self, tenant_id: int) -> Iterator[Session]:
        """One transaction scoped to one tenant: commits on success, rolls back on error."""
        with Session(self.engine, expire_on_commit=False) as session:
            session.info["tenant_id"] = tenant_id
            with session.begin():
                self._bind(session, "app.tenant_id", str(tenant_id))
                yield session

    @contextmanager
    def platform_session(self) -> Iterator[Session]:
        """A transaction over platform tables (tenants, operators, login attempts) only."""
        with self.tenant_session(NO_TENANT) as session:
            yield session

    @contextmanager
    def cross_tenant_session(self) -> Iterator[Session]:
        """The privileged path: sees every tenant. Only backend.tenancy.platform may use it,
        and only after checking that the caller is a platform operator."""
        with Session(self.engine, expire_on_commit=False) as session:
            session.info["cross_tenant"] = True
            with session.begin():
                self._bind(session, "app.cross_tenant", "on")
                yield session

    def dispose(self) -> None:
        self.engine.dispose()
