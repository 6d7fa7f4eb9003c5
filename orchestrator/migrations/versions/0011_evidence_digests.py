"""evidence digests: a model call's prompt digest (the messages sent) and a tool call's result digest

Rows written before this revision keep NULL: their prompt was not digested when it was sent, and
a digest computed later from a stored answer would vouch for something nobody saw leave.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_call", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prompt_digest", sa.String(length=64), nullable=True))
    with op.batch_alter_table("tool_call", schema=None) as batch_op:
        batch_op.add_column(sa.Column("result_digest", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tool_call", schema=None) as batch_op:
        batch_op.drop_column("result_digest")
    with op.batch_alter_table("model_call", schema=None) as batch_op:
        batch_op.drop_column("prompt_digest")
