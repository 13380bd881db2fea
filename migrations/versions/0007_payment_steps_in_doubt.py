"""payment_step: a write-ahead record of every step that gives money back, so a lost provider answer is never lost

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 10:00:00.000000

A cancel's void (or a refund) could reach the provider while its answer was lost: the transaction rolled back,
the order stayed `paid` and our books said the hold was still there, while the provider had released it. From
here on such a step is recorded, in its own committed transaction, before the provider is called; the
transaction that books its outcome marks it done. A row still pending is a step in doubt: before anything else
happens to the order it is replayed with the same idempotency keys (backend/orders/service.py, settle_payments).

order_id has no foreign key on purpose: the row is written while the step's transaction holds the order row
FOR UPDATE, and the foreign-key check would wait for that lock. Tenant-owned: the usual RLS policy.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from backend.rls import enable_tenant_rls

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('payment_step',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('step', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_role', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('amount_minor', sa.Integer(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenant.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('tenant_id', 'order_id', 'step', name='uq_payment_step')
    )
    with op.batch_alter_table('payment_step', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_step_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_payment_step_tenant_id'), ['tenant_id'], unique=False)

    if op.get_bind().dialect.name == "postgresql":  # grants come from 0001's default privileges
        for statement in enable_tenant_rls('payment_step'):
            op.execute(statement)


def downgrade() -> None:
    with op.batch_alter_table('payment_step', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_step_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_payment_step_order_id'))
    op.drop_table('payment_step')
