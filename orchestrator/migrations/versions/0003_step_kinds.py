"""task steps: kind, and the rung and tier of the escalation ladder that answered

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("task_step", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False, server_default="agent"
            )
        )
        batch_op.add_column(sa.Column("rung", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("tier", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("task_step", schema=None) as batch_op:
        batch_op.drop_column("tier")
        batch_op.drop_column("rung")
        batch_op.drop_column("kind")
