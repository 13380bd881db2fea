"""Apply Alembic migrations (run automatically on start, and by `make migrate`).

Runs as the table owner (DATABASE_URL). On PostgreSQL it also stores the tenant-binding key (derived from
SECRET_KEY, backend/rls.py) where only the owner can read it, so the database can verify that a
transaction's tenant binding was made by this application and not by SQL running as the app role.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from backend.config import PROJECT_ROOT, Settings, get_settings
from backend.rls import binding_key


def alembic_config(url: str | None = None) -> Config:
    cfg = Config(str(PROJECT_ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    if url:
        cfg.attributes["url"] = url
    return cfg


def store_binding_key(url: str, settings: Settings) -> None:
    """Idempotent; rewrites the key when SECRET_KEY changed (app processes must share one SECRET_KEY)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO app_private.tenant_binding_key (id, key) VALUES (1, :key) "
                "ON CONFLICT (id) DO UPDATE SET key = EXCLUDED.key "
                "WHERE app_private.tenant_binding_key.key IS DISTINCT FROM EXCLUDED.key"),
                {"key": binding_key(settings.secret_key.get_secret_value())})
    finally:
        engine.dispose()


def upgrade(url: str | None = None, settings: Settings | None = None) -> None:
    """`settings` gives SECRET_KEY for the binding key; default: the environment's settings."""
    settings = settings or get_settings()
    url = url or settings.owner_database_url
    command.upgrade(alembic_config(url), "head")
    if url.startswith("postgresql"):
        store_binding_key(url, settings)


if __name__ == "__main__":
    upgrade()
    print("database is at the latest migration")
