"""auth throttling: login_attempt also records password-reset requests and verification re-sends

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:00:00.000000

`login_attempt` stays a platform table without RLS: it has no tenant_id (its `scope` is a tenant
slug or 'operator'), holds no secret, and must be counted before the tenant's user is known.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False,
                                      server_default='login'))
        batch_op.drop_index('ix_login_attempt_scope_email_at')
        batch_op.drop_index('ix_login_attempt_scope_ip_at')
        batch_op.create_index('ix_login_attempt_scope_kind_email_at', ['scope', 'kind', 'email', 'at'], unique=False)
        batch_op.create_index('ix_login_attempt_scope_kind_ip_at', ['scope', 'kind', 'ip', 'at'], unique=False)
        batch_op.create_index('ix_login_attempt_at', ['at'], unique=False)


def downgrade() -> None:
    op.execute("DELETE FROM login_attempt WHERE kind <> 'login'")
    with op.batch_alter_table('login_attempt', schema=None) as batch_op:
        batch_op.drop_index('ix_login_attempt_at')
        batch_op.drop_index('ix_login_attempt_scope_kind_ip_at')
        batch_op.drop_index('ix_login_attempt_scope_kind_email_at')
        batch_op.create_index('ix_login_attempt_scope_ip_at', ['scope', 'ip', 'at'], unique=False)
        batch_op.create_index('ix_login_attempt_scope_email_at', ['scope', 'email', 'at'], unique=False)
        batch_op.drop_column('kind')
