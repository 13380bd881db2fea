"""notification.sealed_token: one-time tokens are kept sealed until sent, then erased; rows queued before this
revision get their plain-text links redacted once sent

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 10:00:00.000000

Before this revision a verification or reset email's body held its link, token and all, for ever. Bodies of
messages already sent are rewritten so the token is gone (the link was used or has expired by now, or it is
worthless once redacted: the user asks for a new one). Pending ones keep their link until a worker sends them.
"""
import re
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TOKEN_IN_LINK = re.compile(r"([?&]token=)[A-Za-z0-9_-]+")
_REMOVED = r"\1[one-time link, removed once sent]"


def upgrade() -> None:
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sealed_token', sqlmodel.sql.sqltypes.AutoString(length=400), nullable=False,
                                      server_default=''))
    bind = op.get_bind()
    postgres = bind.dialect.name == 'postgresql'
    if postgres:
        # The owner runs migrations and is held by the FORCEd row-level security like the app: lift FORCE for
        # this rewrite so it reaches every tenant's rows, and put it back in the same transaction.
        op.execute("ALTER TABLE notification NO FORCE ROW LEVEL SECURITY")
    rows = bind.execute(sa.text("SELECT id, body FROM notification WHERE status = 'sent' AND body LIKE :p"),
                        {"p": "%token=%"}).all()
    for row_id, body in rows:
        bind.execute(sa.text("UPDATE notification SET body = :b WHERE id = :i"),
                     {"b": _TOKEN_IN_LINK.sub(_REMOVED, body), "i": row_id})
    if postgres:
        op.execute("ALTER TABLE notification FORCE ROW LEVEL SECURITY")


def downgrade() -> None:
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_column('sealed_token')
