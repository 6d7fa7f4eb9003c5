"""audit_event is append-only on PostgreSQL: a trigger refuses UPDATE, TRUNCATE, and any DELETE
but a retention purge's of rows older than 183 days

The trigger binds every role, the table's owner included; only a superuser (session_replication_role)
or the owner disabling the trigger gets past it, which the anchors outside the database then show
(docs/audit.md). SQLite has no roles to hold apart (whoever can write the file can drop a trigger),
so there this migration does nothing; the chain and the anchors are the protection.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

FUNCTION = """
CREATE OR REPLACE FUNCTION frontdesk_audit_event_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND current_setting('frontdesk.audit_purge', true) = 'on'
       AND OLD.at < now() - interval '183 days' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_event is append-only: % refused (only `frontdesk audit purge` removes events, '
        'and none younger than 183 days)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FUNCTION)
    op.execute(
        "CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event "
        "FOR EACH ROW EXECUTE FUNCTION frontdesk_audit_event_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event "
        "FOR EACH STATEMENT EXECUTE FUNCTION frontdesk_audit_event_append_only()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event")
    op.execute("DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event")
    op.execute("DROP FUNCTION IF EXISTS frontdesk_audit_event_append_only()")
