"""texts that respect the person: numbers that replied STOP, and each account's time zone

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-22 10:00:00.000000

sms_suppression: a number that replied STOP to our texts (Twilio error 21610), per marketplace; no text goes to it
until it is verified again. Tenant-owned, with the usual RLS policy.
user_account.time_zone: an IANA name (NULL = unknown: UTC), on whose clock texts that can wait are held overnight.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from backend.rls import enable_tenant_rls

TENANT_TABLES = ("sms_suppression",)

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('time_zone', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))

    op.create_table('sms_suppression',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('start_advised_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant_id', 'phone', name='uq_sms_suppression_phone')
    )
    with op.batch_alter_table('sms_suppression', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sms_suppression_tenant_id'), ['tenant_id'], unique=False)

    if op.get_bind().dialect.name == "postgresql":  # grants come from 0001's default privileges
        for table in TENANT_TABLES:
            for statement in enable_tenant_rls(table):
                op.execute(statement)


def downgrade() -> None:
    with op.batch_alter_table('sms_suppression', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sms_suppression_tenant_id'))

    op.drop_table('sms_suppression')

    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('time_zone')
