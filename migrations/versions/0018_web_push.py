"""web push: each user's devices, and push deliveries that name theirs

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-24 10:00:00.000000

push_subscription: a browser's push subscription (endpoint, unique per marketplace, and the keys messages are
encrypted to), one per device a user turned notifications on for. Tenant-owned, with the usual RLS policy.
notification.device_id: the device a push row goes to; set to NULL when the device is removed (a partial index
keeps that cheap: most rows are not pushes).
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from backend.rls import enable_tenant_rls

TENANT_TABLES = ("push_subscription",)

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('push_subscription',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('endpoint', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('p256dh', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('auth', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('label', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('last_used_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant_id', 'endpoint', name='uq_push_subscription_endpoint')
    )
    with op.batch_alter_table('push_subscription', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_push_subscription_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_push_subscription_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.add_column(sa.Column('device_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_notification_device_id_push_subscription', 'push_subscription',
                                    ['device_id'], ['id'], ondelete='SET NULL')
        batch_op.create_index('ix_notification_device', ['device_id'], unique=False,
                              postgresql_where=sa.text('device_id IS NOT NULL'),
                              sqlite_where=sa.text('device_id IS NOT NULL'))

    if op.get_bind().dialect.name == "postgresql":  # grants come from 0001's default privileges
        for table in TENANT_TABLES:
            for statement in enable_tenant_rls(table):
                op.execute(statement)


def downgrade() -> None:
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_device')
        batch_op.drop_constraint('fk_notification_device_id_push_subscription', type_='foreignkey')
        batch_op.drop_column('device_id')

    with op.batch_alter_table('push_subscription', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_push_subscription_user_id'))
        batch_op.drop_index(batch_op.f('ix_push_subscription_tenant_id'))

    op.drop_table('push_subscription')
