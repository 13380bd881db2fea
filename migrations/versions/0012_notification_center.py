"""notification center: delivery rows per (event, recipient, channel), preferences, suppressions, tenant channels

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-19 10:00:00.000000

notification gains what a delivery row needs: the catalogue event and group it came from (existing rows: "" and
""), a dedupe key unique per tenant (NULL for existing rows), the HTML body, the link and one-click unsubscribe
URL, and the times of the next attempt, delivery and reading; plus indexes for the bell (tenant, user, channel,
read_at), the sweeper (tenant, status, next_attempt_at) and status webhooks (tenant, provider_id).
notification_preference (only cells that differ from the defaults) and email_suppression (hard bounces) are
tenant-owned, with the usual RLS policy. tenant.notification_channels: the channels a marketplace uses.
Existing "failed" rows stay failed: the admin sees them in the failed deliveries list and may retry them.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from backend.rls import enable_tenant_rls

TENANT_TABLES = ("notification_preference", "email_suppression")

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.add_column(sa.Column('event', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('group', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('dedupe_key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column('html_body', sqlmodel.sql.sqltypes.AutoString(), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('link', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('unsubscribe_url', sqlmodel.sql.sqltypes.AutoString(length=600),
                                      nullable=False, server_default=''))
        batch_op.add_column(sa.Column('next_attempt_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('delivered_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('read_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.create_unique_constraint('uq_notification_dedupe', ['tenant_id', 'dedupe_key'])
        batch_op.create_index('ix_notification_inbox', ['tenant_id', 'user_id', 'channel', 'read_at'], unique=False)
        batch_op.create_index('ix_notification_due', ['tenant_id', 'status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_notification_provider', ['tenant_id', 'provider_id'], unique=False)

    op.create_table('notification_preference',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('group', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('user_id', 'group', 'channel')
    )
    with op.batch_alter_table('notification_preference', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notification_preference_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('email_suppression',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant_id', 'email', name='uq_email_suppression_email')
    )
    with op.batch_alter_table('email_suppression', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_email_suppression_tenant_id'), ['tenant_id'], unique=False)

    with op.batch_alter_table('tenant', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notification_channels', sqlmodel.sql.sqltypes.AutoString(length=40),
                                      nullable=False, server_default='email,sms,in_app'))

    if op.get_bind().dialect.name == "postgresql":  # grants come from 0001's default privileges
        for table in TENANT_TABLES:
            for statement in enable_tenant_rls(table):
                op.execute(statement)


def downgrade() -> None:
    with op.batch_alter_table('tenant', schema=None) as batch_op:
        batch_op.drop_column('notification_channels')

    with op.batch_alter_table('email_suppression', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_email_suppression_tenant_id'))

    op.drop_table('email_suppression')
    with op.batch_alter_table('notification_preference', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notification_preference_tenant_id'))

    op.drop_table('notification_preference')
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_provider')
        batch_op.drop_index('ix_notification_due')
        batch_op.drop_index('ix_notification_inbox')
        batch_op.drop_constraint('uq_notification_dedupe', type_='unique')
        batch_op.drop_column('read_at')
        batch_op.drop_column('delivered_at')
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('unsubscribe_url')
        batch_op.drop_column('link')
        batch_op.drop_column('html_body')
        batch_op.drop_column('dedupe_key')
        batch_op.drop_column('group')
        batch_op.drop_column('event')
