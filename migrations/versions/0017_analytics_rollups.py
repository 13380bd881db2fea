"""analytics rollups: daily numbers, the request funnel, paying clients per day, watermarks; indexes to follow sources

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-23 10:00:00.000000

analytics_daily (one number per tenant, day, metric, category and currency), analytics_request (one row per service
request: quoted, hired, paid, completed, time to first quote), analytics_client_day (a client who paid on a day, with
their signup day and paid orders to date), analytics_actor_day (a user who acted on a day, as client or professional)
and analytics_watermark (per tenant and source table, the last row id folded in) are tenant-owned, with the usual RLS
policy. They are derived data: empty after this migration, filled by the first refresh (the timers, or the first
dashboard), which reads everything once.

The sources the rollups follow get two indexes each: (tenant_id, id), for "rows after the watermark" and the data
version (the max ids), and (tenant_id, <time>), for recomputing a day and for the live windowed queries (active
users). On a large existing database these take a while to build and hold writes to those tables meanwhile.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from backend.rls import enable_tenant_rls

TENANT_TABLES = ("analytics_daily", "analytics_request", "analytics_client_day", "analytics_actor_day",
                 "analytics_watermark")

# source table -> its time column
SOURCES = {"service_order": "created_at", "order_event": "at", "ledger_transaction": "created_at",
           "service_request": "created_at", "quote": "created_at", "user_account": "created_at"}

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('analytics_daily',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('metric', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant_id', 'day', 'metric', 'category_id', 'currency', name='uq_analytics_daily')
    )
    with op.batch_alter_table('analytics_daily', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_analytics_daily_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('analytics_request',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('created_day', sa.Date(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('first_quote_seconds', sa.Integer(), nullable=True),
    sa.Column('quoted', sa.Boolean(), nullable=False),
    sa.Column('hired', sa.Boolean(), nullable=False),
    sa.Column('paid', sa.Boolean(), nullable=False),
    sa.Column('completed', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant_id', 'request_id', name='uq_analytics_request')
    )
    with op.batch_alter_table('analytics_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_analytics_request_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index('ix_analytics_request_tenant_day', ['tenant_id', 'created_day'], unique=False)

    op.create_table('analytics_client_day',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('paid_orders', sa.Integer(), nullable=False),
    sa.Column('signup_day', sa.Date(), nullable=True),
    sa.Column('paid_to_date', sa.Integer(), nullable=False),
    sa.Column('month', sa.Integer(), nullable=False),
    sa.Column('signup_month', sa.Integer(), nullable=True),
    sa.Column('first_in_month', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant_id', 'client_id', 'day', name='uq_analytics_client_day')
    )
    with op.batch_alter_table('analytics_client_day', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_analytics_client_day_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index('ix_analytics_client_day_tenant_day', ['tenant_id', 'day'], unique=False)

    op.create_table('analytics_actor_day',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant_id', 'day', 'role', 'user_id', name='uq_analytics_actor_day')
    )
    with op.batch_alter_table('analytics_actor_day', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_analytics_actor_day_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('analytics_watermark',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('last_id', sa.BigInteger(), nullable=False),
    sa.Column('refreshed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant_id', 'source', name='uq_analytics_watermark')
    )
    with op.batch_alter_table('analytics_watermark', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_analytics_watermark_tenant_id'), ['tenant_id'], unique=False)

    for table, time_column in SOURCES.items():
        op.create_index(f'ix_{table}_tenant_seq', table, ['tenant_id', 'id'], unique=False)
        op.create_index(f'ix_{table}_tenant_time', table, ['tenant_id', time_column], unique=False)

    if op.get_bind().dialect.name == "postgresql":  # grants come from 0001's default privileges
        for table in TENANT_TABLES:
            for statement in enable_tenant_rls(table):
                op.execute(statement)


def downgrade() -> None:
    for table in SOURCES:
        op.drop_index(f'ix_{table}_tenant_time', table_name=table)
        op.drop_index(f'ix_{table}_tenant_seq', table_name=table)
    for table in reversed(TENANT_TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for index in {"analytics_request": ['ix_analytics_request_tenant_day'],
                          "analytics_client_day": ['ix_analytics_client_day_tenant_day']}.get(table, []):
                batch_op.drop_index(index)
            batch_op.drop_index(batch_op.f(f'ix_{table}_tenant_id'))
        op.drop_table(table)
