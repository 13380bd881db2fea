"""reviews: double-blind reviews of ended orders, their windows, reports, moderation, and stored ratings

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 10:00:00.000000

tenant.review_window_days (default 14): how long the parties of a completed order may review each other. Every new
table is tenant-owned, with the usual RLS policy. rating_aggregate holds the sums of each person's visible reviews,
kept by the service in the transaction that changes them (backend/reviews/aggregates.py).
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from backend.rls import enable_tenant_rls

TENANT_TABLES = ("rating_aggregate", "review", "review_window", "review_moderation", "review_report")

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('rating_aggregate',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('review_count', sa.Integer(), nullable=False),
    sa.Column('stars_sum', sa.Integer(), nullable=False),
    sa.Column('stars_5', sa.Integer(), nullable=False),
    sa.Column('stars_4', sa.Integer(), nullable=False),
    sa.Column('stars_3', sa.Integer(), nullable=False),
    sa.Column('stars_2', sa.Integer(), nullable=False),
    sa.Column('stars_1', sa.Integer(), nullable=False),
    sa.Column('quality_sum', sa.Integer(), nullable=False),
    sa.Column('quality_count', sa.Integer(), nullable=False),
    sa.Column('communication_sum', sa.Integer(), nullable=False),
    sa.Column('communication_count', sa.Integer(), nullable=False),
    sa.Column('punctuality_sum', sa.Integer(), nullable=False),
    sa.Column('punctuality_count', sa.Integer(), nullable=False),
    sa.Column('value_sum', sa.Integer(), nullable=False),
    sa.Column('value_count', sa.Integer(), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['subject_id'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.PrimaryKeyConstraint('subject_id')
    )
    with op.batch_alter_table('rating_aggregate', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_rating_aggregate_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('review',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('author_role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('stars', sa.Integer(), nullable=False),
    sa.Column('text', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('quality', sa.Integer(), nullable=True),
    sa.Column('communication', sa.Integer(), nullable=True),
    sa.Column('punctuality', sa.Integer(), nullable=True),
    sa.Column('value', sa.Integer(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('submitted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('published_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('reply', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
    sa.Column('replied_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('hidden', sa.Boolean(), nullable=False),
    sa.Column('hidden_reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['order_id'], ['service_order.id'], ),
    sa.ForeignKeyConstraint(['subject_id'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant_id', 'order_id', 'author_id', name='uq_review_order_author')
    )
    with op.batch_alter_table('review', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_author_id'), ['author_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_review_order_id'), ['order_id'], unique=False)
        batch_op.create_index('ix_review_subject_published', ['subject_id', 'status', 'published_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_review_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('review_window',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('pro_id', sa.Integer(), nullable=False),
    sa.Column('opened_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('closes_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('reminded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('closed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['order_id'], ['service_order.id'], ),
    sa.ForeignKeyConstraint(['pro_id'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.PrimaryKeyConstraint('order_id')
    )
    with op.batch_alter_table('review_window', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_window_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_review_window_closed_at'), ['closed_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_review_window_closes_at'), ['closes_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_review_window_pro_id'), ['pro_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_review_window_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('review_moderation',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('review_id', sa.Integer(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('admin_id', sa.Integer(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['admin_id'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['review_id'], ['review.id'], ),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('review_moderation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_moderation_review_id'), ['review_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_review_moderation_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('review_report',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('review_id', sa.Integer(), nullable=False),
    sa.Column('reporter_id', sa.Integer(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('resolved_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['reporter_id'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['review_id'], ['review.id'], ),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('review_report', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_review_report_review_id'), ['review_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_review_report_tenant_id'), ['tenant_id'], unique=False)

    with op.batch_alter_table('tenant', schema=None) as batch_op:
        batch_op.add_column(sa.Column('review_window_days', sa.Integer(), nullable=False, server_default='14'))

    if op.get_bind().dialect.name == "postgresql":  # grants come from 0001's default privileges
        for table in TENANT_TABLES:
            for statement in enable_tenant_rls(table):
                op.execute(statement)


def downgrade() -> None:
    with op.batch_alter_table('tenant', schema=None) as batch_op:
        batch_op.drop_column('review_window_days')

    with op.batch_alter_table('review_report', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_report_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_review_report_review_id'))

    op.drop_table('review_report')
    with op.batch_alter_table('review_moderation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_moderation_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_review_moderation_review_id'))

    op.drop_table('review_moderation')
    with op.batch_alter_table('review_window', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_window_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_review_window_pro_id'))
        batch_op.drop_index(batch_op.f('ix_review_window_closes_at'))
        batch_op.drop_index(batch_op.f('ix_review_window_closed_at'))
        batch_op.drop_index(batch_op.f('ix_review_window_client_id'))

    op.drop_table('review_window')
    with op.batch_alter_table('review', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_review_tenant_id'))
        batch_op.drop_index('ix_review_subject_published')
        batch_op.drop_index(batch_op.f('ix_review_order_id'))
        batch_op.drop_index(batch_op.f('ix_review_author_id'))

    op.drop_table('review')
    with op.batch_alter_table('rating_aggregate', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_rating_aggregate_tenant_id'))

    op.drop_table('rating_aggregate')
