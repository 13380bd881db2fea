"""chat: conversations and read marks (messages themselves live in MongoDB)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 17:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from backend.rls import enable_tenant_rls

TENANT_TABLES = ("conversation", "conversation_read")


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('conversation',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=True),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('pro_id', sa.Integer(), nullable=True),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('last_message_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['order_id'], ['service_order.id'], ),
    sa.ForeignKeyConstraint(['pro_id'], ['user_account.id'], ),
    sa.ForeignKeyConstraint(['request_id'], ['service_request.id'], ),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant_id', 'request_id', 'pro_id', name='uq_conversation_job')
    )
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conversation_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_conversation_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_conversation_pro_id'), ['pro_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_conversation_request_id'), ['request_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_conversation_tenant_id'), ['tenant_id'], unique=False)
        # one support conversation per user (job rows have their own unique constraint above)
        batch_op.create_index('uq_conversation_support_user', ['tenant_id', 'client_id'], unique=True,
                              postgresql_where=sa.text("kind = 'support'"),
                              sqlite_where=sa.text("kind = 'support'"))

    op.create_table('conversation_read',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('conversation_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('last_read_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversation.id'], ),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], ),
    sa.PrimaryKeyConstraint('conversation_id', 'user_id')
    )
    with op.batch_alter_table('conversation_read', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conversation_read_tenant_id'), ['tenant_id'], unique=False)

    if op.get_bind().dialect.name == "postgresql":  # grants come from 0001's default privileges
        for table in TENANT_TABLES:
            for statement in enable_tenant_rls(table):
                op.execute(statement)


def downgrade() -> None:
    with op.batch_alter_table('conversation_read', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conversation_read_tenant_id'))

    op.drop_table('conversation_read')
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.drop_index('uq_conversation_support_user')
        batch_op.drop_index(batch_op.f('ix_conversation_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_conversation_request_id'))
        batch_op.drop_index(batch_op.f('ix_conversation_pro_id'))
        batch_op.drop_index(batch_op.f('ix_conversation_order_id'))
        batch_op.drop_index(batch_op.f('ix_conversation_client_id'))

    op.drop_table('conversation')
