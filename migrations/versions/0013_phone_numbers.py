"""phone numbers: a mobile number per account, verified by a texted code

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-20 10:00:00.000000

user_account.phone_e164 ("" = none) and phone_verified_at (NULL = not verified: no SMS goes to it).
phone_verification: one row per texted code (its HMAC only, expiry, wrong tries); tenant-owned, with the usual RLS
policy. Code sends are throttled in login_attempt (kind 'phone_code'), which needs no change.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from backend.rls import enable_tenant_rls

TENANT_TABLES = ("phone_verification",)

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone_e164', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('phone_verified_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))

    op.create_table('phone_verification',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('phone_e164', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('code_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('verified_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('phone_verification', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_phone_verification_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_phone_verification_user_id'), ['user_id'], unique=False)

    if op.get_bind().dialect.name == "postgresql":  # grants come from 0001's default privileges
        for table in TENANT_TABLES:
            for statement in enable_tenant_rls(table):
                op.execute(statement)


def downgrade() -> None:
    with op.batch_alter_table('phone_verification', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_phone_verification_user_id'))
        batch_op.drop_index(batch_op.f('ix_phone_verification_tenant_id'))

    op.drop_table('phone_verification')

    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('phone_verified_at')
        batch_op.drop_column('phone_e164')
