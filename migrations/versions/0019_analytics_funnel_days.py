"""analytics: the funnel per request day; indexes for the admin's live reads

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01 01:00:00.000000

analytics_funnel_day: analytics_request summed per (creation day, category), so that a period's funnel reads a row
per day and category; filled here from analytics_request (before row-level security is switched on: the owner may
only read under it), then kept by the rollups' refresh.
ix_service_request_open: partial (status = 'open'); supply and demand groups a tenant's open requests by category
and city (and reads their ids from the index), which are a small share of all requests.
ix_webhook_event_tenant_status: the operations queue counts a marketplace's failed events.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from backend.rls import enable_tenant_rls

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = sa.text("status = 'open'")
FLAGS = ("quoted", "hired", "paid", "completed")


def upgrade() -> None:
    op.create_table('analytics_funnel_day',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('requests', sa.Integer(), nullable=False),
    *(sa.Column(flag, sa.Integer(), nullable=False) for flag in FLAGS),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant_id', 'day', 'category_id', name='uq_analytics_funnel_day')
    )
    with op.batch_alter_table('analytics_funnel_day', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_analytics_funnel_day_tenant_id'), ['tenant_id'], unique=False)
    sums = ", ".join(f"SUM(CASE WHEN {flag} THEN 1 ELSE 0 END)" for flag in FLAGS)
    op.execute(f"INSERT INTO analytics_funnel_day (tenant_id, day, category_id, requests, {', '.join(FLAGS)}) "
               f"SELECT tenant_id, created_day, category_id, COUNT(*), {sums} FROM analytics_request "
               "GROUP BY tenant_id, created_day, category_id")
    if op.get_bind().dialect.name == "postgresql":  # grants come from 0001's default privileges
        for statement in enable_tenant_rls('analytics_funnel_day'):
            op.execute(statement)

    op.create_index('ix_service_request_open', 'service_request', ['tenant_id', 'category_id', 'city', 'id'],
                    unique=False, postgresql_where=OPEN, sqlite_where=OPEN)
    op.create_index('ix_webhook_event_tenant_status', 'webhook_event', ['tenant_id', 'status'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_webhook_event_tenant_status', table_name='webhook_event')
    op.drop_index('ix_service_request_open', table_name='service_request')
    op.drop_table('analytics_funnel_day')
