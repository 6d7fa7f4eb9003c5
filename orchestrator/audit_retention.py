"""Retention: remove a tenant's oldest audit events, never one younger than 183 days.

A purge removes a prefix of the chain (every row up to the last one written before the cut-off)
after verifying it, and appends an `audit.purged` event holding the seq and hash of the last row
it removed: `verify` starts there, and the purge itself is part of the chain it vouches for.
On PostgreSQL the migration's trigger refuses any DELETE of a row younger than 183 days, and any
other DELETE unless the transaction says it is a purge (`frontdesk.audit_purge`), so the floor
holds even for SQL typed by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, text
from sqlmodel import Session

from orchestrator import audit
from orchestrator.audit_verify import PURGED, start_point, walk
from orchestrator.errors import Conflict, Unprocessable
from orchestrator.models import AuditEvent, as_utc, table_of, utcnow

RETENTION_DAYS = 183
EVENTS = table_of(AuditEvent)


@dataclass(frozen=True)
class Purged:
    tenant_id: str
    deleted: int
    through_seq: int  # the last removed row (0: nothing removed)
    through_hash: str
    event_seq: int | None  # the audit.purged event (None: nothing to do)


def latest_cutoff(now: datetime | None = None) -> datetime:
    """The latest `--before` a purge accepts: 183 days before now."""
    return as_utc(now or utcnow()) - timedelta(days=RETENTION_DAYS)


def check_cutoff(before: datetime, now: datetime | None = None) -> datetime:
    before, latest = as_utc(before), latest_cutoff(now)
    if before > latest:
        raise Unprocessable(
            f"Audit events younger than {RETENTION_DAYS} days cannot be purged: the cut-off "
            f"{before.isoformat()} is after {latest.isoformat()}. Choose a date on or before {latest.date()}."
        )
    return before


def purge(
    session: Session, tenant_id: str, before: datetime, actor: str, now: datetime | None = None
) -> Purged:
    """Remove the tenant's events written before `before` (in the caller's transaction)."""
    before = check_cutoff(before, now)
    start_seq, start_hash = start_point(session, tenant_id)
    first_kept = session.execute(
        select(func.min(EVENTS.c.seq)).where(
            EVENTS.c.tenant_id == tenant_id, EVENTS.c.seq > start_seq, EVENTS.c.at >= before
        )
    ).scalar_one()
    if first_kept is None:  # every row was written before the cut-off
        first_kept = (
            session.execute(
                select(func.max(EVENTS.c.seq)).where(EVENTS.c.tenant_id == tenant_id)
            ).scalar_one()
            or start_seq
        ) + 1
    through = first_kept - 1
    if through <= start_seq:
        return Purged(tenant_id, 0, start_seq, start_hash, None)
    checked = walk(session, tenant_id, upto=through)
    if not checked.ok or checked.last_seq != through:
        raise Conflict(f"Nothing was purged: the rows to remove do not verify. {checked.summary}")
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL frontdesk.audit_purge = 'on'"))  # the trigger's permission
    deleted = session.connection().execute(
        delete(EVENTS).where(EVENTS.c.tenant_id == tenant_id, EVENTS.c.seq <= through)
    )
    removed = deleted.rowcount
    event = audit.record(
        session,
        tenant_id=tenant_id,
        actor=actor,
        action=PURGED,
        subject=f"audit:..{through}",
        reason=f"retention: events written before {before.isoformat()}",
        data={
            "through_seq": through,
            "through_hash": checked.last_hash,
            "deleted": removed,
            "before": before.isoformat(),
            "retention_days": RETENTION_DAYS,
        },
    )
    return Purged(tenant_id, removed, through, checked.last_hash, event.seq)
