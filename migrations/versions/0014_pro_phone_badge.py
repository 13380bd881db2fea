"""professionals' "phone verified" badge: pro_profile.phone_verified

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-21 10:00:00.000000

A copy of "the account's mobile number is verified" on the professional's profile, which the public profile shows as
a trust badge (profiles sit below accounts and do not read users). Accounts writes it with the number; existing
professionals get it from their account here.
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('pro_profile', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone_verified', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE pro_profile SET phone_verified = EXISTS (SELECT 1 FROM user_account u "
               "WHERE u.id = pro_profile.user_id AND u.phone_e164 <> '' AND u.phone_verified_at IS NOT NULL)")


def downgrade() -> None:
    with op.batch_alter_table('pro_profile', schema=None) as batch_op:
        batch_op.drop_column('phone_verified')
