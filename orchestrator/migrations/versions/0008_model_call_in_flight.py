"""model calls are written down before they are sent (status sent -> done, or interrupted when
the worker died in between); a step shows why it waits (the router is unreachable)

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_call", schema=None) as batch_op:
        # Every row written before this revision was written after its answer.
        batch_op.add_column(sa.Column("status", sa.String(length=20), nullable=False, server_default="done"))
    with op.batch_alter_table("task_step", schema=None) as batch_op:
        batch_op.add_column(sa.Column("note", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("task_step", schema=None) as batch_op:
        batch_op.drop_column("note")
    with op.batch_alter_table("model_call", schema=None) as batch_op:
        batch_op.drop_column("status")
