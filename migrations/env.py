"""Alembic environment: runs as the table owner (DATABASE_URL), never as the app role."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context
from sqlmodel import SQLModel

import backend.tables  # noqa: F401  (registers every table)
from backend.config import get_settings

MIGRATION_LOCK_ID = 7_423_911  # pg advisory lock: several app processes may start at once

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    settings = get_settings()
    url = config.attributes.get("url") or settings.owner_database_url
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        is_pg = connection.dialect.name == "postgresql"
        if is_pg:
            connection.execute(sa.text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
            connection.commit()
        try:
            context.configure(connection=connection, target_metadata=target_metadata,
                              render_as_batch=not is_pg, compare_type=True)
            with context.begin_transaction():
                context.run_migrations()
        finally:
            if is_pg:
                connection.execute(sa.text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
                connection.commit()
    engine.dispose()


run_migrations_online()
