"""catalog: the demo helpdesk tickets the ticket triage sample reads and answers

A new table only (the task_step columns kind, rung and tier are in 0003), so no server defaults
are needed for existing rows.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 21:13:18.612546
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "demo_ticket",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("tenant_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("customer", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("intent", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("update_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenant.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("demo_ticket", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_demo_ticket_tenant_id"), ["tenant_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("demo_ticket", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_demo_ticket_tenant_id"))

    op.drop_table("demo_ticket")
