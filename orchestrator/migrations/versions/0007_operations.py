"""operations: disabled tenants (`frontdesk tenant revoke`) and failed sign-ins shared by every
API process (the login throttle)

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenant") as batch:
        batch.add_column(sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "login_failure",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_login_failure_key_hash", "login_failure", ["key_hash"])
    op.create_index("ix_login_failure_failed_at", "login_failure", ["failed_at"])


def downgrade() -> None:
    op.drop_index("ix_login_failure_failed_at", table_name="login_failure")
    op.drop_index("ix_login_failure_key_hash", table_name="login_failure")
    op.drop_table("login_failure")
    with op.batch_alter_table("tenant") as batch:
        batch.drop_column("disabled_at")
