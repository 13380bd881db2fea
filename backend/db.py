"""Engine, sessions and tenant binding.

Two layers keep tenants apart:
1. Repository scoping in the ORM, on every database: a session bound to a tenant adds
   `tenant_id = :current` to every SELECT/UPDATE/DELETE of a tenant-owned model
   (`with_loader_criteria`) and refuses to flush a row that belongs to another tenant.
2. On PostgreSQL, row-level security on every tenant table (backend/rls.py). Each
   transaction is bound with `set_config(..., true)` to one tenant AND a signature of it made with a
   key derived from SECRET_KEY; the policies accept the binding only when the signature is right, so
   SQL running as the app role cannot re-bind itself to another tenant. The app connects as a login
   role that owns no table and cannot bypass RLS (`check_app_role` refuses anything else at start).

There is no cross-tenant session. The few reads that span tenants (the operator console's counts,
finding the tenant of a stored webhook event) go through `Database.platform_read`: on PostgreSQL a
narrowly scoped SECURITY DEFINER function created by a migration; timers loop over tenants.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session as OrmSession, with_loader_criteria
from sqlmodel import Field, Session, SQLModel

from backend.config import Settings
from backend.rls import NO_TENANT, binding_key, binding_signature

__all__ = ["NO_TENANT", "Database", "TenantOwned", "CrossTenantWrite", "UnsafeDatabaseRole", "check_app_role"]


def utcnow() -> datetime:
    return datetime.now(UTC)


class TenantOwned(SQLModel):
    """Mixin for every tenant-owned table: carries tenant_id, and is scoped automatically."""

    tenant_id: int = Field(foreign_key="tenant.id", index=True, nullable=False)


class CrossTenantWrite(PermissionError):
    pass


class UnsafeDatabaseRole(RuntimeError):
    """The app would run as a role that row-level security does not hold (or with a wrong binding key)."""


def _tenant_tables() -> list[type[TenantOwned]]:
    # The mixin itself is not mapped, so criteria are attached per mapped table class.
    return [m.class_ for m in SQLModel._sa_registry.mappers if issubclass(m.class_, TenantOwned)]


@event.listens_for(OrmSession, "do_orm_execute")
def _scope_queries_to_tenant(execute_state) -> None:
    info = execute_state.session.info
    if "tenant_id" not in info:
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
    if "tenant_id" not in info:
        return
    tenant_id = info["tenant_id"]
    for obj in list(session.new) + list(session.dirty):
        if not isinstance(obj, TenantOwned):
            continue
        if obj.tenant_id is None and obj in session.new:
            obj.tenant_id = tenant_id
        if obj.tenant_id != tenant_id:
            raise CrossTenantWrite(f"refused to write {type(obj).__name__} into another tenant")


# Every role the given role can act as (itself, and any role it is a member of, which it may SET ROLE to;
# a superuser is a member of every role), with what would let it get around row-level security.
_REACHABLE_ROLES = sa.text("""
    SELECT m.rolname, m.rolsuper, m.rolbypassrls, m.rolcreaterole,
           EXISTS (SELECT FROM pg_class c WHERE c.relowner = m.oid AND c.relkind IN ('r', 'p')
                     AND c.relnamespace = 'public'::regnamespace) AS owns_tables
    FROM pg_roles m WHERE pg_has_role(:name, m.oid, 'MEMBER')
    ORDER BY m.rolname <> :name, m.rolname""")

_HOW_TO_FIX = (
    "The app must connect (DATABASE_APP_URL) as a login role that owns no table, is not a superuser, has no "
    "BYPASSRLS or CREATEROLE and is not a member of the table owner, so that row-level security holds for "
    "everything it runs. Create it once as the owner: CREATE ROLE marketplace_app LOGIN PASSWORD '<random>'; "
    "(the migrations grant it what it needs; its name is DATABASE_APP_ROLE), then set "
    "DATABASE_APP_URL=postgresql+psycopg://marketplace_app:<password>@<host>:5432/<database>.")


def check_app_role(conn: sa.Connection, *, connected_directly: bool) -> None:
    """Refuse a runtime connection that row-level security would not hold.

    Checks the effective role (current_user) and, when the app connects directly as its own login role
    (DATABASE_APP_URL), the login role too (session_user: what `RESET ROLE` returns to); for each, every
    role it could become by SET ROLE. None may be a superuser, have BYPASSRLS or CREATEROLE (which could
    grant itself the owner's role), or own the tables."""
    session_user, current_user = conn.execute(sa.text("SELECT session_user, current_user")).one()
    names = [current_user] + ([session_user] if connected_directly and session_user != current_user else [])
    for name in names:
        problems = []
        for role, superuser, bypass, createrole, owns in conn.execute(_REACHABLE_ROLES, {"name": name}).all():
            found = [text for flag, text in ((superuser, "is a superuser"), (bypass, "has BYPASSRLS"),
                                             (createrole, "has CREATEROLE"), (owns, "owns the tables")) if flag]
            if found and role == name:
                problems.append(" and ".join(found))
                if superuser:
                    break  # a member of every role: nothing more to say
            elif found:
                problems.append(f"is a member of {role!r}, which {' and '.join(found)}")
        if problems:
            raise UnsafeDatabaseRole(f"Refusing to start: the app's database role {name!r} "
                                     f"{'; '.join(problems)}. {_HOW_TO_FIX}")


class Database:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.is_postgres = settings.is_postgres
        self._binding_key = binding_key(settings.secret_key.get_secret_value())
        self.engine = self._create_engine()
        if self.is_postgres:
            self._check_runtime_connection()
        # The app builds its services at import, and the web server may fork its workers after that: a child must
        # never reuse the parent's pooled connections (two processes on one PostgreSQL session corrupt each other's
        # transactions and prepared statements). SQLAlchemy's recipe: drop the inherited pool in the child.
        engine = weakref.ref(self.engine)
        os.register_at_fork(after_in_child=lambda: (e := engine()) is not None and e.dispose(close=False))

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

        if settings.environment == "production" and not settings.database_app_url:
            raise UnsafeDatabaseRole("Refusing to start: ENVIRONMENT=production needs DATABASE_APP_URL (the "
                                     "owner connection with SET ROLE can be undone by RESET ROLE). " + _HOW_TO_FIX)
        url = settings.database_app_url or settings.owner_database_url
        engine = sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        if not settings.database_app_url:
            role = settings.database_app_role

            @event.listens_for(engine, "connect")
            def _drop_to_app_role(dbapi_conn, _record):
                # Development/test fallback only: the owner's connection drops to the app role, so RLS
                # applies to the app's own queries; `RESET ROLE` would undo it, hence production refuses it.
                with dbapi_conn.cursor() as cur:
                    cur.execute(f'SET ROLE "{role}"')
                dbapi_conn.commit()

        return engine

    def _check_runtime_connection(self) -> None:
        """At start: the role is one RLS holds, and the database verifies this process's bindings."""
        with self.engine.connect() as conn:
            check_app_role(conn, connected_directly=bool(self.settings.database_app_url))
            conn.rollback()
            with conn.begin():
                self._bind_connection(conn, NO_TENANT)
                try:
                    bound = conn.execute(sa.text("SELECT public.app_current_tenant()")).scalar()
                except sa.exc.ProgrammingError as exc:
                    raise UnsafeDatabaseRole("The database is not migrated (app_current_tenant() is missing): "
                                             "run `python -m backend.migrate`.") from exc
        if bound != NO_TENANT:
            raise UnsafeDatabaseRole(
                "The database's tenant-binding key does not match this process's SECRET_KEY, so every tenant "
                "would look empty: run `python -m backend.migrate` with the same SECRET_KEY as the app.")

    def _binding_params(self, tenant_id: int) -> dict:
        return {"t": str(tenant_id), "s": binding_signature(self._binding_key, tenant_id)}

    _BIND = sa.text("SELECT set_config('app.tenant_id', :t, true), set_config('app.tenant_sig', :s, true)")

    def _bind_connection(self, conn, tenant_id: int) -> None:
        conn.execute(self._BIND, self._binding_params(tenant_id))

    def bind(self, session: Session, tenant_id: int) -> None:
        """(Re)bind the session's open transaction to one tenant: ORM scoping and, on PostgreSQL, the
        signed RLS binding. tenant_session does it; a transaction that creates a tenant calls it again
        to write that tenant's first rows."""
        session.info["tenant_id"] = tenant_id
        if self.is_postgres:
            session.execute(self._BIND, self._binding_params(tenant_id))

    @contextmanager
    def tenant_session(self, tenant_id: int) -> Iterator[Session]:
        """One transaction scoped to one tenant: commits on success, rolls back on error."""
        with Session(self.engine, expire_on_commit=False) as session:
            with session.begin():
                self.bind(session, tenant_id)
                yield session

    @contextmanager
    def platform_session(self) -> Iterator[Session]:
        """A transaction over platform tables (tenants, operators, login attempts) only."""
        with self.tenant_session(NO_TENANT) as session:
            yield session

    def platform_read(self, read, **params) -> list[sa.Row]:
        """One of the few reads that span tenants (backend/tenancy/platform_reads.py), e.g. user counts per
        tenant for the operator console. On PostgreSQL it calls the read's SECURITY DEFINER function (made
        by a migration; EXECUTE granted to the app role only), which returns just that answer; the app role
        has no way to read the underlying rows of other tenants. SQLite has no RLS: the same SELECT runs."""
        sql = f"SELECT * FROM public.{read.call}" if self.is_postgres else read.sqlite_sql
        with self.platform_session() as session:
            return list(session.execute(sa.text(sql), params).all())

    def dispose(self) -> None:
        self.engine.dispose()
