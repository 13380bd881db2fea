"""one phone per account: the profile's free-text phone goes

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-21 11:00:00.000000

The account page had two phone fields: a free-text "Phone" on the profile, which nothing used, and the mobile number
verified by a texted code (user_account.phone_e164), which notifications and the profile badge use. The free-text one
is dropped; a number typed there was never checked, so it cannot become a verified one.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('profile', schema=None) as batch_op:
        batch_op.drop_column('phone')


def downgrade() -> None:
    with op.batch_alter_table('profile', schema=None) as batch_op:
        batch_op.add_column(sa.Column('phone', sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False,
                                      server_default=''))
