"""task lists read by index: newest first within a tenant, alone or filtered by requester (a
requester's own tasks) or by status; with the id as the tie-breaker that keyset pages go by

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_task_tenant_created": ["tenant_id", "created_at", "id"],
    "ix_task_tenant_requester_created": ["tenant_id", "requester_id", "created_at", "id"],
    "ix_task_tenant_status_created": ["tenant_id", "status", "created_at", "id"],
}


def upgrade() -> None:
    for name, columns in INDEXES.items():
        op.create_index(name, "task", columns)


def downgrade() -> None:
    for name in INDEXES:
        op.drop_index(name, table_name="task")
