"""instant match: the professionals a new request was sent to first, and how many each marketplace sends it to

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-12 10:00:00.000000

lead_match: one row per (request, professional) chosen when the request was posted (rank, score and the "why"
line of the ranking at that moment); tenant-owned, with the usual RLS policy. tenant.instant_match_count (default
5, 0 = off): how many of the best-matching professionals a new request goes to at once.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from backend.rls import enable_tenant_rls

TENANT_TABLES = ("lead_match",)

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('lead_match',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('pro_id', sa.Integer(), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('why', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['pro_id'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['request_id'], ['service_request.id'], ),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('request_id', 'pro_id', name='uq_lead_match_request_pro')
    )
    with op.batch_alter_table('lead_match', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lead_match_pro_id'), ['pro_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_lead_match_request_id'), ['request_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_lead_match_tenant_id'), ['tenant_id'], unique=False)

    with op.batch_alter_table('tenant', schema=None) as batch_op:
        batch_op.add_column(sa.Column('instant_match_count', sa.Integer(), nullable=False, server_default='5'))

    if op.get_bind().dialect.name == "postgresql":  # grants come from 0001's default privileges
        for table in TENANT_TABLES:
            for statement in enable_tenant_rls(table):
                op.execute(statement)


def downgrade() -> None:
    with op.batch_alter_table('tenant', schema=None) as batch_op:
        batch_op.drop_column('instant_match_count')

    with op.batch_alter_table('lead_match', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lead_match_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_lead_match_request_id'))
        batch_op.drop_index(batch_op.f('ix_lead_match_pro_id'))

    op.drop_table('lead_match')
